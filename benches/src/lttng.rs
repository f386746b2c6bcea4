//! LTTng-UST beside logbus in the compare harness: the session daemon, one
//! user-space recording session per run, and what its daemons cost.
//!
//! The row needs `lttng`, `lttng-sessiond` and `babeltrace2` on `PATH` and
//! the `lttng-producer` binary built with LTTng-UST (`benches/build.rs`;
//! `apt-get install liblttng-ust-dev lttng-tools babeltrace2`). When one is
//! missing, [`Daemon::start`] says which, and the harness skips the row.
//!
//! A session records to a directory on `/dev/shm` (where logbus's sinks
//! write) through one channel of 8 sub-buffers of 1 MiB per CPU (16 MiB on
//! two CPUs, the default logbus ring's size), in LTTng's default discard
//! mode: an event that finds its CPU's buffer full is discarded and counted
//! by LTTng. The channel adds the `vpid` and `vtid` contexts, which every
//! logbus record carries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The session daemon the harness started (stopped on drop), or one that was
/// already running (left alone).
pub struct Daemon {
    child: Option<Child>,
}

/// `lttng ARGS`, quietly; the error names the command and what it printed.
fn lttng(args: &[&str]) -> Result<(), String> {
    let o = Command::new("lttng")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("lttng: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "lttng {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Whether `prog --version` runs.
fn runs(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Daemon {
    /// Checks every part the row needs, then makes sure a session daemon
    /// runs (starting one, user-space only, if none answers).
    ///
    /// # Errors
    /// Why the row cannot run, in one line.
    pub fn start(producer: &Path) -> Result<Daemon, String> {
        for prog in ["lttng", "lttng-sessiond", "babeltrace2"] {
            if !runs(prog) {
                return Err(format!(
                    "{prog} not found (apt-get install liblttng-ust-dev lttng-tools babeltrace2)"
                ));
            }
        }
        let probe = Command::new(producer)
            .arg("--probe")
            .output()
            .map_err(|e| format!("{}: {e}", producer.display()))?;
        if !probe.status.success() {
            return Err(String::from_utf8_lossy(&probe.stdout).trim().to_string());
        }
        if lttng(&["list"]).is_ok() {
            return Ok(Daemon { child: None });
        }
        let child = Command::new("lttng-sessiond")
            .arg("--no-kernel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("lttng-sessiond: {e}"))?;
        let daemon = Daemon { child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while lttng(&["list"]).is_err() {
            if Instant::now() > deadline {
                return Err("lttng-sessiond did not answer within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            // SAFETY: kill(2) on our own child's pid, not yet reaped.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// One recording session (destroyed, and its trace removed, on drop).
pub struct Session {
    name: String,
    out: PathBuf,
}

impl Session {
    /// Creates session `name` recording into `out`, with the harness's
    /// channel and the benchmark's tracepoint enabled, and starts it.
    ///
    /// # Errors
    /// The failed `lttng` command and what it said.
    pub fn start(name: &str, out: &Path) -> Result<Session, String> {
        let output = format!("--output={}", out.display());
        lttng(&["create", name, &output])?;
        let s = Session {
            name: name.to_string(),
            out: out.to_path_buf(),
        };
        let session = format!("--session={name}");
        lttng(&[
            "enable-channel",
            "--userspace",
            &session,
            "--subbuf-size=1M",
            "--num-subbuf=8",
            "bench",
        ])?;
        lttng(&[
            "add-context",
            "--userspace",
            &session,
            "--channel=bench",
            "--type=vpid",
            "--type=vtid",
        ])?;
        lttng(&[
            "enable-event",
            "--userspace",
            &session,
            "--channel=bench",
            "logbus_bench:record",
        ])?;
        lttng(&["start", name])?;
        Ok(s)
    }

    /// Stops recording; returns once LTTng has written every event it kept.
    ///
    /// # Errors
    /// The failed `lttng` command and what it said.
    pub fn stop(&self) -> Result<(), String> {
        lttng(&["stop", &self.name])
    }

    /// The number of events in the trace (read with `babeltrace2`).
    ///
    /// # Errors
    /// When babeltrace2 cannot be run or fails.
    pub fn count_events(&self) -> Result<u64, String> {
        let mut c = Command::new("babeltrace2")
            .arg(&self.out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("babeltrace2: {e}"))?;
        let out = c.stdout.take().expect("piped");
        let n = BufReader::new(out)
            .split(b'\n')
            .map_while(Result::ok)
            .filter(|l| l.windows(20).any(|w| w == b"logbus_bench:record:"))
            .count() as u64;
        let ok = c.wait().is_ok_and(|s| s.success());
        if ok {
            Ok(n)
        } else {
            Err(format!("babeltrace2 {} failed", self.out.display()))
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = lttng(&["destroy", &self.name]);
        let _ = std::fs::remove_dir_all(&self.out);
    }
}

/// CPU time (ns) and private memory (`RssAnon`, KiB) of every LTTng daemon
/// process (`lttng-sessiond`, `lttng-consumerd`), summed over their threads:
/// read before and after a run, the difference is what recording cost.
pub fn daemons_usage() -> (f64, u64) {
    let mut cpu = 0.0;
    let mut anon = 0;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return (0.0, 0);
    };
    for p in procs.flatten() {
        let dir = p.path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if !comm.trim().starts_with("lttng-") {
            continue;
        }
        if let Ok(tasks) = std::fs::read_dir(dir.join("task")) {
            for t in tasks.flatten() {
                // schedstat: time on CPU (ns), time waiting, timeslices.
                let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
                cpu += s
                    .split_whitespace()
                    .next()
                    .and_then(|x| x.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        anon += status
            .lines()
            .find(|l| l.starts_with("RssAnon:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (cpu, anon)
}
