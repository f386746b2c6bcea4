//! Helpers for the multi-process integration tests under `tests/tests/`.
//!
//! The tests run the workspace's real binaries, found next to the test
//! executable's `deps/` directory. `cargo test` builds only this package's
//! own binaries, so `scripts/test` runs `cargo build --workspace --bins
//! --examples` first.

use std::path::{Path, PathBuf};

pub mod chaos;
pub mod collector;

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

/// Runs `logbus ARGS` (no `$LOGBUS_RING` from the environment), asserts that
/// it succeeded (else fails with its status and stderr), and returns its
/// output.
pub fn logbus_ok(args: &[&str]) -> std::process::Output {
    let o = std::process::Command::new(bin("logbus"))
        .args(args)
        .env_remove("LOGBUS_RING")
        .output()
        .expect("run logbus");
    assert!(
        o.status.success(),
        "logbus {args:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Path of an example binary of this workspace (see [`bin`]).
pub fn example(name: &str) -> PathBuf {
    bin(&format!("examples/{name}"))
}

pub use logbus_testkit::{otlp_receiver, wait_for, TempDir};
