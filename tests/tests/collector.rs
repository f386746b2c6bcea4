//! The collector as people run it: real `logbus-collector` and `test-producer`
//! processes, real files, real signals. Every wait is on a condition (line
//! counts, stderr lines, process exit), never a fixed sleep.
//!
//! Run with `cargo build -p logbus-collector-bin && cargo test -p logbus-tests --test collector`
//! (or `scripts/test`, which builds every binary first).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use logbus_tests::collector::*;
use logbus_tests::{bin, wait_for, TempDir};
use serde_json::Value as Json;

#[test]
fn every_record_once_to_each_matching_sink() {
    let dir = TempDir::new("coll-once");
    let ring = dir.path("ring");
    let (all_log, err_log, low_log) = (
        dir.path("all.log"),
        dir.path("err.txt"),
        dir.path("low.log"),
    );
    let cfg = dir.path("c.toml");
    write_config(
        &cfg,
        &format!(
            r#"
[ring]
path = "{ring}"

[[sinks]]
name = "console"
type = "stdout"

[[sinks]]
name = "all"
type = "file"
path = "{all}"

[[sinks]]
name = "errors"
type = "file"
format = "text"
path = "{err}"
min_level = "error"

[[sinks]]
name = "low"
type = "file"
path = "{low}"
max_level = "info"
"#,
            ring = ring.display(),
            all = all_log.display(),
            err = err_log.display(),
            low = low_log.display()
        ),
    );
    let mut c = Collector::start(
        &dir,
        "c",
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    let ps = [
        producer(
            &ring,
            "a",
            3000,
            &[
                "--level",
                "info,error,debug",
                "--service",
                "svc-a",
                "--trace",
            ],
        ),
        producer(
            &ring,
            "b",
            3000,
            &["--level", "warn,fatal,trace", "--service", "svc-b"],
        ),
        producer(&ring, "c", 3000, &["--level", "info"]),
    ];
    let expect: Vec<_> = ["a", "b", "c"]
        .iter()
        .flat_map(|p| all(p, 0..3000))
        .collect();
    let out = wait_lines(&all_log, 9000);
    assert_exactly_once(&numbers(&out), &expect);
    let stdout = wait_lines(&c.stdout, 9000);
    assert_exactly_once(&numbers(&stdout), &expect);
    ps.into_iter().for_each(finish);

    // Levels by producer and number (the producers cycle through their list).
    let level = |p: &str, n: u64| match p {
        "a" => ["INFO", "ERROR", "DEBUG"][n as usize % 3],
        "b" => ["WARN", "FATAL", "TRACE"][n as usize % 3],
        _ => "INFO",
    };
    let errors: Vec<_> = expect
        .iter()
        .filter(|(p, n)| matches!(level(p, *n), "ERROR" | "FATAL"))
        .cloned()
        .collect();
    let text = wait_lines(&err_log, errors.len());
    let text_numbers: Vec<_> = text
        .iter()
        .map(|l| {
            let msg = l
                .split("test: ")
                .nth(1)
                .expect("target")
                .split(' ')
                .next()
                .unwrap();
            let (p, n) = msg.rsplit_once('-').unwrap();
            (p.to_string(), n.parse().unwrap())
        })
        .collect();
    assert_exactly_once(&text_numbers, &errors);
    let low: Vec<_> = expect
        .iter()
        .filter(|(p, n)| matches!(level(p, *n), "TRACE" | "DEBUG" | "INFO"))
        .cloned()
        .collect();
    let low_out = wait_lines(&low_log, low.len());
    assert_exactly_once(&numbers(&low_out), &low);

    // Field by field, one record of each producer.
    let by_msg: HashMap<String, Json> = stdout
        .iter()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap();
            (v["msg"].as_str().unwrap().to_string(), v)
        })
        .collect();
    let a1 = &by_msg["a-1"];
    assert_eq!(a1["level"], "ERROR");
    assert_eq!(a1["severity"], 17);
    assert_eq!(a1["target"], "test");
    assert_eq!(a1["service"], "svc-a");
    assert_eq!(a1["trace_id"], "ab000000000000000000000000000001");
    assert_eq!(a1["span_id"], "cd00000000000001");
    assert_eq!(a1["fields"]["n"], 1);
    assert_eq!(a1["fields"]["prefix"], "a");
    assert_eq!(a1["fields"]["even"], false);
    assert_eq!(a1["fields"]["ratio"], 0.25);
    assert_eq!(a1["fields"]["delta"], -1);
    let b0 = &by_msg["b-0"];
    assert_eq!(
        (b0["level"].as_str(), b0["service"].as_str()),
        (Some("WARN"), Some("svc-b"))
    );
    assert!(b0.get("trace_id").is_none() && b0.get("span_id").is_none());
    assert!(text
        .iter()
        .any(|l| l.contains("ERROR [svc-a] test: a-1 trace_id=ab")));

    // Counters: the status file and the metrics endpoint.
    wait_for("status file counts", LONG, || {
        (sink_status(&ring, "errors")["delivered"] == errors.len() as u64).then_some(())
    });
    let s = sink_status(&ring, "all");
    assert_eq!(s["type"], "file");
    assert_eq!(s["delivered"], 9000);
    assert_eq!(s["dropped"]["INFO"], 0);
    assert_eq!(s["queue_depth"], 0);
    let addr = c
        .stderr_text()
        .split("metrics at http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("metrics address")
        .to_string();
    let metrics = http_get(&addr, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("logbus_sink_delivered_total{sink=\"all\",type=\"file\"} 9000"),
        "{metrics}"
    );
    assert!(metrics.contains("logbus_ring_published_total{level=\"INFO\"}"));
    assert!(http_get(&addr, "/nope").starts_with("HTTP/1.1 404"));

    assert!(c.stop().success(), "{}", c.stderr_text());
    assert!(
        !logbus_collector::status::status_path(&ring).exists(),
        "status file removed on clean exit"
    );
    let st = logbus_ring::Ring::open_existing(&ring).unwrap().stats();
    assert_eq!(st.total().delivered, 9000);
    assert_eq!(st.total().unread, 0);
}

