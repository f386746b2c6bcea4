#![allow(dead_code)]
//! Helpers for the producer's integration tests.
//!
//! Every test that needs a real program runs *this test binary again* as a
//! child process, with `LOGBUS_TEST_CHILD` naming the part to play and
//! `LOGBUS_RING` pointing into a temp dir: the child calls `logbus::init()`
//! (which installs process-wide state, hence a process of its own), logs, and
//! exits; the test then reads the ring back with a `Consumer`.

use std::path::Path;
use std::process::{Command, Output};

use logbus_ring::{Batch, Consumer, Resource, Ring, Value};

/// The environment variable telling a re-executed test binary which child part to play.
pub const CHILD_ENV: &str = "LOGBUS_TEST_CHILD";

pub use logbus_testkit::TempDir;

/// The role this process plays, if it is a re-executed child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Runs test `test` of this binary as a child playing `role`, writing to `ring`,
/// with extra environment `env`; returns its output after checking it succeeded.
pub fn run_child(test: &str, role: &str, ring: &Path, env: &[(&str, &str)]) -> (u32, Output) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .env("LOGBUS_RING", ring)
        .env_remove("LOGBUS_LEVEL")
        .env_remove("OTEL_SERVICE_NAME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "child {role} failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, out)
}

/// The value of `KEY=value` on a line of the child's stdout.
pub fn reported(out: &Output, key: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{key}=");
    text.lines()
        .find_map(|l| l.find(&prefix).map(|i| &l[i + prefix.len()..]))
        .unwrap_or_else(|| panic!("child did not report {key}; stdout:\n{text}"))
        .trim()
        .to_string()
}

/// An owned field value.
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl From<Value<'_>> for V {
    fn from(v: Value<'_>) -> V {
        match v {
            Value::Str(s) => V::Str(s.to_string()),
            Value::I64(v) => V::I64(v),
            Value::U64(v) => V::U64(v),
            Value::F64(v) => V::F64(v),
            Value::Bool(v) => V::Bool(v),
        }
    }
}

/// An owned copy of a record.
#[derive(Clone, Debug)]
pub struct Rec {
    pub severity: u8,
    pub target: String,
    pub message: String,
    pub pid: u32,
    pub tid: u32,
    pub time_ns: u64,
    pub fields: Vec<(String, V)>,
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub trace_flags: u8,
    pub resource: Option<Resource>,
}

impl Rec {
    pub fn field(&self, key: &str) -> Option<&V> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Every record in the ring at `path`, in the order the consumer reads them
/// (emit order for each thread).
pub fn drain(path: &Path) -> Vec<Rec> {
    let ring = Ring::open_existing(path).unwrap();
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut batch = Batch::new();
    let mut out = Vec::new();
    loop {
        if consumer.poll(&mut batch, 4096) == 0 {
            break;
        }
        for r in batch.iter() {
            out.push(Rec {
                severity: r.severity(),
                target: r.target().to_string(),
                message: r.message().to_string(),
                pid: r.pid(),
                tid: r.tid(),
                time_ns: r.time_ns(),
                fields: r.fields().map(|(k, v)| (k.to_string(), v.into())).collect(),
                trace_id: r.trace_id(),
                span_id: r.span_id(),
                trace_flags: r.trace_flags(),
                resource: ring.resource(r.resource(), r.pid()),
            });
        }
        consumer.commit_all();
    }
    out.sort_by_key(|r| r.time_ns);
    out
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
