//! The `logbus` command line, run as a real process against real ring files.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use logbus_ring::{Batch, Consumer, Event, Peeker, Ring};
use logbus_tests::{bin, wait_for, TempDir};
use serde_json::Value;

/// Generous failure bound for waits on other processes (never a delay).
const PATIENCE: Duration = Duration::from_secs(60);

fn logbus() -> Command {
    let mut c = Command::new(bin("logbus"));
    c.env_remove("LOGBUS_RING");
    // SIGINT as a terminal gives it: a test run started in the background of
    // a script (which ignores SIGINT, and children inherit that) would
    // otherwise see `tail` ignore the SIGINT the tests send.
    // SAFETY: between fork and exec only async-signal-safe calls: signal(2).
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    c
}

fn run(args: &[&str]) -> Output {
    logbus().args(args).output().expect("run logbus")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `logbus create PATH` for a tiny ring (32 blocks of 4 KiB),
/// with `extra` arguments.
fn create_tiny(path: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["create", s(path), "--size", "128K", "--block-size", "4K"];
    args.extend_from_slice(extra);
    run(&args)
}

/// A tiny ring (see `create_tiny`).
fn tiny_ring(dir: &TempDir) -> PathBuf {
    let path = dir.path("ring");
    let o = create_tiny(&path, &[]);
    assert!(o.status.success(), "create failed: {}", stderr(&o));
    path
}

/// Asserts a failure with exit code `code` and exactly one line on stderr,
/// `logbus: ...`, containing every one of `needles`; returns that line.
fn assert_one_line_error(o: &Output, code: i32, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(
        err.starts_with("logbus: ") && err.ends_with('\n'),
        "{err:?}"
    );
    for n in needles {
        assert!(err.contains(n), "{err:?} does not mention {n:?}");
    }
    err
}

fn json_lines(o: &Output) -> Vec<Value> {
    assert!(o.status.success(), "failed: {}", stderr(o));
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

fn stat_json(ring: &Path) -> Value {
    let o = run(&["stat", s(ring), "--json"]);
    assert!(o.status.success(), "stat failed: {}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "stat --json is one line");
    serde_json::from_str(&stdout(&o)).expect("stat JSON")
}

/// Runs `logbus emit RING args...` with `input` on standard input.
fn emit_lines(ring: &Path, args: &[&str], input: &str) -> Output {
    let mut child = logbus()
        .arg("emit")
        .arg(ring)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn emit");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn messages(records: &[Value]) -> Vec<&str> {
    records.iter().map(|r| r["msg"].as_str().unwrap()).collect()
}

/// Waits for `child` to exit, failing the test if it does not.
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    wait_for("the child to exit", PATIENCE, || child.try_wait().unwrap())
}

/// Forwards the child's stdout lines; stops (closing the pipe) after `keep` lines.
fn line_reader(child: &mut Child, keep: usize) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        for _ in 0..keep {
            match lines.next() {
                Some(Ok(l)) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    rx
}

#[test]
fn create_makes_a_private_ring_of_the_asked_geometry_once() {
    let dir = TempDir::new("cli-create");
    let path = dir.path("ring");
    let o = create_tiny(&path, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(s(&path)) && out.contains("32 blocks"), "{out}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    let ring = Ring::open_existing(&path).unwrap();
    let g = ring.geometry();
    assert_eq!((g.blocks, g.block_size), (32, 4096));

    // An existing file is never reinitialised.
    ring.writer()
        .unwrap()
        .emit(&Event::new(9, "keep me"))
        .unwrap();
    let o = create_tiny(&path, &[]);
    assert_one_line_error(&o, 1, &[s(&path), "exists"]);
    assert_eq!(json_lines(&run(&["dump", s(&path), "--json"])).len(), 1);

    let other = dir.path("shared");
    let o = create_tiny(&other, &["--mode", "640"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&other).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);

    // Impossible geometries are refused before anything is made.
    let bad = dir.path("bad");
    assert_one_line_error(
        &run(&["create", s(&bad), "--block-size", "5000"]),
        1,
        &[s(&bad), "power of two"],
    );
    assert_one_line_error(
        &run(&["create", s(&bad), "--size", "64K", "--block-size", "32K"]),
        1,
        &[s(&bad), "blocks"],
    );
    assert_one_line_error(&run(&["create", s(&bad), "--mode", "999"]), 2, &["999"]);
    assert!(!bad.exists());
}

#[test]
fn emit_with_every_option_round_trips_through_dump_json() {
    let dir = TempDir::new("cli-emit");
    let ring = tiny_ring(&dir);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = "00f067aa0ba902b7";
    let child = logbus()
        .args([
            "emit",
            s(&ring),
            "--level",
            "Warning",
            "--target",
            "app::db",
        ])
        .args(["--trace-id", &trace.to_uppercase(), "--span-id", span])
        .args([
            "--field",
            "n=5",
            "--field",
            "neg=-3",
            "--field",
            "big=18446744073709551615",
        ])
        .args([
            "-f",
            "ratio=1.5",
            "-f",
            "ok=true",
            "-f",
            "zip:=01234",
            "-f",
            "word=hello world",
        ])
        .args(["--service", "billing", "disk", "almost", "full"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((stdout(&o), stderr(&o)), (String::new(), String::new()));

    let records = json_lines(&run(&["dump", s(&ring), "--json"]));
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["level"], "WARN");
    assert_eq!(r["severity"], 13);
    assert_eq!(r["target"], "app::db");
    assert_eq!(r["msg"], "disk almost full");
    assert_eq!(r["pid"], pid);
    assert!(r["tid"].as_u64().unwrap() > 0);
    assert!(r["seq"].is_u64());
    assert_eq!(r["trace_id"], trace);
    assert_eq!(r["span_id"], span);
    assert_eq!(r["service"], "billing");
    let time = r["time"].as_str().unwrap();
    assert!(time.len() == 30 && time.ends_with('Z'), "{time}");
    let f = &r["fields"];
    assert_eq!(f.as_object().unwrap().len(), 7, "{f}");
    assert!(f["n"].is_i64() && f["n"] == 5);
    assert_eq!(f["neg"], -3);
    assert_eq!(f["big"], u64::MAX);
    assert!(f["ratio"].is_f64() && f["ratio"] == 1.5);
    assert_eq!(f["ok"], true);
    assert_eq!(f["zip"], "01234");
    assert_eq!(f["word"], "hello world");
    assert!(r.get("truncated").is_none());

    // The text form carries the same record on one line.
    let o = run(&["dump", s(&ring)]);
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 1, "{text}");
    for part in [
        "WARN",
        "[billing]",
        "app::db: disk almost full",
        "trace_id=4bf92f35",
        "n=5",
        "zip=01234",
    ] {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }

    // A number level, a traceparent, and the ring from $LOGBUS_RING: then
    // every word is message, even the first.
    let o = logbus()
        .env("LOGBUS_RING", &ring)
        .args(["emit", "-l", "18", "--traceparent"])
        .arg(format!("00-{trace}-{span}-01"))
        .args(["hello", "world"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let records = json_lines(&run(&["dump", s(&ring), "--json"]));
    let r = records
        .iter()
        .find(|r| r["msg"] == "hello world")
        .expect("second record");
    assert_eq!(
        (r["level"].as_str(), r["severity"].as_u64()),
        (Some("ERROR"), Some(18))
    );
    assert_eq!(
        (r["trace_id"].as_str(), r["span_id"].as_str()),
        (Some(trace), Some(span))
    );
    assert!(r.get("service").is_none() && r.get("fields").is_none());
}

#[test]
fn emit_reads_standard_input_line_by_line_as_lines_arrive() {
    let dir = TempDir::new("cli-stdin");
    let path = tiny_ring(&dir);
    let ring = Ring::open_existing(&path).unwrap();
    let mut child = logbus()
        .args(["emit", s(&path), "--level", "debug", "--target", "pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut peeker = Peeker::new(&ring);
    let mut batch = Batch::new();
    let mut seen = Vec::new();
    let mut poll = |seen: &mut Vec<String>| {
        peeker.poll(&mut batch, 64);
        seen.extend(batch.iter().map(|r| r.message().to_string()));
    };
    input.write_all(b"first line\n").unwrap();
    input.flush().unwrap();
    // Standard input is still open: the record must be there already.
    wait_for("the first line's record", PATIENCE, || {
        poll(&mut seen);
        (!seen.is_empty()).then_some(())
    });
    assert_eq!(seen, ["first line"]);
    assert!(
        child.try_wait().unwrap().is_none(),
        "emit ended before its input did"
    );
    input
        .write_all(b"second\r\n\nlast without newline")
        .unwrap();
    drop(input);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");

    let records = json_lines(&run(&["dump", s(&path), "--json"]));
    assert_eq!(
        messages(&records),
        ["first line", "second", "", "last without newline"]
    );
    assert!(records
        .iter()
        .all(|r| r["level"] == "DEBUG" && r["target"] == "pipe"));

    let o = emit_lines(&path, &["--skip-empty"], "a\n\n\nb\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let records = json_lines(&run(&["dump", s(&path), "--json"]));
    assert_eq!(records.len(), 6);
    assert_eq!(messages(&records[4..]), ["a", "b"]);
}

#[test]
fn drain_consumes_and_dump_does_not() {
    let dir = TempDir::new("cli-drain");
    let ring = tiny_ring(&dir);
    assert!(emit_lines(&ring, &[], "one\ntwo\nthree\n").status.success());
    assert!(run(&["emit", s(&ring), "-l", "error", "four"])
        .status
        .success());

    for _ in 0..2 {
        let records = json_lines(&run(&["dump", s(&ring), "--json"]));
        assert_eq!(messages(&records), ["one", "two", "three", "four"]);
        let times: Vec<&str> = records
            .iter()
            .map(|r| r["time"].as_str().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "not sorted: {times:?}"
        );
    }
    let o = run(&["drain", s(&ring)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines().last().unwrap().contains("ERROR") && text.ends_with("four\n"),
        "{text}"
    );

    let again = run(&["drain", s(&ring), "--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stdout(&again), "");
    assert_eq!(stdout(&run(&["dump", s(&ring)])), "");
    let st = stat_json(&ring);
    assert_eq!(st["levels"]["INFO"]["delivered"], 3);
    assert_eq!(st["levels"]["ERROR"]["delivered"], 1);
    assert_eq!(st["unread"], 0);
}

#[test]
fn stat_json_reports_geometry_counters_and_the_consumer() {
    let dir = TempDir::new("cli-stat");
    let path = tiny_ring(&dir);
    assert!(emit_lines(&path, &[], "a\nb\nc\n").status.success());
    assert!(run(&["emit", s(&path), "-l", "fatal", "boom"])
        .status
        .success());
    // A counters file of a collector that is not this ring's consumer.
    let collector = logbus_collector::status::status_path(&path);
    std::fs::write(
        &collector,
        format!(r#"{{"pid": {}, "updated_ns": 1, "sinks": [{{"name": "console", "type": "stdout", "delivered": 7, "dropped": {{}}, "errors": 0, "queue_depth": 0}}]}}"#, std::process::id()),
    )
    .unwrap();

    let st = stat_json(&path);
    assert_eq!(
        (st["blocks"].as_u64(), st["block_size"].as_u64()),
        (Some(32), Some(4096))
    );
    assert_eq!(
        (
            st["unread"].as_u64(),
            st["torn"].as_u64(),
            st["invalid"].as_u64()
        ),
        (Some(4), Some(0), Some(0))
    );
    assert_eq!(st["consumer"], Value::Null);
    assert!(
        st.get("sinks").is_none(),
        "sinks of a collector that is not the consumer: {st}"
    );
    let levels = st["levels"].as_object().unwrap();
    let names: Vec<&str> = levels.keys().map(String::as_str).collect();
    for name in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
        assert!(names.contains(&name), "{names:?}");
        for key in [
            "emitted",
            "dropped",
            "evicted",
            "delivered",
            "torn",
            "unread",
        ] {
            assert!(levels[name][key].is_u64(), "{name}.{key} in {st}");
        }
    }
    assert_eq!(
        (
            levels["INFO"]["emitted"].as_u64(),
            levels["INFO"]["unread"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(
        (
            levels["FATAL"]["emitted"].as_u64(),
            levels["FATAL"]["unread"].as_u64()
        ),
        (Some(1), Some(1))
    );

    assert!(run(&["drain", s(&path)]).status.success());
    let st = stat_json(&path);
    assert_eq!(st["unread"], 0);
    for (name, c) in st["levels"].as_object().unwrap() {
        let n = |k: &str| c[k].as_u64().unwrap();
        assert_eq!(
            n("emitted"),
            n("delivered") + n("dropped") + n("evicted") + n("torn") + n("unread"),
            "{name} does not balance: {c}"
        );
    }
    assert_eq!(st["levels"]["INFO"]["delivered"], 3);
    assert_eq!(st["levels"]["FATAL"]["delivered"], 1);

    // While this test process holds the consumer role, its collector file counts.
    let ring = Ring::open_existing(&path).unwrap();
    let consumer = Consumer::acquire(&ring).unwrap();
    let st = stat_json(&path);
    assert_eq!(st["consumer"]["pid"], std::process::id());
    assert_eq!(st["consumer"]["alive"], true);
    assert_eq!(st["sinks"][0]["name"], "console");
    assert_eq!(st["sinks"][0]["delivered"], 7);
    let text = stdout(&run(&["stat", s(&path)]));
    assert!(
        text.contains(&format!("pid {}, alive", std::process::id())),
        "{text}"
    );
    let sink = text
        .lines()
        .find(|l| l.starts_with("console"))
        .expect(&text);
    assert_eq!(
        sink.split_whitespace().collect::<Vec<_>>(),
        ["console", "stdout", "7", "0", "0", "0", "-", "-"]
    );
    let info = text.lines().find(|l| l.starts_with("INFO")).expect(&text);
    assert_eq!(
        info.split_whitespace().collect::<Vec<_>>(),
        ["INFO", "3", "3", "0", "0", "0", "0"]
    );
    drop(consumer);
}

#[test]
fn overflow_drops_are_reported_not_failed() {
    let dir = TempDir::new("cli-overflow");
    let path = tiny_ring(&dir);
    // DEBUG may fill half the tiny ring (64 KiB): far less than this.
    let total = 3000;
    let input: String = (0..total).map(|i| format!("debug line {i}\n")).collect();
    let o = emit_lines(&path, &["--level", "debug"], &input);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    let dropped: u64 = err
        .split("dropped ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {err:?}"));
    assert!(
        err.contains(&format!("dropped {dropped} of {total} records")),
        "{err}"
    );
    assert!(dropped > 0 && dropped < total, "{err}");

    let st = stat_json(&path);
    let debug = &st["levels"]["DEBUG"];
    assert_eq!(debug["dropped"], dropped);
    assert_eq!(debug["emitted"], total);
    assert_eq!(debug["unread"], total - dropped);
    assert_eq!(
        json_lines(&run(&["dump", s(&path), "--json"])).len() as u64,
        total - dropped
    );
}

#[test]
fn unusable_rings_are_one_line_errors_naming_the_file() {
    let dir = TempDir::new("cli-bad");
    let missing = dir.path("missing");
    for cmd in ["dump", "drain", "stat", "tail"] {
        assert_one_line_error(&run(&[cmd, s(&missing)]), 1, &[s(&missing)]);
        let o = logbus()
            .arg(cmd)
            .env("LOGBUS_RING", &missing)
            .output()
            .unwrap();
        assert_one_line_error(&o, 1, &[s(&missing)]);
    }
    assert!(!missing.exists(), "a reading command created the ring");

    // Pseudo-random bytes (a fixed LCG: the test is reproducible).
    let random = dir.path("random");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let text = dir.path("text");
    std::fs::write(&text, "this is not a ring at all\n").unwrap();
    let empty = dir.path("empty");
    std::fs::write(&empty, "").unwrap();
    let truncated = tiny_ring(&dir);
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let version = dir.path("version");
    let o = create_tiny(&version, &[]);
    assert!(o.status.success());
    let mut head = std::fs::read(&version).unwrap();
    head[8..12].copy_from_slice(&99u32.to_le_bytes());
    std::fs::write(&version, head).unwrap();

    for (file, what) in [
        (&random, "not a logbus ring"),
        (&text, "not a logbus ring"),
        (&empty, "not a logbus ring"),
        (&truncated, "truncated"),
        (&version, "version 99"),
    ] {
        for cmd in ["dump", "drain", "stat", "tail"] {
            assert_one_line_error(&run(&[cmd, s(file)]), 1, &[s(file), what]);
        }
        // emit opens (or creates) the ring: an existing bad file is an error too.
        assert_one_line_error(&run(&["emit", s(file), "hello"]), 1, &[s(file), what]);
    }
}

#[test]
fn bad_levels_ids_and_fields_are_usage_errors() {
    let dir = TempDir::new("cli-usage");
    let ring = dir.path("ring");
    let r = s(&ring);
    for (args, needle) in [
        (vec!["emit", r, "--level", "loud", "x"], "loud"),
        (vec!["emit", r, "--level", "25", "x"], "25"),
        (vec!["emit", r, "--trace-id", "xyz", "x"], "xyz"),
        (
            vec![
                "emit",
                r,
                "--trace-id",
                "00000000000000000000000000000000",
                "x",
            ],
            "zero",
        ),
        (
            vec![
                "emit",
                r,
                "--span-id",
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "x",
            ],
            "16 hex",
        ),
        (vec!["emit", r, "--field", "novalue", "x"], "novalue"),
        (vec!["emit", r, "--field", "=5", "x"], "empty key"),
        (
            vec!["emit", r, "--traceparent", "00-abc-def-01", "x"],
            "traceparent",
        ),
        (vec!["dump", r, "--bogus"], "--bogus"),
    ] {
        assert_one_line_error(&run(&args), 2, &[needle]);
    }
    assert!(!ring.exists(), "a refused emit created the ring");
}

#[test]
fn drain_refuses_while_another_process_consumes() {
    let dir = TempDir::new("cli-busy");
    let path = tiny_ring(&dir);
    assert!(run(&["emit", s(&path), "still here"]).status.success());
    let ring = Ring::open_existing(&path).unwrap();
    let consumer = Consumer::acquire(&ring).unwrap();
    let pid = std::process::id().to_string();
    assert_one_line_error(&run(&["drain", s(&path)]), 1, &[s(&path), &pid]);
    // Nothing was consumed; dump still works next to the consumer.
    assert_eq!(
        messages(&json_lines(&run(&["dump", s(&path), "--json"]))),
        ["still here"]
    );
    drop(consumer);
    assert_eq!(stdout(&run(&["drain", s(&path)])).lines().count(), 1);
}

#[test]
fn a_closed_stdout_is_a_quiet_success() {
    let dir = TempDir::new("cli-pipe");
    let path = dir.path("ring");
    let o = run(&["create", s(&path), "--size", "4M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Far more output than a pipe holds, so that dump must meet the closed end.
    let line = "x".repeat(150);
    let input: String = (0..2000).map(|i| format!("{i} {line}\n")).collect();
    let o = emit_lines(&path, &[], &input);
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    for json in [false, true] {
        let mut child = logbus()
            .args(["dump", s(&path)])
            .args(json.then_some("--json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains(&line));
        // The reader is gone (like `logbus dump | head -1`).
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{:?}: {}", o.status, stderr(&o));
        assert_eq!(stderr(&o), "");
    }
}

#[test]
fn tail_follows_new_records_until_its_reader_goes() {
    let dir = TempDir::new("cli-tail");
    let path = tiny_ring(&dir);
    assert!(run(&["emit", s(&path), "before"]).status.success());

    // --unread: the backlog first, then what comes.
    let mut child = logbus()
        .args(["tail", s(&path), "--json", "--unread"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut child, 2);
    let first: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap()).unwrap();
    assert_eq!(first["msg"], "before");
    assert!(run(&["emit", s(&path), "-l", "warn", "after"])
        .status
        .success());
    let second: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap()).unwrap();
    assert_eq!(
        (second["msg"].as_str(), second["level"].as_str()),
        (Some("after"), Some("WARN"))
    );
    // The reader thread has closed the pipe; tail notices while idle.
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(err, "");
    // Nothing was consumed.
    assert_eq!(json_lines(&run(&["dump", s(&path), "--json"])).len(), 2);

    // Default: only records newer than the start; SIGINT ends it.
    let mut child = logbus()
        .args(["tail", s(&path)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep reading (and the pipe open) until tail ends.
    let lines = line_reader(&mut child, usize::MAX);
    let ring = Ring::open_existing(&path).unwrap();
    let mut writer = ring.writer().unwrap();
    // tail's start is not observable, so keep writing until it shows something.
    let got = wait_for("tail to print a new record", PATIENCE, || {
        writer.emit(&Event::new(9, "new")).unwrap();
        lines.try_recv().ok()
    });
    assert!(got.contains("INFO") && got.ends_with(" new"), "{got:?}");
    // SIGINT keeps its default action: tail dies of it, like tail -f.
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait_exit(&mut child);
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
}

#[test]
fn tail_shows_records_a_running_consumer_takes_at_once() {
    let dir = TempDir::new("cli-tail-consumed");
    let path = tiny_ring(&dir);
    let ring = Ring::open_existing(&path).unwrap();
    // The test holds the consumer role and commits everything it sees, as a
    // collector would.
    let mut consumer = logbus_ring::Consumer::acquire(&ring).unwrap();
    let mut child = logbus()
        .args(["tail", s(&path), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(&mut child, usize::MAX);
    let mut writer = ring.writer().unwrap();
    let mut batch = logbus_ring::Batch::new();
    let mut consumed = 0;
    let mut n = 0u32;
    // tail's start is not observable: write numbered records (each consumed
    // at once) until tail prints one, then check it prints the next ones too.
    let first: Value = wait_for("tail to print a consumed record", PATIENCE, || {
        n += 1;
        writer.emit(&Event::new(9, &format!("m{n}"))).unwrap();
        consumed += consumer.poll(&mut batch, 100);
        consumer.commit_all();
        lines
            .try_recv()
            .ok()
            .map(|l| serde_json::from_str(&l).unwrap())
    });
    let start: u32 = first["msg"].as_str().unwrap()[1..].parse().unwrap();
    for k in 1..=20 {
        writer.emit(&Event::new(9, &format!("m{}", n + k))).unwrap();
        consumed += consumer.poll(&mut batch, 100);
        consumer.commit_all();
    }
    let mut want = start + 1;
    while want <= n + 20 {
        let v: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap()).unwrap();
        assert_eq!(v["msg"], format!("m{want}"));
        want += 1;
    }
    assert_eq!(consumed as u32, n + 20, "the consumer took every record");
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    wait_exit(&mut child);
}
