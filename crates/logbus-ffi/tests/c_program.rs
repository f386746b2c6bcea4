//! Compiles `tests/c/producer.c` with the system C compiler against the
//! `liblogbus_c.so` and `liblogbus_c.a` cargo built for this test, runs it on a
//! scratch ring and checks its records with `logbus dump --json`.
//!
//! Needs `cc` (or `$CC`) and the `logbus` binary built in the same profile
//! (`scripts/test` builds every binary first). `cargo test` links this
//! package's library into the test as an rlib only, so the test first runs
//! `cargo build --lib` for the C libraries (quick when they are up to date).

use std::path::{Path, PathBuf};
use std::process::Command;

use logbus_testkit::TempDir;

/// target/<profile>, where cargo puts this package's libraries and the workspace's binaries.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds liblogbus_c.so and liblogbus_c.a of the current sources into target/<profile>.
fn build_c_libraries() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = profile_dir();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--lib", "--manifest-path"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.parent().expect("target/<profile> has a parent"));
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => {}
            Some("release") => {
                cmd.arg("--release");
            }
            Some(other) => {
                cmd.args(["--profile", other]);
            }
            None => panic!("no profile directory"),
        }
        let status = cmd.status().expect("run cargo build --lib");
        assert!(status.success(), "{cmd:?} failed");
    });
}

fn compile(out: &Path, static_lib: bool) {
    build_c_libraries();
    let dir = profile_dir();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-std=c11",
        "-D_DEFAULT_SOURCE",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
    ])
    .arg("-I")
    .arg(manifest.join("include"))
    .arg(manifest.join("tests/c/producer.c"))
    .arg("-o")
    .arg(out);
    if static_lib {
        cmd.arg(dir.join("liblogbus_c.a"))
            .args(["-lpthread", "-ldl", "-lm", "-lrt", "-lgcc_s"]);
    } else {
        cmd.arg("-L")
            .arg(&dir)
            .arg("-llogbus_c")
            .arg(format!("-Wl,-rpath,{}", dir.display()))
            .arg("-lpthread");
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("run {cc}: {e}"));
    assert!(status.success(), "compiling producer.c failed: {cmd:?}");
}

fn dump_json(ring: &Path) -> Vec<serde_json::Value> {
    let logbus = profile_dir().join("logbus");
    assert!(
        logbus.exists(),
        "{} is not built; run scripts/test, or `cargo build --workspace --bins` first",
        logbus.display()
    );
    let out = Command::new(&logbus)
        .args(["dump", "--json"])
        .arg(ring)
        .output()
        .expect("run logbus dump");
    assert!(
        out.status.success(),
        "logbus dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("dump prints UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn run_and_check(static_lib: bool) {
    let scratch = TempDir::new(if static_lib {
        "ffi-static"
    } else {
        "ffi-shared"
    });
    let exe = scratch.path("producer");
    compile(&exe, static_lib);
    let ring = scratch.ring();
    let out = Command::new(&exe)
        .env("LOGBUS_RING", &ring)
        .env("OTEL_SERVICE_NAME", "c-test")
        .output()
        .expect("run the C producer");
    assert!(
        out.status.success(),
        "C producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let pid_of = |who: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(who)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {who} line in {stdout:?}"))
    };
    let (parent, child) = (pid_of("parent "), pid_of("child "));

    let records = dump_json(&ring);
    let by_target = |t: &str| -> Vec<&serde_json::Value> {
        records.iter().filter(|r| r["target"] == t).collect()
    };

    // Threads: 4 x 50 records, each thread's in order, distinct tids, no errors written.
    let threads = by_target("c::thread");
    assert_eq!(threads.len(), 200);
    let mut tids: Vec<u64> = threads.iter().map(|r| r["tid"].as_u64().unwrap()).collect();
    tids.sort_unstable();
    tids.dedup();
    assert_eq!(tids.len(), 4, "each thread writes under its own tid");
    for t in 0..4 {
        let mut seen: Vec<u32> = threads
            .iter()
            .filter_map(|r| {
                let m = r["msg"].as_str()?;
                let rest = m.strip_prefix(&format!("thread {t} record "))?;
                rest.parse().ok()
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }
    assert!(threads
        .iter()
        .all(|r| r["severity"] == 9 && r["pid"] == parent));
    assert!(by_target("c::err").is_empty(), "failed calls write nothing");

    // Trace ids from hex (any case); all-zero ids are none.
    let traced = by_target("c::trace");
    assert_eq!(traced.len(), 3);
    let get = |m: &str| *traced.iter().find(|r| r["msg"] == m).unwrap();
    assert_eq!(
        get("traced")["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(get("traced")["span_id"], "00f067aa0ba902b7");
    assert_eq!(
        get("trace only")["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(get("trace only").get("span_id").is_none());
    assert!(get("zero ids").get("trace_id").is_none());
    assert!(get("zero ids").get("span_id").is_none());

    // Typed fields, explicit lengths, binary ids.
    let f = by_target("c::fields");
    assert_eq!(f.len(), 1);
    let f = f[0];
    assert_eq!(f["severity"], 17);
    assert_eq!(f["msg"], "before\u{0}after");
    assert_eq!(f["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(f["span_id"], "b7ad6b7169203331");
    let fields = &f["fields"];
    assert_eq!(fields["user"], "ann");
    assert_eq!(fields["delta"], -42);
    assert_eq!(fields["bytes"], u64::MAX);
    assert_eq!(fields["ratio"], 0.25);
    assert_eq!(fields["ok"], true);
    assert_eq!(fields["raw"], "a\u{fffd}b", "invalid UTF-8 is replaced");

    // fork(): the child's record carries the child's pid.
    let forked = by_target("c::fork");
    assert_eq!(forked.len(), 2);
    let pid_of_msg = |m: &str| forked.iter().find(|r| r["msg"] == m).unwrap()["pid"].clone();
    assert_eq!(pid_of_msg("from the child"), child);
    assert_eq!(pid_of_msg("from the parent"), parent);
    assert_ne!(child, parent);
}

#[test]
fn c_program_through_the_shared_library() {
    run_and_check(false);
}

#[test]
fn c_program_through_the_static_library() {
    run_and_check(true);
}
