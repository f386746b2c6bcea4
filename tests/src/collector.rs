//! The collector as people run it, for the tests: a running
//! `logbus-collector` with its output in files, `test-producer` processes,
//! and the checks the tests share (every record exactly once).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value as Json;

use crate::{bin, wait_for, TempDir};

/// The failure bound of every wait in these tests.
pub const LONG: Duration = Duration::from_secs(30);

/// A running collector with its stdout and stderr captured in files.
pub struct Collector {
    /// The process.
    pub child: Child,
    /// Its standard output, in a file.
    pub stdout: PathBuf,
    /// Its standard error, in a file.
    pub stderr: PathBuf,
}

impl Collector {
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

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

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

    pub fn wait_stderr(&self, what: &str, needle: &str) {
        self.wait_stderr_n(what, needle, 1)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0, "kill");
    }

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

pub fn producer(ring: &Path, prefix: &str, count: u64, extra: &[&str]) -> Child {
    Command::new(bin("test-producer"))
        .arg(ring)
        .args(["--count", &count.to_string(), "--prefix", prefix, "--retry"])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn test-producer")
}

pub fn finish(mut p: Child) {
    let st = wait_for("producer exit", Duration::from_secs(60), || {
        p.try_wait().unwrap()
    });
    assert!(st.success(), "producer failed: {st}");
}

/// The complete lines of `path`: a last line without its newline is still
/// being written (a reader can see part of a large write) and is left out.
pub fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().map(str::to_string).collect()
}

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

/// (prefix, number) of each record an OTLP endpoint received, from its
/// string body `prefix-number`.
pub fn body_numbers(records: &[crate::otlp_receiver::ReceivedLog]) -> Vec<(String, u64)> {
    records
        .iter()
        .map(|l| {
            let body = l.body().expect("string body");
            let (p, n) = body.rsplit_once('-').expect("prefix-n");
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

pub fn all(prefix: &str, range: std::ops::Range<u64>) -> Vec<(String, u64)> {
    range.map(|n| (prefix.to_string(), n)).collect()
}

/// A `[[sinks]]` table for a file sink `name` writing `path`, with `extra`
/// lines (each ending in a newline).
pub fn file_sink(name: &str, path: &Path, extra: &str) -> String {
    format!(
        "[[sinks]]\nname = \"{name}\"\ntype = \"file\"\npath = \"{}\"\n{extra}",
        path.display()
    )
}

/// `--ring RING --config CFG`.
pub fn ring_and_config<'a>(ring: &'a Path, cfg: &'a Path) -> [&'a str; 4] {
    let s = |p: &'a Path| p.to_str().expect("utf-8 path");
    ["--ring", s(ring), "--config", s(cfg)]
}

pub fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub fn status(ring: &Path) -> Json {
    let p = logbus_collector::status::status_path(ring);
    serde_json::from_str(&std::fs::read_to_string(p).expect("status file")).expect("status json")
}

pub fn sink_status(ring: &Path, name: &str) -> Json {
    status(ring)["sinks"]
        .as_array()
        .expect("sinks")
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name} in status"))
}

pub fn otlp_config(dir: &TempDir, ring: &Path, sink: &str, extra: &str) -> PathBuf {
    let cfg = dir.path("c.toml");
    write_config(
        &cfg,
        &format!(
            "[ring]\npath = \"{}\"\nshutdown_timeout = \"2s\"\n\n[[sinks]]\nname = \"otel\"\ntype = \"otlp\"\n{sink}\n{extra}",
            ring.display()
        ),
    );
    cfg
}

/// `GET path` from an HTTP server at `addr`, the whole answer.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect metrics");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The metrics address a collector started with `--metrics 127.0.0.1:0` printed.
pub fn metrics_addr(c: &Collector) -> String {
    c.wait_stderr("the metrics line", "metrics at http://");
    c.stderr_text()
        .split("metrics at http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("metrics address")
        .to_string()
}
