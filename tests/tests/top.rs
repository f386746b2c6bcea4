//! `logbus top` as a person sees it: the full-screen view running in a real
//! terminal (a tmux server on a socket of its own), read with
//! `capture-pane`, while a flooding and a quiet producer process write a
//! default ring and a real collector delivers it to a healthy file sink and
//! an OTLP sink whose endpoint is a closed port. And `--once --json`, the
//! same figures for scripts.
//!
//! Run with `cargo build --workspace --bins && cargo test -p logbus-tests --test top`.
//! Needs tmux (`apt-get install -y tmux`); without it the screen test says
//! so and passes.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output};

use logbus_tests::collector::*;
use logbus_tests::{bin, wait_for, TempDir};
use serde_json::Value as Json;

/// A default ring, a collector with a healthy file sink `disk` and a down
/// OTLP sink `otel`, a flooding producer (service `flood`) and a quiet one
/// (`quiet`, about 1,000 records a second).
struct Bus {
    ring: std::path::PathBuf,
    collector: Collector,
    producers: Vec<Child>,
}

impl Bus {
    fn start(dir: &TempDir) -> Bus {
        let ring = dir.path("ring");
        let o = Command::new(bin("logbus"))
            .env_remove("LOGBUS_RING")
            .arg("create")
            .arg(&ring)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // A port nobody listens on: bound, then closed.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let cfg = otlp_config(
            dir,
            &ring,
            &format!("endpoint = \"http://{closed}\"\ntimeout = \"1s\""),
            &file_sink("disk", &dir.path("disk.log"), ""),
        );
        let collector = Collector::start(dir, "c", &ring_and_config(&ring, &cfg));
        let flood = producer(&ring, "f", 1 << 40, &["--service", "flood"]);
        let quiet = producer(
            &ring,
            "q",
            1 << 40,
            &["--service", "quiet", "--pause-every", "1"],
        );
        wait_for("the OTLP sink reported down", LONG, || {
            (logbus_collector::status::status_path(&ring).is_file()
                && sink_status(&ring, "otel")["up"] == false)
                .then_some(())
        });
        Bus {
            ring,
            collector,
            producers: vec![flood, quiet],
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        for p in &mut self.producers {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = self.collector.stop();
    }
}

fn tmux(socket: &str, args: &[&str]) -> Output {
    Command::new("tmux")
        .args(["-L", socket, "-f", "/dev/null"])
        .args(args)
        .output()
        .expect("run tmux")
}

/// Kills the test's tmux server, however the test ends.
struct TmuxServer(String);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = tmux(&self.0, &["kill-server"]);
    }
}

/// The row after the header row that starts with `header` in `screen`.
fn first_row_after<'s>(screen: &'s str, header: &str) -> Option<&'s str> {
    let mut lines = screen.lines();
    lines.find(|l| l.trim_start_matches('│').starts_with(header))?;
    lines.next()
}

#[test]
fn the_screen_shows_the_flooding_process_first_and_the_down_sink_marked() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (apt-get install -y tmux)");
        return;
    }
    let dir = TempDir::new("top-tmux");
    let bus = Bus::start(&dir);
    let socket = format!("logbus-top-test-{}", std::process::id());
    let server = TmuxServer(socket.clone());
    let cmd = format!("{} top {}", bin("logbus").display(), bus.ring.display());
    let o = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "50",
            &cmd,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut last = String::new();
    let screen = wait_for("flood first and otel DOWN on the screen", LONG, || {
        let o = tmux(&socket, &["capture-pane", "-p", "-t", "top"]);
        last = String::from_utf8_lossy(&o.stdout).into_owned();
        let first = first_row_after(&last, "PID")?;
        let otel = last.lines().find(|l| l.contains("│otel "))?;
        let rated = first
            .split_whitespace()
            .nth(3)
            .is_some_and(|r| r != "-" && r != "0");
        (first.contains(" flood ") && rated && otel.contains("DOWN") && last.contains(" quiet "))
            .then(|| last.clone())
    });
    println!("{screen}");
    // The ring's row: fill of the default 512 blocks, the collector as consumer.
    let ring_row = first_row_after(&screen, "RING").unwrap();
    assert!(ring_row.contains("/512"), "{ring_row}");
    assert!(
        ring_row.contains(&bus.collector.pid().to_string()),
        "{ring_row}"
    );
    let disk = screen.lines().find(|l| l.contains("│disk ")).unwrap();
    assert!(disk.contains(" up ") && !disk.contains("DOWN"), "{disk}");

    // q quits and gives the terminal back: the pane's command ends.
    tmux(&socket, &["send-keys", "-t", "top", "q"]);
    wait_for("logbus top to quit on q", LONG, || {
        (!tmux(&socket, &["has-session", "-t", "top"])
            .status
            .success())
        .then_some(())
    });
    drop(server);
}