#[test]
fn sigterm_drains_everything_published() {
    let dir = TempDir::new("coll-term");
    let ring = dir.path("ring");
    let mut c = Collector::start(&dir, "c", &["--ring", ring.to_str().unwrap()]);
    // Published before the signal: the producers have exited.
    let ps = [
        producer(&ring, "x", 4000, &[]),
        producer(&ring, "y", 4000, &["--level", "error"]),
    ];
    ps.into_iter().for_each(finish);
    let st = c.stop();
    assert!(st.success(), "exit {st}: {}", c.stderr_text());
    let expect: Vec<_> = all("x", 0..4000)
        .into_iter()
        .chain(all("y", 0..4000))
        .collect();
    assert_exactly_once(&numbers(&lines(&c.stdout)), &expect);
    let stats = logbus_ring::Ring::open_existing(&ring).unwrap().stats();
    assert_eq!(stats.total().unread, 0, "everything committed");
    assert!(c.stderr_text().lines().all(|l| !l.contains("panicked")));
}

#[test]
fn sigint_works_like_sigterm() {
    let dir = TempDir::new("coll-int");
    let ring = dir.path("ring");
    let mut c = Collector::start(&dir, "c", &["--ring", ring.to_str().unwrap()]);
    finish(producer(&ring, "i", 500, &[]));
    c.signal(libc::SIGINT);
    assert!(c.wait_exit().success());
    assert_exactly_once(&numbers(&lines(&c.stdout)), &all("i", 0..500));
}

#[test]
fn sigkill_and_restart_loses_nothing() {
    let dir = TempDir::new("coll-kill");
    let ring = dir.path("ring");
    let out = dir.path("out.log");
    let cfg = dir.path("c.toml");
    write_config(&cfg, &file_sink("f", &out, ""));
    let args = ring_and_config(&ring, &cfg);
    let first = Collector::start(&dir, "first", &args);
    // A steady stream: 20000 records, 1 ms pause every 50.
    let p = producer(&ring, "k", 20000, &["--pause-every", "50"]);
    wait_lines(&out, 3000);
    first.signal(libc::SIGKILL);
    let mut first = first;
    first.wait_exit();
    // The successor takes over the consumer role at once and resumes.
    let mut second = Collector::start(&dir, "second", &args);
    finish(p);
    assert!(second.stop().success(), "{}", second.stderr_text());
    let got = numbers(&lines(&out));
    let t = tally(&got);
    let missing: Vec<_> = (0..20000u64)
        .filter(|n| !t.contains_key(&("k".to_string(), *n)))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost records: {missing:?}");
    let dups = got.len() - 20000;
    // In flight at the kill: at most one group of the file sink (and the records
    // of chunks polled but not yet written are simply read again, not duplicated).
    assert!(
        dups <= logbus_collector_group(),
        "{dups} records delivered twice"
    );
}

