//! The compare harness's LTTng-UST producer: the benchmark record through an
//! LTTng-UST tracepoint (`benches/lttng/tp.h`: the same severity, target,
//! message, trace and span ids as logbus's), driven like every other system
//! (`logbus_benches::drive`).
//!
//! `lttng-producer THREADS RECORDS SAMPLES` prints `@result ...` as
//! `compare produce` does; `lttng-producer --probe` exits 0 when LTTng-UST
//! was built in, else prints why not and exits 2. A separate binary so that
//! only this process loads LTTng-UST (its constructor registers with the
//! session daemon and starts threads).

#[cfg(lttng)]
mod tracepoint {
    use logbus_benches::drive::Emitter;
    use logbus_benches::{MESSAGE, SEVERITY, SPAN_ID, TARGET, TRACE_ID};

    extern "C" {
        // benches/lttng/tp.c, linked into this binary alone by build.rs.
        fn logbus_bench_lttng_record(
            severity: u8,
            target: *const u8,
            target_len: usize,
            message: *const u8,
            message_len: usize,
            trace_id: *const u8,
            span_id: *const u8,
        );
    }

    /// One thread's tracepoint calls.
    pub struct Lttng;

    impl Emitter for Lttng {
        #[inline]
        fn emit(&mut self) -> bool {
            // SAFETY: every pointer is to a static of the length passed with
            // it (the ids are 16 and 8 bytes, as the tracepoint's arrays); the
            // tracepoint only reads them during the call.
            unsafe {
                logbus_bench_lttng_record(
                    SEVERITY,
                    TARGET.as_ptr(),
                    TARGET.len(),
                    MESSAGE.as_ptr(),
                    MESSAGE.len(),
                    TRACE_ID.as_ptr(),
                    SPAN_ID.as_ptr(),
                )
            };
            // A tracepoint says nothing of a discarded event: LTTng counts
            // those itself (the harness reads the trace).
            true
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--probe") {
        #[cfg(lttng)]
        std::process::exit(0);
        #[cfg(not(lttng))]
        {
            println!("LTTng-UST was not built in (no liblttng-ust-dev when benches/build.rs ran)");
            std::process::exit(2);
        }
    }
    #[cfg(not(lttng))]
    logbus_benches::fail(
        "LTTng-UST was not built in (no liblttng-ust-dev when benches/build.rs ran)",
    );
    #[cfg(lttng)]
    {
        use logbus_benches::drive::{drive, sample_every};
        use logbus_benches::fail;
        let num = |i: usize| -> u64 {
            let a = args.get(i).map_or("", String::as_str);
            a.parse()
                .unwrap_or_else(|e| fail(format_args!("argument {i} {a:?}: {e}")))
        };
        let samples = std::path::Path::new(args.get(2).map_or("", String::as_str));
        let d = drive(num(0) as usize, num(1), sample_every(8), || {
            tracepoint::Lttng
        });
        d.report(0, samples);
    }
}
