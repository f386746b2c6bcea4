//! Issue 10, item 8: one collector for every ring of a directory
//! (`logbus-collector --ring-dir DIR`), each ring owned by the user whose
//! processes write it. Real collectors, real producer processes, real files
//! planted in the directory; the second user (uid 65534) needs root, so that
//! test is `#[ignore = "needs root"]` (`scripts/test` runs it when root).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use logbus_tests::collector::LONG;
use logbus_tests::collector::{
    all, assert_exactly_once, file_sink, finish, http_get, lines, metrics_addr, numbers, producer,
    tally, wait_lines, write_config, Collector,
};
use logbus_tests::{bin, wait_for, TempDir};
use serde_json::Value as Json;

/// The second user of the root-only test.
const NOBODY: u32 = 65534;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// A ring directory `rings` (mode `mode`) in `dir`, and a config with one
/// JSON file sink writing `out.log`; returns (rings, out, config).
fn setup(dir: &TempDir, mode: u32) -> (PathBuf, PathBuf, PathBuf) {
    let rings = dir.path("rings");
    std::fs::create_dir(&rings).unwrap();
    std::fs::set_permissions(&rings, std::fs::Permissions::from_mode(mode)).unwrap();
    let out = dir.path("out.log");
    let cfg = dir.path("c.toml");
    write_config(&cfg, &file_sink("f", &out, ""));
    (rings, out, cfg)
}

fn start(dir: &TempDir, tag: &str, rings: &Path, cfg: &Path, extra: &[&str]) -> Collector {
    let mut args = vec!["--ring-dir", s(rings), "--config", s(cfg)];
    args.extend_from_slice(extra);
    Collector::start(dir, tag, &args)
}

fn json(lines: &[String]) -> Vec<Json> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_ring_of_the_directory_once_including_rings_created_later_each_with_its_owner() {
    let dir = TempDir::new("rdir-all");
    let (rings, out, cfg) = setup(&dir, 0o700);
    // A ring with records before the collector starts.
    finish(producer(&rings.join("early"), "early", 2000, &[]));
    let mut c = start(&dir, "c", &rings, &cfg, &["--metrics", "127.0.0.1:0"]);
    c.wait_stderr("the early ring read", "reading ring");
    // A ring created while it runs, and more records in the first one.
    let late = producer(&rings.join("late"), "late", 3000, &[]);
    let early = producer(&rings.join("early"), "again", 2000, &[]);
    finish(late);
    finish(early);
    let got = wait_lines(&out, 7000);
    let metrics = http_get(&metrics_addr(&c), "/metrics");
    // `logbus stat` of one of the rings finds the directory's collector.
    let stat = Command::new(bin("logbus"))
        .args(["stat", s(&rings.join("late"))])
        .output()
        .unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout).into_owned();
    assert!(
        stat.contains(&format!("sinks of collector pid {}", c.pid())),
        "{stat}"
    );
    assert!(c.stop().success(), "{}", c.stderr_text());

    let mut expect = all("early", 0..2000);
    expect.extend(all("late", 0..3000));
    expect.extend(all("again", 0..2000));
    assert_exactly_once(&numbers(&lines(&out)), &expect);
    for v in json(&got) {
        assert_eq!(v["uid"], euid(), "{v}");
    }
    let err = c.stderr_text();
    for name in ["early", "late"] {
        let line = format!(
            "reading ring {} (owner uid {})",
            rings.join(name).display(),
            euid()
        );
        assert!(err.contains(&line), "no {line:?} in:\n{err}");
    }
    // Each ring's series, labelled with its path and owner.
    for name in ["early", "late"] {
        let series = format!(
            "logbus_ring_delivered_total{{level=\"INFO\",ring=\"{}\",uid=\"{}\"}}",
            rings.join(name).display(),
            euid()
        );
        assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    }
    // Its status file is in the directory, hidden, and removed at exit.
    assert!(!logbus_collector::status::dir_status_path(&rings).exists());
}