/// Records one sink writes per group (`logbus_collector::sink::GROUP_RECORDS`).
fn logbus_collector_group() -> usize {
    4096
}

#[test]
fn second_collector_is_refused() {
    let dir = TempDir::new("coll-second");
    let ring = dir.path("ring");
    let mut first = Collector::start(&dir, "first", &["--ring", ring.to_str().unwrap()]);
    let out = Command::new(bin("logbus-collector"))
        .args(["--ring", ring.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("already consumed by pid {}", first.pid())),
        "{err}"
    );
    assert!(first.stop().success());
}

#[test]
fn bad_config_is_one_line_naming_file_and_key() {
    let dir = TempDir::new("coll-badcfg");
    let ring = dir.path("ring");
    let cfg = dir.path("bad.toml");
    write_config(
        &cfg,
        "[[sinks]]\nname = \"x\"\ntype = \"stdout\"\nmin_level = \"loud\"\n",
    );
    let out = Command::new(bin("logbus-collector"))
        .args(ring_and_config(&ring, &cfg))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:4: sinks[0].min_level:", cfg.display())),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    // It did not start: no consumer holds the ring.
    if let Ok(r) = logbus_ring::Ring::open_existing(&ring) {
        assert!(r.stats().consumer.is_none_or(|(_, alive)| !alive));
    }
}

#[test]
fn sighup_reload_swaps_sinks_without_loss_or_duplicates() {
    let dir = TempDir::new("coll-hup");
    let ring = dir.path("ring");
    let (main_log, lvl_log, extra_log) = (
        dir.path("main.log"),
        dir.path("lvl.log"),
        dir.path("extra.log"),
    );
    let cfg = dir.path("c.toml");
    let main_sink = file_sink("main", &main_log, "");
    let lvl = |min: &str| file_sink("lvl", &lvl_log, &format!("min_level = \"{min}\"\n"));
    write_config(&cfg, &format!("{main_sink}{}", lvl("error")));
    let c = Collector::start(&dir, "c", &ring_and_config(&ring, &cfg));
    let p = producer(
        &ring,
        "h",
        12000,
        &["--level", "info,error", "--pause-every", "40"],
    );
    wait_lines(&main_log, 2000);
    // A bad reload first: the running configuration stays.
    write_config(&cfg, "[[sinks]]\nname = \"main\"\ntype = \"teletype\"\n");
    c.signal(libc::SIGHUP);
    c.wait_stderr("reload refused", "reload failed");
    assert!(
        c.stderr_text().contains("sinks[0].type"),
        "{}",
        c.stderr_text()
    );
    // Then a good one: "lvl" lowers its min_level, "extra" appears, "main" is unchanged.
    let extra = file_sink("extra", &extra_log, "");
    write_config(&cfg, &format!("{main_sink}{}{extra}", lvl("info")));
    c.signal(libc::SIGHUP);
    c.wait_stderr("reloaded", "reloaded");
    // Records surely after the swap (the first producer may, on a slow
    // machine, have finished before it).
    finish(producer(&ring, "g", 500, &[]));
    finish(p);
    let mut c = c;
    assert!(c.stop().success(), "{}", c.stderr_text());

    let after = all("g", 0..500);
    let main_expect: Vec<_> = all("h", 0..12000)
        .into_iter()
        .chain(after.clone())
        .collect();
    assert_exactly_once(&numbers(&lines(&main_log)), &main_expect);
    // "lvl": "h" errors only up to the swap, everything after it; each record once.
    let got = numbers(&lines(&lvl_log));
    let (h, g): (Vec<_>, Vec<_>) = got.into_iter().partition(|(p, _)| p == "h");
    assert_exactly_once(&g, &after);
    let t = tally(&h);
    assert!(t.values().all(|c| *c == 1), "duplicates in lvl.log");
    let cut = h
        .iter()
        .filter(|(_, n)| n % 2 == 0)
        .map(|(_, n)| *n)
        .min()
        .unwrap_or(12000);
    for n in 0..12000u64 {
        let want = n >= cut || n % 2 == 1;
        assert_eq!(
            t.contains_key(&("h".to_string(), n)),
            want,
            "record {n} (cut {cut})"
        );
    }
    // "extra": "g" whole, and a gapless tail of "h" starting at the swap.
    let ex = numbers(&lines(&extra_log));
    let (h, g): (Vec<_>, Vec<_>) = ex.into_iter().partition(|(p, _)| p == "h");
    assert_exactly_once(&g, &after);
    let first = h.iter().map(|(_, n)| *n).min().unwrap_or(12000);
    assert_exactly_once(&h, &all("h", first..12000));
    assert!(
        first > 0 && first.abs_diff(cut) <= 1,
        "extra starts at {first}, lvl at {cut}"
    );
}

