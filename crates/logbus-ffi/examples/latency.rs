//! C `logbus_log` vs Rust `Producer::emit` for the same record, in one process.
//!
//! ```sh
//! cargo build --release -p logbus-ffi --lib --examples && cargo build --release -p logbus-cli
//! target/release/examples/latency [ROUNDS]
//! ```
//!
//! `liblogbus_c.so` is loaded with `dlopen` (as a C program would link it: calls
//! go through a function pointer, nothing is inlined into the caller), next to
//! this executable's directory (`target/release/`) unless `LOGBUS_C_LIB` names
//! it. With `LOGBUS_C_STATIC=1` the same functions are instead called from
//! this executable's own copy of the library (what a C program linking
//! `liblogbus_c.a` gets: thread-locals in the executable's fast TLS model, no
//! PLT), still through function pointers. Each round makes two fresh rings with `logbus create` (64 MiB
//! each), writes one lap into each and drains them with `logbus drain`
//! (untimed: from then on the rings' pages are mapped, as in a running system),
//! then alternates batches of 100 calls, Rust, C, Rust, C..., draining both
//! rings (untimed) every 200 batches so that no record is dropped. Printed: per
//! round, the median over batches of ns per call for each; at the end the
//! median of those medians, and the difference.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use logbus::{Event, Outcome, Producer};
use logbus_c::Logbus;

const BATCH: usize = 100;
const BATCHES: usize = 5000;

type Open = unsafe extern "C" fn(*const c_char) -> *mut Logbus;
type Log = unsafe extern "C" fn(*const Logbus, c_int, *const c_char, *const c_char) -> c_int;
type Close = unsafe extern "C" fn(*mut Logbus);

struct CLib {
    open: Open,
    log: Log,
    close: Close,
}

fn load(path: &Path) -> CLib {
    let cpath = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; the library is never unloaded.
    let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {} failed", path.display());
    let sym = |name: &std::ffi::CStr| {
        // SAFETY: a live handle and a NUL-terminated name.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        assert!(!p.is_null(), "{name:?} not found");
        p
    };
    // SAFETY: the symbols are the extern "C" functions of logbus-ffi, whose
    // signatures are the types above (see include/logbus.h).
    unsafe {
        CLib {
            open: std::mem::transmute::<*mut c_void, Open>(sym(c"logbus_open")),
            log: std::mem::transmute::<*mut c_void, Log>(sym(c"logbus_log")),
            close: std::mem::transmute::<*mut c_void, Close>(sym(c"logbus_close")),
        }
    }
}

/// Batches between two drains: 20,000 records, far under the INFO watermark
/// of a 64 MiB ring.
const DRAIN_EVERY: usize = 200;

/// A fresh ring of 64 MiB.
fn make_ring(logbus: &Path, name: &str) -> PathBuf {
    let path = PathBuf::from(format!(
        "/dev/shm/logbus-latency-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    run(Command::new(logbus)
        .args(["create", "--size", "64M"])
        .arg(&path));
    path
}

/// `logbus drain RING`, output discarded.
fn drain(logbus: &Path, ring: &Path) {
    run(Command::new(logbus).arg("drain").arg(ring));
}

fn run(cmd: &mut Command) {
    let st = cmd
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?} failed");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(5, |a| a.parse().expect("ROUNDS"));
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap(); // target/<profile>
    let lib = std::env::var_os("LOGBUS_C_LIB")
        .map_or_else(|| profile.join("liblogbus_c.so"), PathBuf::from);
    let logbus = profile.join("logbus");
    let c = if std::env::var_os("LOGBUS_C_STATIC").is_some() {
        // The library's functions linked into this executable (as a C program
        // linking liblogbus_c.a gets them), called through pointers.
        std::hint::black_box(CLib {
            open: logbus_c::logbus_open,
            log: logbus_c::logbus_log,
            close: logbus_c::logbus_close,
        })
    } else {
        load(&lib)
    };
    let (target, msg) = (c"bench", c"request handled");
    let (mut rust_p50s, mut c_p50s) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (ring_r, ring_c) = (make_ring(&logbus, "rust"), make_ring(&logbus, "c"));
        let producer = Producer::open(&ring_r).expect("open the Rust ring");
        let cring = CString::new(ring_c.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        let lb = unsafe { (c.open)(cring.as_ptr()) };
        assert!(!lb.is_null());
        let event = Event {
            target: "bench",
            ..Event::new(9, "request handled")
        };
        // Warm-up: each side makes its writer and writes a lap, so that the
        // pages it will use are touched.
        for _ in 0..2 {
            for _ in 0..32_768 {
                assert_eq!(producer.emit(&event), Outcome::Written { evicted: 0 });
                // SAFETY: a live handle and NUL-terminated strings.
                assert_eq!(unsafe { (c.log)(lb, 9, target.as_ptr(), msg.as_ptr()) }, 0);
            }
            drain(&logbus, &ring_r);
            drain(&logbus, &ring_c);
        }
        let (mut rust, mut cc) = (Vec::with_capacity(BATCHES), Vec::with_capacity(BATCHES));
        let (mut rust_bad, mut c_bad) = (0usize, 0usize);
        for b in 0..BATCHES {
            if b % DRAIN_EVERY == 0 {
                drain(&logbus, &ring_r);
                drain(&logbus, &ring_c);
            }
            let t = Instant::now();
            for _ in 0..BATCH {
                rust_bad += usize::from(!matches!(producer.emit(&event), Outcome::Written { .. }));
            }
            rust.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
            let t = Instant::now();
            for _ in 0..BATCH {
                // SAFETY: as above.
                c_bad += usize::from(unsafe { (c.log)(lb, 9, target.as_ptr(), msg.as_ptr()) } != 0);
            }
            cc.push(t.elapsed().as_nanos() as f64 / BATCH as f64);
        }
        assert_eq!((rust_bad, c_bad), (0, 0), "every record is written");
        let (r, cm) = (median(&mut rust), median(&mut cc));
        println!("round {round}: Producer::emit p50 {r:.1} ns, logbus_log p50 {cm:.1} ns, diff {:+.1} ns", cm - r);
        rust_p50s.push(r);
        c_p50s.push(cm);
        // SAFETY: the handle from open, closed once.
        unsafe { (c.close)(lb) };
        drop(producer);
        let _ = std::fs::remove_file(&ring_r);
        let _ = std::fs::remove_file(&ring_c);
    }
    let (r, cm) = (median(&mut rust_p50s), median(&mut c_p50s));
    println!(
        "median of {rounds} rounds ({BATCHES} interleaved batches of {BATCH} calls each): Producer::emit {r:.1} ns, logbus_log {cm:.1} ns, difference {:+.1} ns",
        cm - r
    );
}
