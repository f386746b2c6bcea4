//! A collector SIGKILLed while a sink that cannot write holds records in
//! its memory only (beyond its `max_backlog`: committed in the ring, not yet
//! written): the next collector counts them, per sink and level, as
//! `lost_in_crash` (its status file, `/metrics`, a line), from the ring's
//! ledger. Real processes, a real SIGKILL, a sink that really stalls (a FIFO
//! whose reader does not read).

use std::path::Path;

use logbus_ring::{Ring, RingOptions};
use logbus_tests::collector::*;
use logbus_tests::{wait_for, TempDir};

/// The most records a sink writes in one group (`GROUP_RECORDS`, 4,096, or
/// the one chunk it takes whole, at most a poll): the most a killed
/// collector counts lost although (part of) it reached the sink.
const GROUP: u64 = 16_384;

fn make_fifo(path: &Path) -> i32 {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // The reader: opened non-blocking (no wait for a writer), read only when
    // the test says so; kept open across both collectors, so that what the
    // killed one wrote stays in the pipe.
    // SAFETY: as above; the descriptor is closed at the end of the test.
    let rd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    assert!(rd >= 0);
    rd
}

/// Appends what the pipe holds now to `buf`.
fn drain(rd: i32, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 1 << 16];
    loop {
        // SAFETY: `chunk` is a valid writable buffer of its length; `rd` is
        // our open descriptor.
        let n = unsafe { libc::read(rd, chunk.as_mut_ptr().cast(), chunk.len()) };
        if n <= 0 {
            return; // EAGAIN (nothing now), or no writer and empty
        }
        buf.extend_from_slice(&chunk[..n as usize]);
    }
}

/// The record numbers of the complete lines of `buf` (a last line cut by
/// the kill is left out and counted apart).
fn complete(buf: &[u8]) -> (Vec<(String, u64)>, bool) {
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&buf[..end]).expect("utf-8 lines");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    (numbers(&lines), end < buf.len())
}

fn level_sum(v: &serde_json::Value) -> u64 {
    v.as_object()
        .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum())
}

/// A collector killed while its FIFO sink (whose reader never reads) holds
/// records in memory only, and what it left.
struct Killed {
    dir: TempDir,
    ring: std::path::PathBuf,
    cfg: std::path::PathBuf,
    /// The FIFO's reader.
    rd: i32,
    /// What the FIFO sink shed, from the killed collector's status file.
    shed: u64,
    /// What the killed collector got into the pipe.
    first: Vec<u8>,
}

/// `n` records through a collector with a healthy file sink and a FIFO
/// sink that stalls (`max_backlog = 10`, `queue = 3000`) on a lossless ring
/// of 64 blocks (the ring itself drops nothing: the books are the sinks'
/// alone); SIGKILL once every record is handed to both sinks.
fn stall_and_kill(name: &str, n: u64) -> Killed {
    let dir = TempDir::new(name);
    let ring = dir.path("ring");
    Ring::create(
        &ring,
        &RingOptions {
            size: 1 << 20,
            block_size: 16 << 10,
            wait_ms: 10_000,
            ..RingOptions::default()
        },
    )
    .unwrap();
    let fifo = dir.path("fifo");
    let out = dir.path("out.log");
    let rd = make_fifo(&fifo);
    let cfg = dir.path("c.toml");
    write_config(
        &cfg,
        &format!(
            "[ring]\nshutdown_timeout = \"2s\"\n\n{}\n{}",
            file_sink("fifo", &fifo, "max_backlog = 10\nqueue = 3000\n"),
            file_sink("out", &out, "")
        ),
    );
    let mut c = Collector::start(&dir, "c1", &ring_and_config(&ring, &cfg));
    finish(producer(&ring, "f", n, &[]));
    assert_exactly_once(&numbers(&wait_lines(&out, n as usize)), &all("f", 0..n));
    // Every record handed to the FIFO sink (the healthy sink has them all):
    // the status says what it shed, and holds the rest (its write blocked,
    // a pipe's worth in the pipe).
    let st = wait_for("the FIFO sink's final counts", LONG, || {
        let s = sink_status(&ring, "fifo");
        let held = s["delivered"].as_u64()? + level_sum(&s["dropped"]) + s["backlog"].as_u64()?;
        (held == n).then_some(s)
    });
    let shed = level_sum(&st["dropped"]);
    assert!(shed > 0, "its memory bound was passed: {st}");
    c.signal(libc::SIGKILL);
    c.wait_exit();
    let mut first = Vec::new();
    drain(rd, &mut first);
    Killed {
        dir,
        ring,
        cfg,
        rd,
        shed,
        first,
    }
}