#[test]
fn file_rotation_and_reopen_on_sighup() {
    let dir = TempDir::new("coll-rot");
    let ring = dir.path("ring");
    let log = dir.path("app.log");
    let cfg = dir.path("c.toml");
    write_config(&cfg, &file_sink("f", &log, "max_bytes = 50000\nkeep = 2\n"));
    let args = ring_and_config(&ring, &cfg);
    let c = Collector::start(&dir, "c", &args);
    finish(producer(&ring, "r", 3000, &[]));
    let rotated = |k: u32| PathBuf::from(format!("{}.{k}", log.display()));
    // 3000 lines of ~270 bytes is ~16 files' worth: the newest file, .1 and .2 remain.
    wait_for("last record written", LONG, || {
        numbers(&lines(&log))
            .iter()
            .any(|(_, n)| *n == 2999)
            .then_some(())
    });
    assert!(!rotated(3).exists());
    let mut kept = Vec::new();
    for p in [rotated(2), rotated(1), log.clone()] {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            bytes.len() <= 50000,
            "{} has {} bytes",
            p.display(),
            bytes.len()
        );
        assert!(bytes.ends_with(b"\n"));
        kept.extend(numbers(&lines(&p)));
    }
    // The kept files hold the newest records, contiguous and in order.
    let ns: Vec<u64> = kept.iter().map(|(_, n)| *n).collect();
    assert_eq!(*ns.last().unwrap(), 2999);
    assert!(
        ns.windows(2).all(|w| w[1] == w[0] + 1),
        "gap or disorder in rotated files"
    );
    assert!(ns.len() > 300);

    // logrotate: rename the file away, SIGHUP, and new records go to a new file.
    let moved = dir.path("app.log.moved");
    std::fs::rename(&log, &moved).unwrap();
    c.signal(libc::SIGHUP);
    c.wait_stderr("reloaded", "reloaded");
    finish(producer(&ring, "s", 10, &[]));
    let fresh = wait_lines(&log, 10);
    assert_exactly_once(&numbers(&fresh), &all("s", 0..10));
    assert!(numbers(&lines(&moved)).iter().all(|(p, _)| p == "r"));
    let mut c = c;
    assert!(c.stop().success());
}

#[test]
fn otlp_sink_end_to_end_field_by_field() {
    use logbus_tests::otlp_receiver::{Receiver, Value};
    for (receiver, protocol) in [
        (Receiver::start(), "grpc"),
        (Receiver::start_http(), "http"),
    ] {
        let dir = TempDir::new("coll-otlp");
        let ring = dir.path("ring");
        let cfg = otlp_config(
            &dir,
            &ring,
            &format!("endpoint = \"{}\"\nprotocol = \"{protocol}\"\ntimeout = \"10s\"\nbatch = 64\nmin_level = \"info\"", receiver.endpoint()),
            "",
        );
        let mut c = Collector::start(&dir, "c", &["--config", cfg.to_str().unwrap()]);
        let ps = [
            producer(
                &ring,
                "o",
                300,
                &[
                    "--level",
                    "info,error,debug",
                    "--trace",
                    "--service",
                    "svc-o",
                ],
            ),
            producer(&ring, "p", 100, &["--level", "warn"]),
        ];
        // DEBUG is below the sink's min_level: 200 of "o" and 100 of "p".
        let logs = receiver.wait_for_records(300, LONG);
        ps.into_iter().for_each(finish);
        let bodies = body_numbers(&logs);
        let expect: Vec<_> = (0..300u64)
            .filter(|n| n % 3 != 2)
            .map(|n| ("o".to_string(), n))
            .chain(all("p", 0..100))
            .collect();
        assert_exactly_once(&bodies, &expect);
        let o4 = logs.iter().find(|l| l.body() == Some("o-4")).unwrap();
        let r = &o4.record;
        assert_eq!((r.severity_number, r.severity_text.as_str()), (17, "ERROR"));
        assert_eq!(o4.scope, "test");
        assert!(r.time_unix_nano > 0 && r.observed_time_unix_nano >= r.time_unix_nano);
        let mut trace = vec![0xab; 1];
        trace.extend([0u8; 7]);
        trace.extend(4u64.to_be_bytes());
        assert_eq!(r.trace_id, trace);
        let mut span = 4u64.to_be_bytes().to_vec();
        span[0] = 0xcd;
        assert_eq!(r.span_id, span);
        assert_eq!(r.flags & 0xff, 1);
        assert_eq!(o4.attr("n"), Some(&Value::IntValue(4)));
        assert_eq!(o4.attr("prefix"), Some(&Value::StringValue("o".into())));
        assert_eq!(o4.attr("even"), Some(&Value::BoolValue(true)));
        assert_eq!(o4.attr("ratio"), Some(&Value::DoubleValue(1.0)));
        assert_eq!(o4.attr("delta"), Some(&Value::IntValue(-4)));
        assert_eq!(
            o4.resource_attr("service.name"),
            Some(&Value::StringValue("svc-o".into())),
            "{protocol}: {:?}",
            o4.resource
        );
        assert_eq!(
            o4.resource_attr("service.version"),
            Some(&Value::StringValue("1.2.3".into()))
        );
        assert_eq!(
            o4.resource_attr("host.name"),
            Some(&Value::StringValue("test-host".into()))
        );
        assert!(matches!(o4.resource_attr("process.pid"), Some(Value::IntValue(p)) if *p > 0));
        let p0 = logs.iter().find(|l| l.body() == Some("p-0")).unwrap();
        assert_eq!(p0.record.severity_number, 13);
        assert!(p0.record.trace_id.is_empty());
        assert_eq!(
            p0.resource_attr("service.name"),
            Some(&Value::StringValue("test-producer".into()))
        );
        wait_for("delivered counted", LONG, || {
            (sink_status(&ring, "otel")["delivered"] == 300).then_some(())
        });
        assert!(c.stop().success(), "{}", c.stderr_text());
        assert_eq!(receiver.records().len(), 300, "nothing sent twice");
    }
}

