//! `logbus dump` and `logbus tail` queries (journalctl's flags), run as real
//! processes against records with known fields, times and levels written by
//! real `logbus emit` processes into a ring of the default size.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use logbus_tests::{bin, TempDir};
use serde_json::Value;

/// Generous failure bound for waits on other processes (never a delay).
const PATIENCE: Duration = Duration::from_secs(60);

const TRACE_A: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_B: &str = "0af7651916cd43dd8448eb211c80319c";

fn logbus() -> Command {
    let mut c = Command::new(bin("logbus"));
    c.env_remove("LOGBUS_RING").env_remove("NO_COLOR");
    c
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A ring of the default size and configuration (`logbus create RING`).
fn default_ring(dir: &TempDir) -> PathBuf {
    let ring = dir.path("ring");
    let o = logbus()
        .args(["create", s(&ring)])
        .output()
        .expect("create");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ring
}

/// Runs `logbus emit RING ARGS...` as its own process; returns its pid.
fn emit(ring: &Path, args: &[&str]) -> u32 {
    let child = logbus()
        .arg("emit")
        .arg(s(ring))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn emit");
    let pid = child.id();
    let out = child.wait_with_output().expect("emit");
    assert!(
        out.status.success(),
        "emit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pid
}

/// Runs `logbus dump RING ARGS...`, asserting exit 0 and an empty stderr.
fn dump(ring: &Path, args: &[&str]) -> String {
    let o = logbus()
        .arg("dump")
        .arg(s(ring))
        .args(args)
        .output()
        .expect("dump");
    assert_ok(&o, args);
    String::from_utf8(o.stdout).expect("utf-8")
}

fn assert_ok(o: &Output, args: &[&str]) {
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{args:?}: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The JSON records `dump -o json ARGS...` prints.
fn dump_json(ring: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["-o", "json"];
    all.extend_from_slice(args);
    dump(ring, &all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The messages of the records `dump -o json ARGS...` prints, in order.
fn messages(ring: &Path, args: &[&str]) -> Vec<String> {
    dump_json(ring, args)
        .iter()
        .map(|r| r["msg"].as_str().expect("msg").to_string())
        .collect()
}

/// Four producers with known levels, targets, services and traces:
/// returns the pid of the one registered as `api`.
fn write_known_records(ring: &Path) -> u32 {
    let api = emit(
        ring,
        &[
            "-l",
            "info",
            "-t",
            "app::http",
            "--service",
            "api",
            "--trace-id",
            TRACE_A,
            "request started",
        ],
    );
    emit(
        ring,
        &[
            "-l",
            "warn",
            "-t",
            "app::db",
            "--trace-id",
            TRACE_B,
            "Slow query",
        ],
    );
    emit(
        ring,
        &[
            "-l",
            "error",
            "-t",
            "app::db::pool",
            "--service",
            "db",
            "--trace-id",
            TRACE_A,
            "connection refused",
        ],
    );
    emit(ring, &["-l", "debug", "-t", "lib", "cache miss"]);
    emit(ring, &["-l", "fatal", "-t", "main", "out of memory"]);
    api
}

#[test]
fn each_filter_selects_exactly_the_records_it_names() {
    let dir = TempDir::new("query-fields");
    let ring = default_ring(&dir);
    let api_pid = write_known_records(&ring);
    let all = [
        "request started",
        "Slow query",
        "connection refused",
        "cache miss",
        "out of memory",
    ];
    assert_eq!(messages(&ring, &[]), all);
    // -p: that level and above; journalctl's names too.
    assert_eq!(
        messages(&ring, &["-p", "warn"]),
        ["Slow query", "connection refused", "out of memory"]
    );
    assert_eq!(
        messages(&ring, &["--level", "err"]),
        ["connection refused", "out of memory"]
    );
    assert_eq!(messages(&ring, &["-p", "trace"]), all);
    // --target: a glob.
    assert_eq!(
        messages(&ring, &["--target", "app::db*"]),
        ["Slow query", "connection refused"]
    );
    assert_eq!(messages(&ring, &["--target", "app::db"]), ["Slow query"]);
    assert_eq!(messages(&ring, &["--target", "?ain"]), ["out of memory"]);
    // --service and --pid.
    assert_eq!(
        messages(&ring, &["--service", "db"]),
        ["connection refused"]
    );
    assert_eq!(
        messages(&ring, &["--pid", &api_pid.to_string()]),
        ["request started"]
    );
    // --uid: every record of this ring carries its owner's uid.
    // SAFETY: getuid has no preconditions and cannot fail.
    let me = unsafe { libc::getuid() };
    assert_eq!(messages(&ring, &["--uid", &me.to_string()]), all);
    assert!(messages(&ring, &["--uid", &(me + 1).to_string()]).is_empty());
    // -g: on the message, case insensitive unless the pattern has capitals.
    assert_eq!(
        messages(&ring, &["-g", "slow|memory"]),
        ["Slow query", "out of memory"]
    );
    assert!(messages(&ring, &["-g", "SLOW"]).is_empty());
    assert_eq!(
        messages(&ring, &["-g", "^con.*sed$"]),
        ["connection refused"]
    );
    // Conditions combine: all must hold.
    assert_eq!(
        messages(&ring, &["-p", "error", "--target", "app::*"]),
        ["connection refused"]
    );
    // -n: the last N selected, in order.
    assert_eq!(
        messages(&ring, &["-n", "2"]),
        ["cache miss", "out of memory"]
    );
    assert_eq!(
        messages(&ring, &["-n", "1", "-p", "warn", "--target", "app::*"]),
        ["connection refused"]
    );
    assert!(messages(&ring, &["-n", "0"]).is_empty());
    assert_eq!(messages(&ring, &["-n", "99"]), all);
    // --json is -o json; text is the default.
    let text = dump(&ring, &["-p", "fatal"]);
    assert!(
        text.contains(" FATAL main: out of memory") && text.lines().count() == 1,
        "{text}"
    );
    assert_eq!(
        dump(&ring, &["--json", "-p", "fatal"]),
        dump(&ring, &["-o", "json", "-p", "fatal"])
    );
    // The ring was only read: the same records are still unread.
    assert_eq!(messages(&ring, &[]), all);
}

#[test]
fn a_filter_that_matches_nothing_prints_nothing_and_exits_0() {
    let dir = TempDir::new("query-none");
    let ring = default_ring(&dir);
    write_known_records(&ring);
    for args in [
        &["-g", "no such message"][..],
        &["--service", "nobody"],
        &["--target", "zzz*"],
        &["--pid", "1"],
        &["--trace-id", "ffffffffffffffffffffffffffffffff"],
        &["--until", "1h"],
        &["-p", "fatal", "--target", "app::*"],
    ] {
        assert_eq!(dump(&ring, args), "", "{args:?}");
    }
    // The empty default ring too.
    let empty = dir.path("empty");
    let o = logbus()
        .args(["create", s(&empty)])
        .output()
        .expect("create");
    assert!(o.status.success());
    assert_eq!(dump(&empty, &["-p", "error"]), "");
}

#[test]
fn bad_query_values_are_one_line_usage_errors() {
    let dir = TempDir::new("query-bad");
    let ring = default_ring(&dir);
    for (args, needle) in [
        (&["-g", "("][..], "regular expression"),
        (&["--since", "yesterday"], "is not a time"),
        (&["--until", "2024-02-30T00:00:00Z"], "is not a time"),
        (&["-p", "loud"], "is not a level"),
        (&["--trace-id", "abc"], "hex digits"),
        (&["--json", "-o", "text"], "cannot be used with"),
        (&["-o", "yaml"], "yaml"),
    ] {
        let o = logbus()
            .arg("dump")
            .arg(s(&ring))
            .args(args)
            .output()
            .expect("dump");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("logbus: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn since_and_until_cut_at_known_moments() {
    let dir = TempDir::new("query-time");
    let ring = default_ring(&dir);
    // Two batches written one after the other: every record of the first is
    // older than every record of the second.
    for i in 0..3 {
        emit(&ring, &["-l", "info", &format!("early {i}")]);
    }
    for i in 0..3 {
        emit(&ring, &["-l", "info", &format!("late {i}")]);
    }
    let recs = dump_json(&ring, &[]);
    let time = |i: usize| recs[i]["time"].as_str().expect("time").to_string();
    let (last_early, first_late) = (time(2), time(3));
    assert!(last_early < first_late, "{last_early} {first_late}");
    assert_eq!(
        messages(&ring, &["--since", &first_late]),
        ["late 0", "late 1", "late 2"]
    );
    assert_eq!(
        messages(&ring, &["--until", &last_early]),
        ["early 0", "early 1", "early 2"]
    );
    // Both ends are inclusive.
    assert_eq!(
        messages(&ring, &["--since", &last_early, "--until", &first_late]),
        ["early 2", "late 0"]
    );
    // The same instant written with an offset selects the same records.
    let shifted = shift_by_an_hour(&first_late);
    assert_eq!(
        messages(&ring, &["--since", &shifted]),
        ["late 0", "late 1", "late 2"]
    );
    // Ages count back from now: everything is younger than an hour, nothing
    // older; `now` is after everything.
    assert_eq!(messages(&ring, &["--since", "1h"]).len(), 6);
    assert_eq!(
        messages(&ring, &["--since", "-1h", "--until", "now"]).len(),
        6
    );
    assert!(messages(&ring, &["--until", "1h"]).is_empty());
    assert!(messages(&ring, &["--since", "2d", "--until", "1d"]).is_empty());
}

/// The same instant written with an offset of an hour, in the same day:
/// `2024-05-01T12:30:00.123Z` -> `2024-05-01T13:30:00.123+01:00`, and for
/// a time in the day's last hour `2024-05-01T23:30:00.123Z` ->
/// `2024-05-01T22:30:00.123-01:00`.
fn shift_by_an_hour(utc: &str) -> String {
    let hour: u32 = utc[11..13].parse().expect("hour");
    let body = utc.strip_suffix('Z').expect("UTC time");
    let (hour, offset) = if hour < 23 {
        (hour + 1, "+01:00")
    } else {
        (hour - 1, "-01:00")
    };
    format!("{}{hour:02}{}{offset}", &body[..11], &body[13..])
}

#[test]
fn trace_id_gathers_one_trace_from_every_process_in_time_order() {
    let dir = TempDir::new("query-trace");
    let ring = default_ring(&dir);
    // Three services take turns; each `emit` is its own process, so each
    // writes into its own block and the ring's order is not time order.
    let services = ["gateway", "orders", "billing"];
    for step in 0..9 {
        let svc = services[step % 3];
        let trace = if step % 2 == 0 { TRACE_A } else { TRACE_B };
        emit(
            &ring,
            &[
                "--service",
                svc,
                "--trace-id",
                trace,
                &format!("step {step}"),
            ],
        );
        if step == 4 {
            emit(&ring, &["untraced"]);
        }
    }
    let recs = dump_json(&ring, &["--trace-id", TRACE_A]);
    let got: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r["msg"].as_str().unwrap(), r["service"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("step 0", "gateway"),
            ("step 2", "billing"),
            ("step 4", "orders"),
            ("step 6", "gateway"),
            ("step 8", "billing"),
        ]
    );
    let times: Vec<&str> = recs.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(recs.iter().all(|r| r["trace_id"] == TRACE_A));
    assert_eq!(
        messages(&ring, &["--trace-id", TRACE_B, "--service", "orders"]),
        ["step 1", "step 7"]
    );
}

/// Lines `child` prints, read on a thread.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn tail_filters_while_following() {
    let dir = TempDir::new("query-tail");
    let ring = default_ring(&dir);
    emit(
        &ring,
        &["-l", "error", "-t", "app::old", "before the tail, unread"],
    );
    emit(&ring, &["-l", "info", "-t", "app::old", "before, too low"]);
    let mut tail = logbus()
        .args([
            "tail",
            s(&ring),
            "-p",
            "error",
            "--target",
            "app::*",
            "-n",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let rx = line_reader(&mut tail);
    // -n: the last selected unread records come first.
    let first = rx.recv_timeout(PATIENCE).expect("backlog line");
    assert!(
        first.ends_with("ERROR app::old: before the tail, unread"),
        "{first}"
    );
    // Then it follows: write a selected marker until the follower shows one
    // (it starts following at some moment we cannot see from here).
    let mut ready = false;
    for _ in 0..600 {
        emit(&ring, &["-l", "error", "-t", "app::ready", "ready"]);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            assert!(line.ends_with("app::ready: ready"), "{line}");
            ready = true;
            break;
        }
    }
    assert!(ready, "tail never showed a followed record");
    emit(&ring, &["-l", "warn", "-t", "app::x", "too low"]);
    emit(&ring, &["-l", "error", "-t", "lib", "wrong target"]);
    emit(&ring, &["-l", "fatal", "-t", "app::x", "selected one"]);
    emit(&ring, &["-l", "debug", "-t", "app::x", "debug"]);
    emit(&ring, &["-l", "error", "-t", "app::y", "selected two"]);
    emit(&ring, &["-l", "error", "-t", "app::end", "end"]);
    let mut after = Vec::new();
    loop {
        let line = rx.recv_timeout(PATIENCE).expect("a followed line");
        if line.ends_with("app::end: end") {
            break;
        }
        // Markers written while the follower was starting may show late.
        if !line.ends_with("app::ready: ready") {
            after.push(line);
        }
    }
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after[0].ends_with("FATAL app::x: selected one"),
        "{after:?}"
    );
    assert!(
        after[1].ends_with("ERROR app::y: selected two"),
        "{after:?}"
    );
    // Piped output is never coloured.
    assert!(!after.iter().any(|l| l.contains('\x1b')));
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(tail.id() as i32, libc::SIGTERM) };
    let _ = tail.wait();
}

/// Runs `logbus ARGS...` on a pseudo-terminal (util-linux `script`), with
/// `env` set; `None` when `script` is not installed.
fn on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let mut line = bin("logbus").display().to_string();
    for a in args {
        line.push_str(" '");
        line.push_str(a);
        line.push('\'');
    }
    let mut c = Command::new(script);
    c.args(["-qec", &line, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().expect("script");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn text_is_coloured_by_level_on_a_terminal_only() {
    let dir = TempDir::new("query-colour");
    let ring = default_ring(&dir);
    write_known_records(&ring);
    let Some(tty) = on_a_terminal(&["dump", s(&ring)], &[]) else {
        eprintln!("skipped: util-linux `script` is not installed, so no terminal to test on");
        return;
    };
    assert!(
        tty.contains("\x1b[1;31mERROR\x1b[0m [db] app::db::pool"),
        "{tty:?}"
    );
    assert!(tty.contains("\x1b[1;33mWARN\x1b[0m"), "{tty:?}");
    assert!(tty.contains("\x1b[2mDEBUG\x1b[0m"), "{tty:?}");
    // INFO stays plain.
    assert!(
        tty.contains(" INFO  [api] app::http: request started"),
        "{tty:?}"
    );
    // NO_COLOR (any non-empty value) turns it off; JSON is never coloured.
    let plain = on_a_terminal(&["dump", s(&ring)], &[("NO_COLOR", "1")]).expect("script");
    assert!(
        !plain.contains('\x1b') && plain.contains("ERROR [db] app::db::pool"),
        "{plain:?}"
    );
    let json = on_a_terminal(&["dump", s(&ring), "-o", "json"], &[]).expect("script");
    assert!(!json.contains('\x1b'), "{json:?}");
    // Piped: never.
    assert!(!dump(&ring, &[]).contains('\x1b'));
}