/// Before the ledger, the records the killed collector held for the FIFO
/// sink in memory were in no sink and in no counter: `distinct + shed` fell
/// short of what was emitted by thousands. Now `distinct + shed +
/// lost_in_crash` covers every record, and exceeds it by at most the one
/// group the killed collector was writing (partly in the pipe, and counted).
#[test]
fn a_collector_killed_with_records_held_in_memory_for_a_stalled_sink_has_them_counted_by_the_next()
{
    const N: u64 = 20_000;
    let Killed {
        dir,
        ring,
        cfg,
        rd,
        shed,
        first,
    } = stall_and_kill("crash-ledger", N);
    let (mut got, cut) = complete(&first);
    let mut c = Collector::start(&dir, "c2", &ring_and_config(&ring, &cfg));
    let pid = c.pid() as u64;
    let lost_status = wait_for("the next collector's status", LONG, || {
        let s = status(&ring);
        (s["pid"].as_u64() == Some(pid)).then(|| sink_status(&ring, "fifo"))
    });
    let lost = level_sum(&lost_status["lost_in_crash"]);
    // It delivers what pinned the ring; the FIFO is read now.
    let mut second = Vec::new();
    let distinct = |got: &[(String, u64)]| tally(got).len() as u64;
    wait_for(
        "every record in the FIFO, shed, or counted lost_in_crash",
        LONG,
        || {
            drain(rd, &mut second);
            let mut all = got.clone();
            all.extend(complete(&second).0);
            (distinct(&all) + shed + lost >= N).then_some(())
        },
    );
    assert!(c.stop().success(), "{}", c.stderr_text());
    drain(rd, &mut second);
    // SAFETY: our own descriptor, not used after this.
    unsafe { libc::close(rd) };
    let (more, cut2) = complete(&second);
    assert!(!cut2, "the second collector's output is whole");
    got.extend(more);
    let d = distinct(&got);
    eprintln!(
        "emitted {N}: {d} distinct in the FIFO + {shed} shed + {lost} lost_in_crash; \
         {} lines from the killed collector (a line cut: {cut})",
        complete(&first).0.len()
    );
    assert!(lost > 0, "the killed collector held records in memory");
    assert!(d + shed + lost >= N, "a record in no sink and no counter");
    assert!(
        d + shed + lost <= N + GROUP,
        "counted lost though written: more than the one group being written at the kill"
    );
    // And exactly: what is counted twice is what the killed collector got
    // into the pipe of the group it was writing.
    let from_killed = complete(&first).0.len() as u64;
    assert!(
        d + shed + lost - N <= from_killed,
        "{} counted twice, more than the {from_killed} lines the killed collector wrote",
        d + shed + lost - N
    );
    assert!(
        tally(&got).keys().all(|(p, n)| p == "f" && *n < N),
        "foreign records"
    );
    assert!(
        c.stderr_text().contains("counted lost_in_crash"),
        "{}",
        c.stderr_text()
    );
    assert_eq!(
        Ring::open_existing(&ring).unwrap().stats().total().dropped,
        0,
        "the lossless ring dropped nothing"
    );
}

/// The next collector no longer has the stalled sink: what the killed one
/// held for it is still counted, by a line naming its hash, once (the
/// collector after that finds nothing left).
#[test]
fn records_lost_in_a_crash_for_a_sink_no_longer_configured_are_said_once() {
    let k = stall_and_kill("crash-ledger-gone", 10_000);
    let (ring, dir) = (&k.ring, &k.dir);
    let out = dir.path("out.log");
    let cfg = dir.path("only-out.toml");
    write_config(&cfg, &file_sink("out", &out, ""));
    let needle = "for a sink no longer configured";
    let mut c = Collector::start(dir, "c2", &ring_and_config(ring, &cfg));
    c.wait_stderr("the line about the FIFO sink's records", needle);
    let err = c.stderr_text();
    let line = err.lines().find(|l| l.contains(needle)).unwrap();
    let n: u64 = line
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("a count in {line:?}"));
    assert!(n > 0, "{line}");
    assert!(line.contains("name hash 0x"), "{line}");
    assert!(c.stop().success(), "{err}");
    let mut c = Collector::start(dir, "c3", &ring_and_config(ring, &cfg));
    let pid = c.pid() as u64;
    wait_for("the third collector's status", LONG, || {
        (status(ring)["pid"].as_u64() == Some(pid)).then_some(())
    });
    assert!(c.stop().success(), "{}", c.stderr_text());
    assert!(
        !c.stderr_text().contains("lost with an earlier collector"),
        "counted twice: {}",
        c.stderr_text()
    );
    // SAFETY: our own descriptor, not used after this.
    unsafe { libc::close(k.rd) };
}
