//! logbus on a host: the systemd unit and its command line run as written
//! against the example configuration, readiness on `$NOTIFY_SOCKET`,
//! `--check`, `--version`, shell completions and man pages. Real processes,
//! a real OTLP receiver, real signals.

use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logbus_tests::collector::{http_get, Collector, LONG};
use logbus_tests::otlp_receiver::Receiver;
use logbus_tests::{bin, logbus_ok, wait_for, TempDir};

/// The repository's root (the tests crate lives in `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("packaging/systemd/logbus-collector.service"))
        .expect("the unit file")
}

/// The value of `Key=` in the unit (the last one, as systemd reads it).
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
        .trim()
        .to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A datagram socket standing for systemd's notification socket.
struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &TempDir) -> NotifySocket {
        let path = dir.path("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { sock, path }
    }

    /// The next message (one datagram, `KEY=VALUE` lines), or `None` after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(timeout)).expect("timeout");
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }

    /// Waits for a message with the line `line`; returns the whole message.
    fn wait_for_line(&self, line: &str) -> String {
        let deadline = Instant::now() + LONG;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(m) = self.recv(left) {
                if m.lines().any(|l| l == line) {
                    return m;
                }
            }
        }
        panic!("no {line} on the notify socket within {LONG:?}");
    }
}

/// Starts the collector `exe ARGS...` with `NOTIFY_SOCKET`, its output in files.
fn start_notified(dir: &TempDir, exe: &Path, args: &[String], notify: &NotifySocket) -> Collector {
    let stdout = dir.path("collector.stdout");
    let stderr = dir.path("collector.stderr");
    let child = Command::new(exe)
        .args(args)
        .env_remove("LOGBUS_RING")
        .env("NOTIFY_SOCKET", &notify.path)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("stdout file"))
        .stderr(File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn the collector");
    Collector {
        child,
        stdout,
        stderr,
    }
}

/// `shutdown_timeout = "10s"` in a configuration, in seconds.
fn shutdown_timeout_secs(config: &str) -> u64 {
    let v = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("shutdown_timeout"))
        .expect("shutdown_timeout in the example config");
    let v = v.trim().trim_start_matches('=').trim().trim_matches('"');
    v.strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .expect("shutdown_timeout in seconds")
}

