//! The collector that wakes on demand (issue 8, part 3): a real
//! `logbus-collector` on a default-geometry ring, idle for seconds, then one
//! `logbus emit` process writes a 45,000-line burst from its standard input.
//! Every line reaches the collector's stdout exactly once, the ring counts
//! nothing dropped, and the burst's writer woke the sleeping collector itself.
//!
//! Run with `cargo build --workspace --bins && cargo test -p logbus-tests --test wake`
//! (or `scripts/test`, which builds every binary first).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use logbus_tests::collector::{all, assert_exactly_once, numbers, wait_lines, Collector, LONG};
use logbus_tests::{bin, logbus_ok, wait_for, TempDir};
use serde_json::Value as Json;

/// Lines in the burst (the figure of the issue).
const BURST: u64 = 45_000;

/// How long the collector sits idle before the burst: long enough for it to
/// be asleep on the ring's futex (it sleeps after 50 empty polls), longer than
/// its 1 s housekeeping timeout.
const IDLE: Duration = Duration::from_secs(2);

fn stat(ring: &Path) -> Json {
    let o = logbus_ok(&["stat", ring.to_str().unwrap(), "--json"]);
    serde_json::from_slice(&o.stdout).expect("stat --json")
}

/// A line of about the size of a real log message (about 110 bytes).
fn burst_line(n: u64) -> String {
    format!("GET /api/v1/orders status=200 bytes=5120 user=alice took=12.5ms trace=4bf92f3577b34da6 burst-{n}")
}

#[test]
fn burst_after_idle_is_delivered_whole_on_the_default_ring() {
    let dir = TempDir::new("wake-burst");
    let ring = dir.path("ring");
    let r = ring.to_str().unwrap();
    // The ring a user gets: `logbus create` with no options.
    logbus_ok(&["create", r]);
    let st = stat(&ring);
    assert_eq!(
        (&st["blocks"], &st["block_size"], &st["mode"]),
        (&Json::from(512), &Json::from(32768), &Json::from("lossy")),
        "default geometry"
    );

    let c = Collector::start(&dir, "c", &["--ring", r]);
    // One record, delivered: the collector is running and has drained.
    logbus_ok(&["emit", r, "first-0"]);
    let first = wait_lines(&c.stdout, 1);
    assert_exactly_once(&numbers(&first), &all("first", 0..1));

    // The point of the test: the collector goes idle (asleep on the futex)
    // for seconds before the burst. A deliberate pause, not a synchronisation.
    std::thread::sleep(IDLE);
    let wakeups_before = stat(&ring)["wakeups"].as_u64().expect("wakeups");

    // The burst: one `logbus emit` process, every line of its stdin a record.
    let input = dir.path("burst.txt");
    {
        let mut f = std::io::BufWriter::new(File::create(&input).unwrap());
        for n in 0..BURST {
            writeln!(f, "{}", burst_line(n)).unwrap();
        }
        f.flush().unwrap();
    }
    let mut emit = Command::new(bin("logbus"))
        .args(["emit", r])
        .env_remove("LOGBUS_RING")
        .stdin(File::open(&input).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn logbus emit");
    let status = wait_for("logbus emit to exit", LONG, || emit.try_wait().unwrap());
    assert!(status.success(), "logbus emit: {status}");

    let out = wait_lines(&c.stdout, 1 + BURST as usize);
    let burst: Vec<String> = out[1..].to_vec();
    let mut expect = all("first", 0..1);
    let prefix = burst_line(0);
    let prefix = prefix.rsplit_once('-').unwrap().0;
    expect.extend(all(prefix, 0..BURST));
    let mut got = numbers(&first);
    got.extend(numbers(&burst));
    assert_exactly_once(&got, &expect);

    let st = wait_for("every record committed", LONG, || {
        let st = stat(&ring);
        (st["delivered"] == 1 + BURST).then_some(st)
    });
    assert_eq!(st["emitted"], 1 + BURST, "{st}");
    assert_eq!(
        (&st["dropped"], &st["evicted"], &st["torn"], &st["unread"]),
        (
            &Json::from(0),
            &Json::from(0),
            &Json::from(0),
            &Json::from(0)
        ),
        "{st}"
    );
    // The burst's writer found the collector asleep and woke it (not its
    // once-a-second housekeeping timeout).
    assert!(
        st["wakeups"].as_u64().unwrap() > wakeups_before,
        "no producer wake-up counted: {st}"
    );
}
