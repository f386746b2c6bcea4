//! Builds the LTTng-UST tracepoint provider (`lttng/tp.c`) into the
//! `lttng-producer` binary when the host has LTTng-UST's headers
//! (`liblttng-ust-dev`, found by `pkg-config lttng-ust`), and sets
//! `cfg(lttng)` for it. Without them nothing is built, and the compare
//! harness skips the LTTng row, saying why.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lttng)");
    println!("cargo::rerun-if-changed=lttng/tp.c");
    println!("cargo::rerun-if-changed=lttng/tp.h");
    println!("cargo::rerun-if-env-changed=LOGBUS_BENCH_NO_LTTNG");
    if std::env::var_os("LOGBUS_BENCH_NO_LTTNG").is_some() {
        return;
    }
    let Some(flags) = pkg_config(&["--cflags", "--libs", "lttng-ust"]) else {
        println!("cargo::warning=LTTng-UST not found (pkg-config lttng-ust): compare skips its row; apt-get install liblttng-ust-dev lttng-tools babeltrace2");
        return;
    };
    let mut build = cc::Build::new();
    build
        .file("lttng/tp.c")
        .include("lttng")
        .cargo_metadata(false);
    for f in flags.iter().filter_map(|f| f.strip_prefix("-I")) {
        build.include(f);
    }
    let objects = match build.try_compile_intermediates() {
        Ok(o) => o,
        Err(e) => {
            println!("cargo::warning=the LTTng-UST tracepoint provider did not build ({e}): compare skips its row");
            return;
        }
    };
    // Objects (not an archive), so that the linker keeps the probe's
    // constructors; only this binary links LTTng-UST.
    for o in &objects {
        println!("cargo::rustc-link-arg-bin=lttng-producer={}", o.display());
    }
    // No section garbage collection: the tracepoints' pointer section is
    // reached only through its __start_/__stop_ symbols, which newer linkers
    // do not count as a use (the tracepoint would never be registered).
    println!("cargo::rustc-link-arg-bin=lttng-producer=-Wl,--no-gc-sections");
    println!("cargo::rustc-link-arg-bin=lttng-producer=-Wl,--no-as-needed");
    for f in &flags {
        if f.starts_with("-l") || f.starts_with("-L") {
            println!("cargo::rustc-link-arg-bin=lttng-producer={f}");
        }
    }
    println!("cargo::rustc-link-arg-bin=lttng-producer=-Wl,--as-needed");
    println!("cargo::rustc-cfg=lttng");
}

/// `pkg-config ARGS`'s words, or None when it fails or is missing.
fn pkg_config(args: &[&str]) -> Option<Vec<String>> {
    let o = Command::new("pkg-config").args(args).output().ok()?;
    o.status.success().then(|| {
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    })
}