#[test]
fn the_unit_passes_systemd_analyze_and_says_what_an_operator_needs() {
    let unit = unit_text();
    assert_eq!(unit_value(&unit, "Type"), "notify");
    assert_eq!(unit_value(&unit, "Restart"), "always");
    assert_eq!(unit_value(&unit, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(unit_value(&unit, "ProtectSystem"), "strict");
    assert_eq!(unit_value(&unit, "NoNewPrivileges"), "yes");
    assert_eq!(unit_value(&unit, "SystemCallFilter"), "@system-service");
    let config = std::fs::read_to_string(repo().join("packaging/collector.toml")).unwrap();
    // systemd waits longer than the collector's own bound on its final flush.
    let stop = unit_value(&unit, "TimeoutStopSec");
    let stop: u64 = stop.strip_suffix('s').unwrap_or(&stop).parse().unwrap();
    assert!(
        stop > shutdown_timeout_secs(&config),
        "TimeoutStopSec={stop}"
    );
    // It may write the ring directory and the log directory, and nothing else;
    // the example config reads the one and writes into the other.
    let rw = unit_value(&unit, "ReadWritePaths");
    assert_eq!(rw, "/dev/shm/logbus.d /var/log/logbus");
    assert!(config.contains("dir = \"/dev/shm/logbus.d\""));
    assert!(config.contains("path = \"/var/log/logbus/"));
    let tmpfiles =
        std::fs::read_to_string(repo().join("packaging/tmpfiles.d/logbus.conf")).unwrap();
    assert!(
        tmpfiles
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..3]
                == ["d", "/dev/shm/logbus.d", "1777"]),
        "{tmpfiles}"
    );

    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(analyze) = analyze else {
        eprintln!("skipped systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)");
        return;
    };
    // The binary is not installed here: point the unit at the one built.
    let dir = TempDir::new("svc-verify");
    let copy = dir.path("logbus-collector.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/local/bin/logbus-collector",
            s(&bin("logbus-collector")),
        ),
    )
    .unwrap();
    let o = Command::new(analyze)
        .args(["verify", s(&copy)])
        .output()
        .expect("systemd-analyze");
    assert!(
        o.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_units_command_line_runs_the_example_config() {
    let dir = TempDir::new("svc-run");
    let ring_dir = dir.path("logbus.d");
    let log_dir = dir.path("log");
    std::fs::create_dir(&ring_dir).unwrap();
    std::fs::create_dir(&log_dir).unwrap();
    let receiver = Receiver::start();
    // The example config, with the paths that must move into the scratch
    // directory moved, and the OTLP endpoint pointed at a real receiver.
    let example = std::fs::read_to_string(repo().join("packaging/collector.toml")).unwrap();
    let config = dir.path("collector.toml");
    std::fs::write(
        &config,
        example
            .replace("/dev/shm/logbus.d", s(&ring_dir))
            .replace("/var/log/logbus", s(&log_dir))
            .replace("http://127.0.0.1:4317", &receiver.endpoint()),
    )
    .unwrap();
    // A user's ring, made the documented way, before the collector starts.
    let ring = ring_dir.join("app");
    logbus_ok(&["create", s(&ring)]);

    // ExecStart as written: its program replaced by the one built, its
    // config by the scratch copy, its metrics port by a free one.
    let unit = unit_text();
    let exec = unit_value(&unit, "ExecStart");
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/logbus-collector"));
    let args: Vec<String> = words
        .map(|w| match w {
            "/etc/logbus/collector.toml" => s(&config).to_string(),
            "127.0.0.1:9898" => "127.0.0.1:0".to_string(),
            w => w.to_string(),
        })
        .collect();
    assert!(args.iter().any(|a| a == "--metrics"), "{exec}");
    let notify = NotifySocket::bind(&dir);
    let mut c = start_notified(&dir, &bin("logbus-collector"), &args, &notify);
    let ready = notify.wait_for_line("READY=1");
    assert!(ready.contains("STATUS=consuming every ring of"), "{ready}");
    // By READY=1 the collector holds the directory's rings found at start.
    let r = logbus_ring::Ring::open_read_only(&ring).unwrap();
    assert_eq!(
        r.stats().consumer,
        Some((c.pid() as u32, true)),
        "at READY=1"
    );

    logbus_ok(&["emit", s(&ring), "-l", "info", "routine work"]);
    logbus_ok(&["emit", s(&ring), "-l", "error", "disk on fire"]);
    // JSON lines to stdout (the journal), ERROR text to the file, INFO+ over OTLP.
    let errors = log_dir.join("errors.log");
    wait_for("the ERROR line in the file", LONG, || {
        let t = std::fs::read_to_string(&errors).ok()?;
        t.contains("disk on fire").then_some(())
    });
    let got = receiver.wait_for_records(2, LONG);
    let mut bodies: Vec<&str> = got.iter().filter_map(|r| r.body()).collect();
    bodies.sort();
    assert_eq!(bodies, ["disk on fire", "routine work"]);
    wait_for("both JSON lines on stdout", LONG, || {
        let t = std::fs::read_to_string(&c.stdout).ok()?;
        (t.lines().count() == 2).then_some(t)
    });

    // Every metric the alert rules and the operator's page use is served.
    let metrics_addr = logbus_tests::collector::metrics_addr(&c);
    let metrics = http_get(&metrics_addr, "/metrics");
    let rules =
        std::fs::read_to_string(repo().join("packaging/prometheus/logbus.rules.yml")).unwrap();
    let page = std::fs::read_to_string(repo().join("docs/OPERATING.md")).unwrap();
    for name in metric_names(&rules).into_iter().chain(metric_names(&page)) {
        assert!(
            metrics.contains(&format!("\n{name}{{")) || metrics.contains(&format!("\n{name} ")),
            "{name} is not served at /metrics"
        );
    }

    // SIGTERM: STOPPING=1, then a clean exit.
    c.signal(libc::SIGTERM);
    notify.wait_for_line("STOPPING=1");
    let status = c.wait_exit();
    assert!(status.success(), "{status:?}: {}", c.stderr_text());
    let err = c.stderr_text();
    assert!(
        err.trim_end()
            .ends_with("drained, flushed and committed; exiting"),
        "{err}"
    );
    let text = std::fs::read_to_string(&errors).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("disk on fire"), "{text}");
}

/// Every `logbus_...` metric name mentioned in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("logbus_") && w.len() > "logbus_".len())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    assert!(!names.is_empty());
    names
}