#[test]
fn closed_stdout_shuts_the_collector_down() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("coll-epipe");
    let ring = dir.path("ring");
    let stderr = dir.path("stderr");
    let mut child = Command::new(bin("logbus-collector"))
        .args(["--ring", ring.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // `logbus-collector | head -1`.
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        finish(producer(&ring, "e", 1, &[]));
        out.read_line(&mut first).unwrap();
    }
    assert!(first.contains(r#""msg":"e-0""#), "{first}");
    finish(producer(&ring, "f", 100, &[]));
    let st = wait_for("collector exit", LONG, || child.try_wait().unwrap());
    assert!(st.success(), "{st}");
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(err.contains("output closed; shutting down"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn producers_gone_before_the_collector_starts_keep_their_service() {
    // Three short-lived producers, one after the other, each exiting before
    // any collector runs: each later one must not take over (and so hide) the
    // resource entry of an earlier one whose records are still unread.
    let dir = TempDir::new("coll-gone");
    let ring = dir.path("ring");
    for svc in ["svc-1", "svc-2", "svc-3"] {
        finish(producer(
            &ring,
            svc,
            5,
            &["--level", "info", "--service", svc],
        ));
    }
    let mut c = Collector::start(&dir, "c", &["--ring", ring.to_str().unwrap()]);
    let out = wait_lines(&c.stdout, 15);
    assert!(c.stop().success());
    for line in out {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let msg = v["msg"].as_str().unwrap();
        let svc = &msg[..5];
        assert_eq!(v["service"], svc, "{line}");
    }
}

/// Starts a collector whose stdout is read slowly (4 KiB a millisecond, about
/// 20,000 lines a second) by a thread that returns the lines it read.
fn collector_with_slow_stdout(
    dir: &TempDir,
    args: &[&str],
) -> (std::process::Child, std::thread::JoinHandle<usize>, PathBuf) {
    use std::io::Read;
    let stderr = dir.path("slow.stderr");
    let mut child = Command::new(bin("logbus-collector"))
        .args(args)
        .env_remove("LOGBUS_RING")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr).unwrap())
        .spawn()
        .expect("spawn logbus-collector");
    let mut pipe = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut lines = 0;
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return lines,
                Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count(),
            }
            // A throttle (the slow reader), not a synchronisation.
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    wait_for("startup line", LONG, || {
        std::fs::read_to_string(&stderr)
            .ok()
            .filter(|t| t.contains("consuming"))
    });
    (child, reader, stderr)
}

#[test]
fn a_lossless_ring_is_read_at_the_pace_of_its_slowest_writing_sink() {
    const N: usize = 20_000;
    for lossless in [true, false] {
        let dir = TempDir::new("coll-pace");
        let ring = dir.path("ring");
        let mut create = Command::new(bin("logbus"));
        create.args(["create", ring.to_str().unwrap(), "--size", "4M"]);
        if lossless {
            create.args(["--wait-ms", "60000"]);
        }
        assert!(create.status().unwrap().success());
        let all_log = dir.path("all.log");
        let cfg = dir.path("c.toml");
        write_config(
            &cfg,
            &format!(
                "{}[[sinks]]\nname = \"slow\"\ntype = \"stdout\"\nqueue = 1000\n",
                file_sink("all", &all_log, "")
            ),
        );
        let (mut child, reader, stderr) =
            collector_with_slow_stdout(&dir, &ring_and_config(&ring, &cfg));
        finish(producer(&ring, "p", N as u64, &[]));
        wait_lines(&all_log, N);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let st = wait_for("collector exit", LONG, || child.try_wait().unwrap());
        let err = std::fs::read_to_string(&stderr).unwrap();
        assert!(st.success(), "{err}");
        let slow = reader.join().unwrap();
        assert_exactly_once(&numbers(&lines(&all_log)), &all("p", 0..N as u64));
        if lossless {
            // The ring waited for the slow sink: nothing shed anywhere.
            assert_eq!(slow, N, "{err}");
        } else {
            // Drop mode: the slow sink sheds its own records; the other got all.
            assert!(slow < N, "the slow sink shed nothing: {slow}");
        }
    }
}

/// The ring's counters from `logbus stat --json`.
fn ring_stat(ring: &Path) -> Json {
    let o = Command::new(bin("logbus"))
        .args(["stat", "--json"])
        .arg(ring)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

// Issue 20, part 4: a producer writing while its ring file is deleted and
// created again, then renamed over by another ring, loses nothing: the
// collector reads each old ring until no process writes it any more, while it
// reads the new one. (Before the fix the collector left each old ring after
// one drain while the producer went on writing into it until it noticed, up
// to 250 ms later: records unread in the unlinked files, counted nowhere.)
#[test]
fn a_ring_deleted_and_renamed_over_under_a_writing_producer_loses_nothing() {
    const N: u64 = 30_000;
    let dir = TempDir::new("coll-replaced");
    let ring = dir.path("ring");
    let out = dir.path("out.log");
    let cfg = dir.path("c.toml");
    write_config(&cfg, &file_sink("f", &out, ""));
    // The default ring a user gets.
    logbus_ring::Ring::create(&ring, &logbus_ring::RingOptions::default()).unwrap();
    let mut c = Collector::start(&dir, "c", &ring_and_config(&ring, &cfg));
    c.wait_stderr("startup", "consuming");
    // A slow producer (1 ms pause every 20 records: about 2 s in all), through
    // `logbus::Producer`, which follows the path.
    let p = producer(&ring, "p", N, &["--producer", "--pause-every", "20"]);
    wait_for("records before the delete", LONG, || {
        (lines(&out).len() >= 3_000).then_some(())
    });
    // Deleted and created again (the producer may make it first: it reopens
    // the path, creating a ring when there is none).
    std::fs::remove_file(&ring).unwrap();
    match logbus_ring::Ring::create(&ring, &logbus_ring::RingOptions::default()) {
        Ok(_) => {}
        Err(logbus_ring::OpenError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("{e}"),
    }
    wait_for("records after the delete", LONG, || {
        (lines(&out).len() >= 15_000).then_some(())
    });
    // Renamed over by another ring.
    let next = dir.path("next");
    logbus_ring::Ring::create(&next, &logbus_ring::RingOptions::default()).unwrap();
    std::fs::rename(&next, &ring).unwrap();
    finish(p);
    let got = wait_lines(&out, N as usize);
    assert_exactly_once(&numbers(&got), &all("p", 0..N));
    c.wait_stderr("the new ring followed", "following the new ring");
    // Both old rings let go once drained and no longer written.
    c.wait_stderr_n(
        "the old rings let go",
        "no process writes it any more; let go",
        2,
    );
    // The current ring's books balance: nothing torn, invalid or dropped.
    let st = ring_stat(&ring);
    for key in ["torn", "invalid", "dropped", "evicted", "lost", "unread"] {
        assert_eq!(st[key].as_u64(), Some(0), "{key}: {st}");
    }
    assert_eq!(st["delivered"], st["emitted"], "{st}");
    assert!(c.stop().success(), "{}", c.stderr_text());
    assert_eq!(lines(&out).len(), N as usize, "records delivered twice");
}
