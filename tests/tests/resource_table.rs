//! The ring's resource table when it has no room: many short-lived real
//! processes register services into one default ring with no collector
//! running (so none of their records is read and no entry can be reused),
//! then a collector drains it. Every record keeps its service.
//!
//! Run with `cargo build --workspace --bins && cargo test -p logbus-tests --test resource_table`.

use std::process::Command;

use logbus_ring::layout::RESOURCES;
use logbus_tests::collector::*;
use logbus_tests::{bin, TempDir};
use serde_json::Value as Json;

/// More processes than the table has entries, some by the CLI
/// (`logbus emit --service`), some by the library (`test-producer`).
const CLI_PROCESSES: usize = RESOURCES + 6;
const LIB_PROCESSES: usize = 4;

#[test]
fn processes_past_the_tables_size_keep_their_service() {
    let dir = TempDir::new("res-full");
    let ring = dir.path("ring");
    // The default geometry, as a user gets it.
    let o = Command::new(bin("logbus"))
        .env_remove("LOGBUS_RING")
        .args(["create", ring.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let mut full_warnings = Vec::new();
    for i in 0..CLI_PROCESSES {
        let o = Command::new(bin("logbus"))
            .env_remove("LOGBUS_RING")
            .args([
                "emit",
                "--service",
                &format!("svc-{i}"),
                "--field",
                &format!("i={i}"),
            ])
            .arg(&ring)
            .arg(format!("hello from {i}"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "emit {i}: {err}");
        if i < RESOURCES {
            assert!(err.is_empty(), "emit {i} had room but said: {err}");
        } else {
            full_warnings.push(err);
        }
    }
    for (k, err) in full_warnings.iter().enumerate() {
        // The exited processes are not called live, and the user is told
        // the records still carry their service.
        assert!(
            err.contains(&format!(
                "0 by live processes, {RESOURCES} by exited processes whose records may still be unread"
            )) && err.contains(&format!("svc-{}", RESOURCES + k))
                && err.contains("carry its name themselves")
                && err.lines().count() == 1,
            "{err}"
        );
    }
    for j in 0..LIB_PROCESSES {
        let p = producer(
            &ring,
            &format!("lib{j}"),
            3,
            &["--service", &format!("lib-{j}")],
        );
        finish(p);
    }

    let out = dir.path("all.log");
    let cfg = dir.path("c.toml");
    write_config(
        &cfg,
        &format!(
            "[ring]\npath = \"{}\"\n\n{}",
            ring.display(),
            file_sink("all", &out, "")
        ),
    );
    let mut c = Collector::start(&dir, "c", &ring_and_config(&ring, &cfg));
    let total = CLI_PROCESSES + 3 * LIB_PROCESSES;
    let lines = wait_lines(&out, total);
    assert!(c.stop().success());
    let lines = lines[..].to_vec();
    assert_eq!(lines.len(), total, "{lines:#?}");
    let mut seen = vec![false; CLI_PROCESSES];
    for line in &lines {
        let v: Json = serde_json::from_str(line).unwrap();
        let msg = v["msg"].as_str().unwrap();
        let service = v["service"]
            .as_str()
            .unwrap_or_else(|| panic!("no service: {line}"));
        if let Some(i) = msg.strip_prefix("hello from ") {
            let i: usize = i.parse().unwrap();
            assert_eq!(service, format!("svc-{i}"), "{line}");
            assert_eq!(v["fields"]["i"], Json::from(i as u64), "{line}");
            seen[i] = true;
        } else {
            let prefix = msg.split('-').next().unwrap();
            let j = prefix.strip_prefix("lib").unwrap();
            assert_eq!(service, format!("lib-{j}"), "{line}");
        }
    }
    assert!(seen.iter().all(|&s| s), "missing records: {seen:?}");
}