#[test]
fn sigkill_and_restart_lose_nothing_in_any_ring() {
    let dir = TempDir::new("rdir-kill");
    let (rings, out, cfg) = setup(&dir, 0o700);
    let first = start(&dir, "first", &rings, &cfg, &[]);
    let a = producer(&rings.join("a"), "a", 20000, &["--pause-every", "50"]);
    let b = producer(&rings.join("b"), "b", 20000, &["--pause-every", "50"]);
    wait_lines(&out, 4000);
    first.signal(libc::SIGKILL);
    let mut first = first;
    first.wait_exit();
    let mut second = start(&dir, "second", &rings, &cfg, &[]);
    finish(a);
    finish(b);
    wait_lines(&out, 40000);
    assert!(second.stop().success(), "{}", second.stderr_text());
    let got = numbers(&lines(&out));
    let t = tally(&got);
    let mut missing = Vec::new();
    for p in ["a", "b"] {
        missing.extend(
            (0..20000u64)
                .map(|n| (p.to_string(), n))
                .filter(|k| !t.contains_key(k))
                .take(5),
        );
    }
    assert!(missing.is_empty(), "lost records: {missing:?}");
    // In flight at the kill: at most one group of the file sink, whichever
    // rings its records came from: 4,096 records, or one chunk of up to
    // 16,384 (a poll's most) when a chunk alone is larger; each at most twice.
    let dups = got.len() - 40000;
    let twice: Vec<_> = ["a", "b"]
        .iter()
        .map(|p| {
            let n: Vec<u64> = t
                .iter()
                .filter(|((q, _), c)| q == p && **c > 1)
                .map(|((_, n), _)| *n)
                .collect();
            (p, n.len(), n.iter().min().copied(), n.iter().max().copied())
        })
        .collect();
    assert!(
        dups <= 16384 && t.values().all(|c| *c <= 2),
        "{dups} records delivered again (ring, count, first, last): {twice:?}"
    );
    eprintln!("delivered again after the kill (ring, count, first, last): {twice:?}");
}

#[test]
fn a_replaced_ring_is_drained_and_its_successor_read() {
    let dir = TempDir::new("rdir-replace");
    let (rings, out, cfg) = setup(&dir, 0o700);
    let ring = rings.join("svc");
    finish(producer(&ring, "old", 3000, &[]));
    let mut c = start(&dir, "c", &rings, &cfg, &[]);
    wait_lines(&out, 3000);
    // Deleted and made again: a new file at the same name.
    std::fs::remove_file(&ring).unwrap();
    finish(producer(&ring, "new", 3000, &[]));
    wait_lines(&out, 6000);
    c.wait_stderr("the old ring let go", "now names another file");
    c.wait_stderr_n("the new ring read", "reading ring", 2);
    assert!(c.stop().success(), "{}", c.stderr_text());
    let mut expect = all("old", 0..3000);
    expect.extend(all("new", 0..3000));
    assert_exactly_once(&numbers(&lines(&out)), &expect);
}