#[test]
fn ready_comes_only_once_the_consumer_role_is_held() {
    let dir = TempDir::new("svc-ready");
    let ring = dir.path("ring");
    logbus_ok(&["create", s(&ring)]);
    let cfg = dir.path("c.toml");
    std::fs::write(&cfg, "[[sinks]]\nname = \"out\"\ntype = \"stdout\"\n").unwrap();
    let args: Vec<String> = ["--ring", s(&ring), "--config", s(&cfg)]
        .iter()
        .map(|a| a.to_string())
        .collect();

    // While another process holds the role, the collector never says READY.
    let holder = logbus_ring::Ring::open_existing(&ring).unwrap();
    let consumer = logbus_ring::Consumer::acquire(&holder).unwrap();
    let notify = NotifySocket::bind(&dir);
    let mut refused = start_notified(&dir, &bin("logbus-collector"), &args, &notify);
    let status = refused.wait_exit();
    assert!(!status.success());
    assert_eq!(notify.recv(Duration::from_millis(1)), None);
    drop(consumer);

    // Once it can take the role: READY=1, and by then the ring names it.
    let mut c = start_notified(&dir, &bin("logbus-collector"), &args, &notify);
    let ready = notify.wait_for_line("READY=1");
    assert!(
        ready.contains(&format!("STATUS=consuming {}", ring.display())),
        "{ready}"
    );
    let held = holder.stats().consumer;
    assert_eq!(held, Some((c.pid() as u32, true)), "at READY=1");

    // SIGHUP: RELOADING=1, then READY=1 again, also when the new file is bad
    // (the running configuration stays, and the notice says why).
    std::fs::write(&cfg, "[[sinks]]\nname = \"out\"\ntype = \"teletype\"\n").unwrap();
    c.signal(libc::SIGHUP);
    notify.wait_for_line("RELOADING=1");
    let again = notify.wait_for_line("READY=1");
    assert!(again.contains("STATUS=reload refused"), "{again}");
    assert!(
        c.stderr_text().contains("sinks[0].type"),
        "{}",
        c.stderr_text()
    );
    logbus_ok(&["emit", s(&ring), "still delivered"]);
    wait_for("the record on stdout", LONG, || {
        std::fs::read_to_string(&c.stdout)
            .ok()?
            .contains("still delivered")
            .then_some(())
    });
    c.signal(libc::SIGTERM);
    notify.wait_for_line("STOPPING=1");
    assert!(c.wait_exit().success(), "{}", c.stderr_text());
}