#[test]
fn once_json_names_every_figure() {
    let dir = TempDir::new("top-json");
    let bus = Bus::start(&dir);
    let run = |ring: &Path| -> Json {
        let o = Command::new(bin("logbus"))
            .env_remove("LOGBUS_RING")
            .args(["top", "--once", "--json", "--interval-ms", "500"])
            .arg(ring)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8(o.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        serde_json::from_str(&text).unwrap()
    };
    // Producers publish their counts once per block: wait until both have.
    let v = wait_for("both producers counted", LONG, || {
        let v = run(&bus.ring);
        let p = v["producers"].as_array()?;
        let rated = |s: &str| {
            p.iter()
                .any(|x| x["service"] == s && x["records_per_s"].as_f64() > Some(0.0))
        };
        (rated("flood") && rated("quiet") && p[0]["service"] == "flood").then_some(v)
    });
    let ring = &v["rings"][0];
    assert_eq!(ring["path"], bus.ring.display().to_string());
    assert_eq!(ring["blocks"], 512);
    assert_eq!(ring["mode"], "lossy");
    assert_eq!(ring["consumer_pid"], bus.collector.pid());
    assert!(ring["in_per_s"]["INFO"].as_f64().unwrap() > 0.0, "{ring}");
    assert!(ring["out_per_s"]["INFO"].as_f64().is_some(), "{ring}");
    for key in [
        "dropped_per_s",
        "evicted_per_s",
        "torn_per_s",
        "waits_per_s",
        "blocks_in_use",
    ] {
        assert!(ring[key].is_number(), "{key}: {ring}");
    }
    let sink = |name: &str| {
        v["sinks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no sink {name}: {v}"))
    };
    let (otel, disk) = (sink("otel"), sink("disk"));
    assert_eq!(otel["up"], false, "{otel}");
    assert_eq!(disk["up"], true, "{disk}");
    for s in [&otel, &disk] {
        for key in ["backlog", "written_per_s", "dropped", "retries"] {
            assert!(s[key].is_number(), "{key}: {s}");
        }
        assert!(s.get("writing_for_ms").is_some(), "{s}");
    }
    assert!(otel["retries"].as_u64() > Some(0), "{otel}");
    let uid = unsafe { libc::getuid() };
    for p in v["producers"].as_array().unwrap() {
        assert_eq!(p["uid"], uid, "{p}");
        assert!(p["pid"].as_u64() > Some(0), "{p}");
        assert!(p["dropped_last_interval"].is_u64(), "{p}");
        assert_eq!(p["alive"], true, "{p}");
    }
    assert_eq!(v["problems"], Json::Array(vec![]));

    // A ring that vanishes: one line, exit 0, no crash.
    std::fs::remove_file(&bus.ring).unwrap();
    let v = run(&bus.ring);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .contains(&bus.ring.display().to_string()),
        "{v}"
    );
}

#[test]
fn a_file_that_is_not_a_ring_is_one_line() {
    let dir = TempDir::new("top-notring");
    let path = dir.path("notes.txt");
    std::fs::write(
        &path,
        "just some text, long enough to not be a header at all\n".repeat(100),
    )
    .unwrap();
    let o = Command::new(bin("logbus"))
        .env_remove("LOGBUS_RING")
        .args(["top", "--once", "--interval-ms", "100"])
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("notes.txt")).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(!out.contains("panicked"), "{out}");
}