#[test]
fn planted_files_are_refused_with_one_line_and_a_truncated_ring_costs_only_itself() {
    let dir = TempDir::new("rdir-hostile");
    let (rings, out, cfg) = setup(&dir, 0o700);
    // A FIFO (never waited on), a symlink to a real ring (never followed),
    // a file that is not a ring, and a ring every user may write.
    let fifo = std::ffi::CString::new(s(&rings.join("fifo"))).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    finish(producer(&dir.path("elsewhere"), "elsewhere", 10, &[]));
    std::os::unix::fs::symlink(dir.path("elsewhere"), rings.join("link")).unwrap();
    std::fs::write(rings.join("notes.txt"), "not a ring").unwrap();
    finish(producer(&rings.join("open"), "open", 10, &[]));
    std::fs::set_permissions(rings.join("open"), std::fs::Permissions::from_mode(0o666)).unwrap();
    // Two real rings: one to truncate under the collector, one to keep.
    finish(producer(&rings.join("doomed"), "doomed", 1000, &[]));
    finish(producer(&rings.join("kept"), "kept", 1000, &[]));
    let mut c = start(&dir, "c", &rings, &cfg, &[]);
    wait_lines(&out, 2000);
    c.wait_stderr_n("four refusals", "; not read", 4);
    let err = c.stderr_text();
    for (name, why) in [
        ("fifo", "not a regular file"),
        ("link", "symbolic link"),
        ("notes.txt", "not a logbus ring"),
        ("open", "writable by every user"),
    ] {
        let path = rings.join(name).display().to_string();
        let line = err
            .lines()
            .find(|l| l.contains(&path) && l.ends_with("; not read"))
            .unwrap_or_else(|| panic!("no refusal of {name} in:\n{err}"));
        assert!(line.contains(why), "{line}");
    }
    // Truncated under the collector: one line, the others go on.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(rings.join("doomed"))
        .unwrap();
    f.set_len(4096).unwrap();
    drop(f);
    c.wait_stderr("the truncation noticed", "truncated under the collector");
    finish(producer(&rings.join("kept"), "later", 1000, &[]));
    wait_lines(&out, 3000);
    let st = c.stop();
    assert!(st.success(), "{st:?}: {}", c.stderr_text());
    let mut expect = all("doomed", 0..1000);
    expect.extend(all("kept", 0..1000));
    expect.extend(all("later", 0..1000));
    assert_exactly_once(&numbers(&lines(&out)), &expect);
    let err = c.stderr_text();
    assert!(!err.contains("panicked"), "{err}");
    // Each file refused once, not at every scan.
    assert_eq!(err.matches("; not read").count(), 4, "{err}");
}

fn collector_output(args: &[&str]) -> Output {
    Command::new(bin("logbus-collector"))
        .args(args)
        .output()
        .expect("run logbus-collector")
}

