//! What the compare harness reads about processes: a child's CPU time
//! (`wait4`), a process's own peak RSS (`VmHWM`), a thread's page faults,
//! the load average.
//!
//! Peak RSS is not taken from `wait4`'s `ru_maxrss`: Linux carries the
//! high-water mark of the memory a process had before `exec` into it, and
//! `std::process::Command` spawns with `vfork` semantics, so a child's
//! `ru_maxrss` is at least its parent's RSS at the spawn (the harness's 23-27
//! MiB for a child that peaks at 3.5 MiB). `VmHWM` in `/proc/self/status` is
//! that of the process's own memory since `exec`; the children report it.
//!
//! A process's private memory (`RssAnon`: its heap and stacks, not the
//! shared pages of a ring or of files it maps) is sampled from outside, by
//! [`AnonSampler`], every 20 ms while it runs: `VmHWM` counts the ring's
//! pages too, which says nothing about what the collector itself holds.

/// Resource use of a finished child process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User + system CPU time, ns.
    pub cpu_ns: f64,
    /// Peak resident set size, KiB: the child's own [`peak_rss_kib`] (0
    /// from [`wait_child`], which cannot tell it; see the module doc).
    pub max_rss_kib: u64,
    /// Minor page faults over its lifetime (first touches of memory).
    pub minor_faults: u64,
    /// Peak private memory (`RssAnon`), KiB, as an [`AnonSampler`] saw it
    /// (0: not sampled).
    pub anon_peak_kib: u64,
}

fn cpu_ns(u: &libc::rusage) -> f64 {
    let t = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Waits for child `pid` (reaping it) and returns whether it exited with
/// status 0, and its resource use.
pub fn wait_child(pid: u32) -> std::io::Result<(bool, Usage)> {
    let mut status = 0;
    // SAFETY: a zeroed rusage (integers and timevals) is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waits for our own child; both pointers are valid for the call.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok((
        ok,
        Usage {
            cpu_ns: cpu_ns(&usage),
            max_rss_kib: 0,
            minor_faults: usage.ru_minflt as u64,
            anon_peak_kib: 0,
        },
    ))
}

/// The calling process's peak resident set size since `exec`, KiB (`VmHWM`
/// in `/proc/self/status`; 0 if unreadable).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_kib(&s, "VmHWM:"))
        .unwrap_or(0)
}

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`).
pub fn thread_minor_faults() -> u64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_minflt as u64
}

/// The kernel id of the calling thread.
pub fn thread_id() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), as printed there.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A field of `/proc/PID/status` in KiB (`VmHWM`, `RssAnon`, ...).
fn status_kib(status: &str, field: &str) -> Option<u64> {
    let l = status.lines().find(|l| l.starts_with(field))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// How often [`AnonSampler`] reads a process's `RssAnon`.
pub const ANON_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// Samples another process's private memory (`RssAnon` in
/// `/proc/PID/status`) every [`ANON_EVERY`] on a thread of its own, keeping
/// the peak, until [`AnonSampler::stop`].
pub struct AnonSampler {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<u64>,
}

impl AnonSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> AnonSampler {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let path = format!("/proc/{pid}/status");
        let thread = std::thread::spawn(move || {
            let sample = || {
                std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| status_kib(&s, "RssAnon:"))
                    .unwrap_or(0)
            };
            let mut peak = sample();
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(ANON_EVERY)
            {
                peak = peak.max(sample());
            }
            peak.max(sample())
        });
        AnonSampler { stop, thread }
    }

    /// Takes a last sample, stops, and returns the peak `RssAnon` seen, KiB.
    pub fn stop(self) -> u64 {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(0)
    }
}
