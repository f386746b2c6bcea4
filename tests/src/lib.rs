//! Helpers for the multi-process integration tests under `tests/tests/`.
//!
//! The tests run the workspace's real binaries, found next to the test
//! executable's `deps/` directory. `cargo test` builds only this package's
//! own binaries, so `scripts/test` runs `cargo build --workspace --bins
//! --examples` first.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

/// The failure bound of the waits on another process.
pub const LONG: Duration = Duration::from_secs(30);

/// Path of a binary (or, with `example = true`, an example) of this workspace,
/// built by the same `cargo test` profile.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run scripts/test, or `cargo build --workspace --bins --examples` first",
        path.display()
    );
    path
}

/// Path of an example binary of this workspace (see [`bin`]).
pub fn example(name: &str) -> PathBuf {
    bin(&format!("examples/{name}"))
}

/// A fresh directory (under `/dev/shm` when it exists, like real rings), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Makes a new, empty directory whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!(
            "logbus-test-{tag}-{}-{}",
            std::process::id(),
            logbus_ring::now_ns()
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` until it returns `Some` or `timeout` passes (then panics with
/// `what`). For waiting on a condition another process brings about; the
/// timeout is a generous failure bound, not a synchronisation delay.
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A running collector with its stdout and stderr captured in files.
pub struct Collector {
    /// The collector process.
    pub child: Child,
    /// The file its stdout goes to.
    pub stdout: PathBuf,
    /// The file its stderr goes to.
    pub stderr: PathBuf,
}

impl Collector {
    /// Starts `logbus-collector ARGS` (without `LOGBUS_RING` in its environment)
    /// and waits for its startup line; `tag` names its output files in `dir`.
    pub fn start(dir: &TempDir, tag: &str, args: &[&str]) -> Collector {
        let stdout = dir.path(&format!("{tag}.stdout"));
        let stderr = dir.path(&format!("{tag}.stderr"));
        let child = Command::new(bin("logbus-collector"))
            .args(args)
            .env_remove("LOGBUS_RING")
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn logbus-collector");
        let c = Collector {
            child,
            stdout,
            stderr,
        };
        c.wait_stderr("startup line", "consuming");
        c
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// What it wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until stderr has `n` lines containing `needle`.
    pub fn wait_stderr_n(&self, what: &str, needle: &str, n: usize) {
        let mut child_exited = None;
        wait_for(what, LONG, || {
            let text = self.stderr_text();
            if text.matches(needle).count() >= n {
                return Some(());
            }
            if child_exited.is_some() {
                panic!("collector exited while waiting for {what}; stderr:\n{text}");
            }
            child_exited = std::fs::metadata(format!("/proc/{}", self.child.id()))
                .is_err()
                .then_some(());
            None
        });
    }

    /// Waits until stderr has a line containing `needle`.
    pub fn wait_stderr(&self, what: &str, needle: &str) {
        self.wait_stderr_n(what, needle, 1)
    }

    /// Sends it signal `sig`.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill");
    }

    /// Waits for it to exit; its exit status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_for("collector exit", LONG, || self.child.try_wait().unwrap())
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lines of the file at `path` (none if it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the file at `path` has at least `n` lines; returns them all.
pub fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    wait_for(&format!("{n} lines in {}", path.display()), LONG, || {
        let l = lines(path);
        (l.len() >= n).then_some(l)
    })
}

/// (prefix, number) of each JSON line, from the message `prefix-number`.
pub fn numbers(json_lines: &[String]) -> Vec<(String, u64)> {
    json_lines
        .iter()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let msg = v["msg"].as_str().expect("msg");
            let (p, n) = msg.rsplit_once('-').expect("prefix-n");
            (p.to_string(), n.parse().expect("number"))
        })
        .collect()
}

/// Counts per (prefix, number).
pub fn tally(items: &[(String, u64)]) -> HashMap<(String, u64), usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i.clone()).or_insert(0) += 1;
    }
    m
}

/// Asserts that `items` holds every item of `expect` exactly once, and nothing else.
pub fn assert_exactly_once(items: &[(String, u64)], expect: &[(String, u64)]) {
    let t = tally(items);
    let dups: Vec<_> = t.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    let missing: Vec<_> = expect
        .iter()
        .filter(|e| !t.contains_key(*e))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(items.len(), expect.len(), "unexpected records");
}

/// `(prefix, n)` for every `n` in `range`.
pub fn all(prefix: &str, range: std::ops::Range<u64>) -> Vec<(String, u64)> {
    range.map(|n| (prefix.to_string(), n)).collect()
}