#[test]
fn check_validates_and_prints_without_touching_a_ring() {
    let dir = TempDir::new("svc-check");
    let example = repo().join("packaging/collector.toml");
    let missing = dir.path("no-ring-here");
    let garbage = dir.path("not-a-ring");
    std::fs::write(&garbage, b"not a ring at all").unwrap();
    let check = |args: &[&str]| {
        Command::new(bin("logbus-collector"))
            .arg("--check")
            .args(args)
            .env_remove("LOGBUS_RING")
            .output()
            .expect("run --check")
    };
    // The example: valid, printed with every default filled in.
    let o = check(&["--config", s(&example), "--ring-dir", s(&missing)]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for line in [
        "shutdown_timeout = \"10s\"",
        "name = \"journal\"",
        "min_level = \"trace\"",
        "queue = 65536",
        "max_backlog = 25",
        "min_level = \"error\"",
        "endpoint = \"http://127.0.0.1:4317\"",
        "batch = 512",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!("dir = \"{}\"", missing.display())),
        "{out}"
    );
    assert!(!missing.exists(), "--check created the ring directory");
    // No config: the default, on the ring named; a file that is not a ring
    // is not opened (opening it would fail), nothing is created beside it.
    let o = check(&["--ring", s(&garbage)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("type = \"stdout\""));
    assert_eq!(std::fs::read(&garbage).unwrap(), b"not a ring at all");
    let o = check(&["--ring", s(&missing)]);
    assert!(o.status.success());
    let names: Vec<_> = std::fs::read_dir(dir.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["not-a-ring"], "--check left files behind");
    // A bad file: exit 1, one line naming file, line and key; nothing on stdout.
    let bad = dir.path("bad.toml");
    std::fs::write(
        &bad,
        "[[sinks]]\nname = \"a\"\ntype = \"file\"\npath = \"x.log\"\nmin_level = \"loud\"\n",
    )
    .unwrap();
    let o = check(&["--config", s(&bad), "--ring", s(&missing)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "logbus-collector: {}:5: sinks[0].min_level: ",
            bad.display()
        )),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert!(!dir.path("x.log").exists() && !missing.exists());
    // A file that parses but cannot be used: the same line, with the line of
    // the key at fault.
    std::fs::write(
        &bad,
        "[[sinks]]\nname = \"a\"\ntype = \"null\"\n\n[[sinks]]\nname = \"a\"\ntype = \"stdout\"\n",
    )
    .unwrap();
    let o = check(&["--config", s(&bad)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "logbus-collector: {}:6: sinks[1].name: \"a\" is used by an earlier sink\n",
            bad.display()
        )
    );
}

#[test]
fn versions_completions_and_man_pages() {
    let layout = format!("(ring layout version {})", logbus_ring::layout::VERSION);
    for exe in ["logbus", "logbus-collector"] {
        let o = Command::new(bin(exe)).arg("--version").output().unwrap();
        let v = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && v.trim_end().ends_with(&layout),
            "{exe}: {v}"
        );
    }
    let bash = String::from_utf8(logbus_ok(&["completions", "bash"]).stdout).unwrap();
    for sub in [
        "create",
        "emit",
        "dump",
        "drain",
        "stat",
        "tail",
        "--trace-id",
        "--since",
    ] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    for shell in ["zsh", "fish"] {
        let out = String::from_utf8(logbus_ok(&["completions", shell]).stdout).unwrap();
        assert!(out.contains("dump") && out.contains("tail"), "{shell}");
    }
    let dir = TempDir::new("svc-man");
    let man = dir.path("man");
    logbus_ok(&["man", "--dir", s(&man)]);
    let o = Command::new(bin("logbus-collector"))
        .args(["--man", s(&man)])
        .output()
        .unwrap();
    assert!(o.status.success());
    for page in [
        "logbus.1",
        "logbus-dump.1",
        "logbus-tail.1",
        "logbus-collector.1",
    ] {
        let text =
            std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    let dump = std::fs::read_to_string(man.join("logbus-dump.1")).unwrap();
    assert!(
        dump.contains("trace\\-id"),
        "the dump page lacks --trace-id"
    );
}

/// Rewrites a ring file's layout version (the `u32` after the 8-byte magic)
/// to the one before this logbus's, as a ring left by the previous release.
fn make_old_layout(ring: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(ring).unwrap();
    f.seek(SeekFrom::Start(8)).unwrap();
    f.write_all(&(logbus_ring::layout::VERSION - 1).to_le_bytes())
        .unwrap();
}

#[test]
fn a_ring_of_the_previous_layout_is_refused_with_one_line() {
    let dir = TempDir::new("svc-upgrade");
    let old = format!(
        "ring layout version {} is older than this logbus's version {}: stop its producers and collector, delete the file and create it again",
        logbus_ring::layout::VERSION - 1,
        logbus_ring::layout::VERSION
    );
    // --ring: the collector does not start.
    let ring = dir.path("ring");
    logbus_ok(&["create", s(&ring)]);
    make_old_layout(&ring);
    let o = Command::new(bin("logbus-collector"))
        .args(["--ring", s(&ring)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err,
        format!("logbus-collector: {}: {old}\n", ring.display())
    );
    // A ring directory: that ring is named and skipped, the others are read.
    let rings = dir.path("logbus.d");
    std::fs::create_dir(&rings).unwrap();
    let (stale, fresh) = (rings.join("old"), rings.join("new"));
    logbus_ok(&["create", s(&stale)]);
    make_old_layout(&stale);
    logbus_ok(&["create", s(&fresh)]);
    let mut c = Collector::start(&dir, "dir", &["--ring-dir", s(&rings)]);
    c.wait_stderr("the refusal", "; not read");
    assert!(
        c.stderr_text()
            .contains(&format!("{}: {old}; not read", stale.display())),
        "{}",
        c.stderr_text()
    );
    logbus_ok(&["emit", s(&fresh), "after the upgrade"]);
    wait_for("the new ring's record", LONG, || {
        std::fs::read_to_string(&c.stdout)
            .ok()?
            .contains("after the upgrade")
            .then_some(())
    });
    assert!(c.stop().success(), "{}", c.stderr_text());
}