#[test]
fn a_directory_that_lets_users_replace_each_others_rings_is_refused() {
    let dir = TempDir::new("rdir-mode");
    let (rings, _out, cfg) = setup(&dir, 0o777);
    let o = collector_output(&["--ring-dir", s(&rings), "--config", s(&cfg)]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("logbus-collector: --ring-dir ")
            && err.contains("without the sticky bit (mode 0777)"),
        "{err}"
    );
    // --ring and --ring-dir together: one line too.
    let o = collector_output(&["--ring-dir", s(&rings), "--ring", s(&rings.join("x"))]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `cmd` as the second user (uid and gid 65534, no supplementary groups).
fn as_nobody(mut cmd: Command) -> Command {
    cmd.uid(NOBODY).gid(NOBODY);
    cmd
}

fn logbus(args: &[&str]) -> Command {
    let mut c = Command::new(bin("logbus"));
    c.args(args)
        .env_remove("LOGBUS_RING")
        .env_remove("LOGBUS_TRUST_GROUP");
    c
}

#[test]
#[ignore = "needs root"]
fn two_users_one_collector_each_can_crash_only_their_own_ring() {
    assert_eq!(euid(), 0, "needs root (to run a second uid)");
    let dir = TempDir::new("rdir-users");
    // Shared like /dev/shm: everyone may create, only owners may replace.
    let (rings, out, cfg) = setup(&dir, 0o1777);
    std::fs::set_permissions(dir.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mine, theirs) = (rings.join("root"), rings.join("nobody"));
    let run = |cmd: Command| {
        let mut cmd = cmd;
        let o = cmd.output().expect("run logbus");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(logbus(&["create", s(&mine), "--size", "1M"]));
    let mut c = start(&dir, "c", &rings, &cfg, &[]);
    // The second user makes a ring of their own while the collector runs.
    run(as_nobody(logbus(&["create", s(&theirs), "--size", "1M"])));
    for i in 0..3 {
        run(logbus(&["emit", s(&mine), &format!("root-{i}")]));
        run(as_nobody(logbus(&[
            "emit",
            s(&theirs),
            &format!("nobody-{i}"),
        ])));
    }
    let got = json(&wait_lines(&out, 6));
    for v in &got {
        let msg = v["msg"].as_str().unwrap();
        let uid = if msg.starts_with("root-") { 0 } else { NOBODY };
        assert_eq!(v["uid"], uid, "{v}");
    }
    // The second user cannot write (nor truncate) root's ring...
    let o = as_nobody(logbus(&["emit", s(&mine), "intruder-0"]))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let o = as_nobody({
        let mut c = Command::new("truncate");
        c.args(["-s", "0", s(&mine)]);
        c
    })
    .output()
    .unwrap();
    assert!(!o.status.success(), "nobody truncated root's ring");
    // ...but can truncate their own: that costs their ring only.
    let o = as_nobody({
        let mut c = Command::new("truncate");
        c.args(["-s", "4096", s(&theirs)]);
        c
    })
    .output()
    .unwrap();
    assert!(o.status.success());
    c.wait_stderr("the truncation noticed", "truncated under the collector");
    run(logbus(&["emit", s(&mine), "root-after"]));
    let got = wait_lines(&out, 7);
    assert!(got.iter().any(|l| l.contains("root-after")), "{got:?}");
    let st = c.stop();
    assert_eq!(st.signal(), None);
    assert!(st.success(), "{}", c.stderr_text());
    assert!(!lines(&out).iter().any(|l| l.contains("intruder")));
}

#[test]
fn a_ring_another_collector_holds_is_taken_once_that_collector_is_gone() {
    let dir = TempDir::new("rdir-held");
    let (rings, out, cfg) = setup(&dir, 0o700);
    let held = rings.join("held");
    finish(producer(&held, "before", 100, &[]));
    // Another collector consumes that ring alone, into a file of its own.
    let other_out = dir.path("other.log");
    let other_cfg = dir.path("other.toml");
    write_config(&other_cfg, &file_sink("o", &other_out, ""));
    let mut other = Collector::start(
        &dir,
        "other",
        &["--ring", s(&held), "--config", s(&other_cfg)],
    );
    wait_lines(&other_out, 100);
    finish(producer(&rings.join("free"), "free", 100, &[]));
    let mut c = start(&dir, "c", &rings, &cfg, &[]);
    c.wait_stderr("the held ring refused", "already consumed by pid");
    wait_lines(&out, 100);
    // Once the other collector is gone, the ring is taken at a later scan.
    assert!(other.stop().success(), "{}", other.stderr_text());
    c.wait_stderr_n("the held ring read", "reading ring", 2);
    finish(producer(&held, "after", 100, &[]));
    wait_lines(&out, 200);
    assert!(c.stop().success(), "{}", c.stderr_text());
    let mut expect = all("free", 0..100);
    expect.extend(all("after", 0..100));
    assert_exactly_once(&numbers(&lines(&out)), &expect);
    assert_eq!(c.stderr_text().matches("already consumed").count(), 1);
}

#[test]
fn a_directory_filled_with_files_neither_floods_nor_stalls_the_collector() {
    let dir = TempDir::new("rdir-flood");
    let (rings, out, cfg) = setup(&dir, 0o700);
    for k in 0..200 {
        std::fs::write(rings.join(format!("junk-{k}")), "not a ring").unwrap();
    }
    finish(producer(&rings.join("real"), "real", 1000, &[]));
    let mut c = start(&dir, "c", &rings, &cfg, &[]);
    wait_lines(&out, 1000);
    // Every junk file is refused once: a line each for a few of them, the
    // others counted in one line per scan.
    let accounted = |err: &str| {
        let single = err.lines().filter(|l| l.contains("/junk-")).count();
        let counted: usize = err
            .lines()
            .filter(|l| l.contains("more files are not rings"))
            .filter_map(|l| {
                l.split(": ")
                    .nth(2)?
                    .split(' ')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum();
        (single, counted)
    };
    wait_for("every junk file refused", LONG, || {
        let (single, counted) = accounted(&c.stderr_text());
        (single + counted == 200).then_some(())
    });
    let err = c.stderr_text();
    let (single, counted) = accounted(&err);
    assert!(single <= 40, "{single} lines of refusal:\n{err}");
    assert!(counted > 0, "{err}");
    assert!(c.stop().success(), "{err}");
    assert_exactly_once(&numbers(&lines(&out)), &all("real", 0..1000));
}
