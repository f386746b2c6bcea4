//! The ring under real concurrency: several OS processes hammering one ring
//! file, a stalled reader, producers and consumers killed with SIGKILL.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use logbus_ring::{Batch, Consumer, Level, Ring, RingOptions, Stats, Value};
use logbus_tests::{bin, wait_for, TempDir};

/// A start gun: children inherit the read end and block on it.
struct Gun {
    read: OwnedFd,
    write: std::fs::File,
}

impl Gun {
    fn new() -> Gun {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) returns; no
        // O_CLOEXEC on purpose, the children must inherit the read end.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors were just created and are owned by nobody else.
        unsafe {
            Gun {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: std::fs::File::from_raw_fd(fds[1]),
            }
        }
    }
    fn fire(mut self, shots: usize) {
        self.write.write_all(&vec![b'!'; shots]).unwrap();
    }
}

/// A ring made with `opts` at `dir/ring`: its path and the ring.
fn ring_with(dir: &TempDir, opts: &RingOptions) -> (PathBuf, Ring) {
    let path = dir.path("ring");
    let ring = Ring::create(&path, opts).unwrap();
    (path, ring)
}

fn hammer(ring: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("ring-hammer"));
    c.arg(ring)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    c
}

/// Spawns `n` ring-hammers (`--id 0` to `--id n-1`, then `args`) held at one
/// start gun, and fires it once for each of their `threads` threads.
fn spawn_together(ring: &Path, n: usize, threads: usize, args: &[&str]) -> Vec<Child> {
    let gun = Gun::new();
    let fd = gun.read.as_raw_fd().to_string();
    let children = (0..n)
        .map(|k| {
            let id = k.to_string();
            let mut all = vec!["--id", id.as_str()];
            all.extend_from_slice(args);
            all.extend(["--wait-fd", fd.as_str()]);
            hammer(ring, &all).spawn().unwrap()
        })
        .collect();
    gun.fire(n * threads);
    children
}

fn output_of(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "ring-hammer failed: {:?}", out.status);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs one ring-hammer with `args` to its end; its output.
fn run_hammer(ring: &Path, args: &[&str]) -> serde_json::Value {
    output_of(hammer(ring, args).spawn().unwrap())
}

/// Calls `read` (a consumer's turn) for as long as each child runs, then
/// takes its output: the reader keeps up with the producers while they write.
fn outputs_while(children: Vec<Child>, mut read: impl FnMut()) -> Vec<serde_json::Value> {
    children
        .into_iter()
        .map(|mut c| {
            while c.try_wait().unwrap().is_none() {
                read();
            }
            output_of(c)
        })
        .collect()
}

/// The sum of `key` (`written`, `dropped`, `evicted`) over ring-hammer outputs.
fn sum_of(outputs: &[serde_json::Value], key: &str) -> u64 {
    outputs.iter().map(|o| o[key].as_u64().unwrap()).sum()
}

/// A ring-hammer's output says it wrote all `n` of its records, none dropped.
fn assert_all_written(out: &serde_json::Value, n: u64) {
    assert_eq!(
        (out["written"].as_u64(), out["dropped"].as_u64()),
        (Some(n), Some(0)),
        "{out}"
    );
}

/// Records seen, per (process id field, thread), as the list of `i` values.
type Seen = HashMap<(u64, u64), Vec<u64>>;

/// How many records were seen in all.
fn total(seen: &Seen) -> usize {
    seen.values().map(Vec::len).sum()
}

fn record_into(seen: &mut Seen, batch: &Batch) {
    for r in batch.iter() {
        let mut p = None;
        let mut t = None;
        let mut i = None;
        for (k, v) in r.fields() {
            if let Value::U64(x) = v {
                match k {
                    "p" => p = Some(x),
                    "t" => t = Some(x),
                    "i" => i = Some(x),
                    _ => {}
                }
            }
        }
        let (p, t, i) = (p.unwrap(), t.unwrap(), i.unwrap());
        seen.entry((p, t)).or_default().push(i);
        let at = r.pos();
        WHERE
            .lock()
            .unwrap()
            .insert((p, t, i), (at.seq, at.end, r.seq()));
    }
}

fn drain_all(c: &mut Consumer, seen: &mut Seen) -> usize {
    let mut b = Batch::new();
    let mut n = 0;
    loop {
        let k = c.poll(&mut b, 4096);
        if k == 0 {
            return n;
        }
        record_into(seen, &b);
        c.commit_all();
        n += k;
    }
}

/// Every record the producers emitted is delivered, dropped, evicted, torn or
/// unread, per level; and no garbage was found.
fn assert_balanced(s: &Stats, emitted: &[u64; 6]) {
    assert_eq!(
        s.unaccounted(emitted),
        None,
        "every record delivered or counted: {s:?}"
    );
    assert_eq!(s.invalid, 0, "no garbage was written, none may be found");
}

/// Per level, what ring-hammers in `--mix` mode emitted (DEBUG, INFO, INFO, ERROR).
fn mixed(total: u64) -> [u64; 6] {
    let per = total / 4;
    [0, per, 2 * per, 0, per, 0]
}

/// (process, thread, i) -> where it was read: (block, end in it, serial).
type Places = BTreeMap<(u64, u64, u64), (u64, u32, u64)>;

/// Where each record was read, for the message of a failed order check.
static WHERE: std::sync::Mutex<Places> = std::sync::Mutex::new(BTreeMap::new());

fn assert_in_order(seen: &Seen) {
    for (who, is) in seen {
        if let Some(k) = is.windows(2).position(|w| w[0] >= w[1]) {
            let what = if is.iter().filter(|&&i| i == is[k + 1]).count() > 1 {
                "duplicated"
            } else {
                "out of order"
            };
            let around = &is[k.saturating_sub(3)..(k + 5).min(is.len())];
            let w = WHERE.lock().unwrap();
            let at: Vec<_> = around
                .iter()
                .map(|i| w.get(&(who.0, who.1, *i)).copied())
                .collect();
            panic!(
                "{who:?}: record {} {what} after {} (around: {around:?}; read at (block, end, serial): {at:?})",
                is[k + 1],
                is[k]
            );
        }
    }
}

#[test]
fn four_processes_of_100k_records_each_arrive_exactly_once_in_order() {
    let dir = TempDir::new("mp4");
    // Room for everything, so that "exactly once" admits no drop.
    let opts = RingOptions {
        size: 128 << 20,
        watermarks: [100; 6],
        ..RingOptions::default()
    };
    let (path, ring) = ring_with(&dir, &opts);
    // Short messages (about 120 bytes a record): the ring holds all 400k
    // records even if the consumer fell behind.
    let children = spawn_together(&path, 4, 1, &["--count", "100000", "--msg-bytes", "8"]);
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    // Consume while they write, so that claims race with publishing.
    let outputs = outputs_while(children, || {
        drain_all(&mut consumer, &mut seen);
        std::thread::yield_now();
    });
    for out in &outputs {
        assert_all_written(out, 100_000);
    }
    drain_all(&mut consumer, &mut seen);
    assert_eq!(drain_all(&mut consumer, &mut seen), 0);
    assert_eq!(seen.len(), 4);
    for k in 0..4 {
        assert_eq!(
            seen[&(k, 0)],
            (0..100_000).collect::<Vec<_>>(),
            "producer {k}"
        );
    }
    let s = ring.stats();
    assert_eq!(s.level(Level::Info).delivered, 400_000);
    assert_balanced(&s, &[0, 0, 400_000, 0, 0, 0]);
}

#[test]
fn a_small_ring_wrapping_under_four_processes_loses_nothing_uncounted() {
    let dir = TempDir::new("wrap4");
    // Producers wait up to 2 ms for room before the overflow policy applies:
    // they run about at the reader's pace (so the ring wraps many times even
    // when other tests starve this one's reader), and still overflow often.
    let opts = RingOptions {
        size: 512 << 10,
        block_size: 4096,
        wait_ms: 2,
        ..RingOptions::default()
    };
    let (path, ring) = ring_with(&dir, &opts);
    let children = spawn_together(
        &path,
        4,
        2,
        &["--count", "50000", "--threads", "2", "--mix"],
    );
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    // Drain while each child runs; a bounded ring must wrap many times.
    let outputs = outputs_while(children, || {
        drain_all(&mut consumer, &mut seen);
        std::thread::yield_now();
    });
    drain_all(&mut consumer, &mut seen);
    assert_in_order(&seen);
    let delivered = total(&seen);
    let written = sum_of(&outputs, "written");
    let dropped = sum_of(&outputs, "dropped");
    let evicted = sum_of(&outputs, "evicted");
    assert_eq!(written + dropped, 400_000);
    let s = ring.stats();
    // Every record written was delivered or evicted. (The producers' own
    // eviction counts can be lower than the ring's: an eviction whose record
    // then lost the freed block to another writer, and was dropped, is
    // reported by no `Written`.)
    assert_eq!(s.total().published, written, "{s:?}");
    assert_eq!(s.total().delivered, delivered as u64);
    assert_eq!(s.total().delivered + s.total().evicted, written);
    assert!(evicted <= s.total().evicted, "{evicted} {s:?}");
    assert_eq!(s.total().emitted, 400_000);
    assert_eq!(s.total().dropped, dropped);
    assert_eq!(s.total().unread, 0);
    assert!(delivered > 4096, "the ring wrapped (delivered {delivered})");
    assert_balanced(&s, &mixed(400_000));
}

#[test]
fn with_the_reader_stalled_errors_evict_low_severity_records_and_are_kept() {
    let dir = TempDir::new("stall");
    // 16 blocks of 4 KiB; a record here is about 120 bytes, 34 to a block.
    let opts = RingOptions {
        size: 64 << 10,
        block_size: 4096,
        ..RingOptions::default()
    };
    let (path, ring) = ring_with(&dir, &opts);
    let run = |args: &[&str]| run_hammer(&path, &[args, &["--msg-bytes", "8"]].concat());
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    // DEBUG may fill half the ring, INFO three quarters: the rest is dropped.
    let debug = run(&["--id", "1", "--count", "2000", "--severity", "5"]);
    assert_eq!(n(&debug, "written") + n(&debug, "dropped"), 2000);
    assert_eq!(
        ring.stats().blocks_in_use,
        8,
        "DEBUG stops at half the blocks"
    );
    let info = run(&["--id", "2", "--count", "2000", "--severity", "9"]);
    assert_eq!(n(&info, "written") + n(&info, "dropped"), 2000);
    assert_eq!(
        ring.stats().blocks_in_use,
        12,
        "INFO stops at three quarters"
    );
    assert!(n(&debug, "written") > 200 && n(&info, "written") > 100);
    // ERRORs fill the last quarter, then push out the oldest blocks, DEBUG
    // first, until every block left holds ERRORs; then they are dropped.
    let errors = run(&["--id", "3", "--count", "1000", "--severity", "17"]);
    assert_eq!(
        n(&errors, "evicted"),
        n(&debug, "written") + n(&info, "written"),
        "every lower record was evicted before any ERROR was refused"
    );
    assert!(n(&errors, "written") > 500, "{errors}");
    assert_eq!(n(&errors, "written") + n(&errors, "dropped"), 1000);
    // Every unread record is an ERROR now: nothing more can go.
    let more = run(&["--id", "4", "--count", "100", "--severity", "17"]);
    assert_eq!((n(&more, "written"), n(&more, "dropped")), (0, 100));
    let s = ring.stats();
    assert_eq!(s.level(Level::Debug).evicted, n(&debug, "written"));
    assert_eq!(s.level(Level::Info).evicted, n(&info, "written"));
    assert_eq!(s.level(Level::Error).unread, n(&errors, "written"));
    let emitted = [0, 2000, 2000, 0, 1100, 0];
    assert_balanced(&s, &emitted);
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    assert_eq!(
        drain_all(&mut consumer, &mut seen) as u64,
        n(&errors, "written")
    );
    assert_eq!(
        seen[&(3, 0)],
        (0..n(&errors, "written")).collect::<Vec<_>>(),
        "the ERRORs that found room, in order"
    );
    assert_balanced(&ring.stats(), &emitted);
}

/// Deterministic pseudo-random numbers (a test must be repeatable from its seed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Producer processes (with their ids), SIGKILLed and reaped when dropped.
struct KillOnDrop(Vec<(u64, Child)>);

impl std::ops::Deref for KillOnDrop {
    type Target = Vec<(u64, Child)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Producers killed with SIGKILL at random moments while the others go on,
/// on a small ring where ERROR records evict and compact: every thread's
/// records arrive in order, none twice, and the books balance (what was in
/// flight in a killed thread is counted torn). This test found the two order
/// bugs described in `crates/logbus-ring/README.md`.
#[test]
fn producers_killed_at_random_moments_leave_the_accounting_exact() {
    let dir = TempDir::new("kill");
    let opts = RingOptions {
        size: 1 << 20,
        block_size: 4096,
        ..RingOptions::default()
    };
    let (path, ring) = ring_with(&dir, &opts);
    let seed = logbus_ring::now_ns();
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    let mut next_id = 0u64;
    let mut spawn = |big: bool| {
        next_id += 1;
        // Large records (1-2 KiB) make a kill in the middle of a record likely.
        let bytes = if big { "1500" } else { "40" };
        let child = hammer(
            &path,
            &[
                "--id",
                &next_id.to_string(),
                "--count",
                "0",
                "--threads",
                "2",
                "--mix",
                "--msg-bytes",
                bytes,
            ],
        )
        .spawn()
        .unwrap();
        (next_id, child)
    };
    // Killed on drop too: a failing wait below must not leave producers that
    // never stop (`--count 0`) running after the test.
    let mut live = KillOnDrop((0..3).map(|k| spawn(k % 2 == 0)).collect());
    let mut killed = 0;
    for round in 0..8 {
        // Let them run until some of their records arrive, then kill one.
        let before = total(&seen);
        let want = before + 200 + rng.next(3000) as usize;
        wait_for(
            "records from the live producers",
            Duration::from_secs(60),
            || {
                drain_all(&mut consumer, &mut seen);
                (total(&seen) >= want).then_some(())
            },
        );
        let victim = rng.next(live.len() as u64) as usize;
        let (id, mut child) = live.swap_remove(victim);
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        killed += 1;
        // The others go on: new records from a survivor keep arriving.
        let (survivor, _) = &live[0];
        let survivor = *survivor;
        let count_of = |seen: &Seen| {
            seen.iter()
                .filter(|((p, _), _)| *p == survivor)
                .map(|(_, v)| v.len())
                .sum::<usize>()
        };
        let base = count_of(&seen);
        wait_for("a survivor to go on", Duration::from_secs(60), || {
            drain_all(&mut consumer, &mut seen);
            (count_of(&seen) > base + 100).then_some(())
        });
        eprintln!("round {round}: killed producer {id}");
        live.push(spawn(round % 2 == 1));
    }
    drop(live);
    // A record each killed thread was in the middle of is found torn (its
    // writer's liveness lock is gone) once it has looked stuck for a while.
    wait_for(
        "every block read to its end",
        Duration::from_secs(30),
        || {
            drain_all(&mut consumer, &mut seen);
            consumer.wait(Some(Duration::from_millis(5)));
            // Whatever this last look claims is recorded and committed like
            // the rest, so that `delivered` below matches what was seen.
            let mut b = Batch::new();
            let more = consumer.poll(&mut b, 1);
            record_into(&mut seen, &b);
            consumer.commit_all();
            (more == 0 && ring.stats().total().unread == 0).then_some(())
        },
    );
    assert_eq!(killed, 8);
    assert_in_order(&seen);
    let s = ring.stats();
    assert_eq!(s.total().delivered, total(&seen) as u64);
    // Killed threads: 8 + 3 processes of 2 threads, at most one torn record
    // each, besides what a producer killed in the middle of compacting blocks
    // was moving (counted, as lost).
    assert!(s.total().torn - s.total().lost <= 22, "{s:?}");
    assert_eq!(s.invalid, 0, "{s:?}");
}

#[test]
fn processes_racing_to_create_the_ring_end_with_one_valid_ring() {
    for round in 0..5 {
        let dir = TempDir::new("race");
        let path = dir.path("ring");
        // The children open (and so create) the ring only after the gun: they
        // race on creation itself.
        let children = spawn_together(&path, 6, 1, &["--count", "10"]);
        for c in children {
            assert_eq!(output_of(c)["written"], 10, "round {round}");
        }
        let ring = Ring::open_existing(&path).unwrap();
        assert_eq!(ring.stats().total().unread, 60, "round {round}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.dir()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left behind");
    }
}

#[test]
fn a_consumer_killed_by_sigkill_hands_over_at_once_and_its_uncommitted_records_come_again() {
    let dir = TempDir::new("handover");
    let path = dir.path("ring");
    let ring = Ring::open(&path).unwrap();
    let mut w = ring.writer().unwrap();
    for i in 0..5 {
        w.emit(&logbus_ring::Event::new(9, &format!("r{i}")))
            .unwrap();
    }
    let mut holder = hammer(&path, &["--hold-consumer"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held");
    match Consumer::acquire(&ring) {
        Err(logbus_ring::ConsumerError::Busy { pid, .. }) => assert_eq!(pid, holder.id()),
        other => panic!("expected Busy, got {:?}", other.err()),
    }
    assert_eq!(ring.stats().consumer, Some((holder.id(), true)));
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(holder.id() as i32, libc::SIGKILL) };
    holder.wait().unwrap();
    // No grace period: the lock died with the process.
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    assert_eq!(c.poll(&mut b, 100), 5);
}

/// What `logbus create` makes without options: the ring a user gets.
fn default_ring(dir: &TempDir) -> (PathBuf, Ring) {
    ring_with(dir, &RingOptions::default())
}

#[test]
fn one_writer_with_no_reader_keeps_40k_info_records_in_the_default_ring() {
    let dir = TempDir::new("one40k");
    let (path, ring) = default_ring(&dir);
    let out = run_hammer(&path, &["--id", "1", "--count", "40000"]);
    assert_all_written(&out, 40_000);
    let s = ring.stats();
    assert_eq!(s.level(Level::Info).unread, 40_000);
    assert_balanced(&s, &[0, 0, 40_000, 0, 0, 0]);
}

/// With no reader, compactions pack the kept (ERROR) records at the head of
/// the full default ring, in more blocks than the 33 an eviction could reach
/// before layout version 3. A protected record still reaches the lower-level
/// records behind them; ERROR is dropped only once nothing lower is left.
#[test]
fn errors_reach_lower_records_behind_any_amount_of_kept_ones_in_the_default_ring() {
    let dir = TempDir::new("reach");
    let (path, ring) = default_ring(&dir);
    let run = |args: &[&str]| run_hammer(&path, args);
    run(&["--id", "1", "--count", "200000", "--mix"]);
    let before = ring.stats();
    let lower = |s: &Stats| s.level(Level::Debug).unread + s.level(Level::Info).unread;
    assert!(lower(&before) > 0, "{before:?}");
    // (Kept ERROR at the head: over 33 blocks' worth, about 32 KiB each.)
    assert!(
        before.level(Level::Error).unread * 64 > 33 * 32 * 1024,
        "{before:?}"
    );
    let out = run(&["--id", "2", "--count", "20000", "--severity", "17"]);
    assert_eq!(
        (out["written"].as_u64(), out["dropped"].as_u64()),
        (Some(20_000), Some(0)),
        "{:?}",
        ring.stats()
    );
    // More ERROR than the ring holds: every lower record goes first.
    run(&["--id", "3", "--count", "150000", "--severity", "17"]);
    let s = ring.stats();
    assert_eq!(lower(&s), 0, "{s:?}");
    assert!(s.level(Level::Error).dropped > 0, "{s:?}");
    let mut emitted = mixed(200_000);
    emitted[Level::Error as usize] += 170_000;
    assert_balanced(&s, &emitted);
}

#[test]
fn four_writers_with_no_reader_keep_all_their_records_in_the_default_ring() {
    let dir = TempDir::new("four5k");
    let (path, ring) = default_ring(&dir);
    let children = spawn_together(&path, 4, 1, &["--count", "5000"]);
    for c in children {
        assert_eq!(output_of(c)["written"], 5000);
    }
    let s = ring.stats();
    assert_eq!(s.level(Level::Info).unread, 20_000);
    assert_balanced(&s, &[0, 0, 20_000, 0, 0, 0]);
}

#[test]
fn sixty_four_processes_at_once_are_all_written_with_no_reader() {
    let dir = TempDir::new("sixty4");
    let (path, ring) = default_ring(&dir);
    let children = spawn_together(&path, 64, 1, &["--count", "20", "--severity", "17"]);
    for c in children {
        assert_all_written(&output_of(c), 20);
    }
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    assert_eq!(drain_all(&mut consumer, &mut seen), 64 * 20);
    assert_in_order(&seen);
    assert_balanced(&ring.stats(), &[0, 0, 0, 0, 64 * 20, 0]);
}

/// The lossless tests' ring: 16 blocks of 4 KiB, writers wait up to 10 s.
fn lossless_64k() -> RingOptions {
    RingOptions {
        size: 64 << 10,
        block_size: 4096,
        wait_ms: 10_000,
        ..RingOptions::default()
    }
}

#[test]
fn in_lossless_mode_a_writer_waits_for_a_slow_reader_and_nothing_is_dropped() {
    let dir = TempDir::new("lossless");
    // A ring far smaller than what is written: the writer must wait.
    let (path, ring) = ring_with(&dir, &lossless_64k());
    let child = hammer(&path, &["--id", "1", "--count", "20000"])
        .spawn()
        .unwrap();
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    let outputs = outputs_while(vec![child], || {
        drain_all(&mut consumer, &mut seen);
        consumer.wait(Some(Duration::from_millis(5)));
    });
    drain_all(&mut consumer, &mut seen);
    assert_all_written(&outputs[0], 20_000);
    assert_eq!(seen[&(1, 0)], (0..20_000).collect::<Vec<_>>());
    let s = ring.stats();
    assert!(s.waits > 0, "the writer had to wait: {s:?}");
    assert_eq!(s.wait_timeouts, 0);
    assert_balanced(&s, &[0, 0, 20_000, 0, 0, 0]);
}

#[test]
fn in_lossless_mode_writers_racing_for_freed_room_all_wait_and_nothing_is_dropped() {
    let dir = TempDir::new("lossless-race");
    // 16 blocks for 12 writers of 1 KiB records: room freed by the reader is raced for, and a
    // writer that loses the race must wait again, not drop.
    let (path, ring) = ring_with(&dir, &lossless_64k());
    let children = spawn_together(&path, 6, 2, &["--count", "10000", "--msg-bytes", "1000"]);
    let mut consumer = Consumer::acquire(&ring).unwrap();
    let mut seen = Seen::new();
    let mut batch = Batch::new();
    let outs = outputs_while(children, || {
        // A few records at a time: room comes back about a block at a
        // time, fewer blocks than writers waiting for them.
        if consumer.poll(&mut batch, 16) > 0 {
            record_into(&mut seen, &batch);
            consumer.commit_all();
        } else {
            consumer.wait(Some(Duration::from_millis(5)));
        }
    });
    drain_all(&mut consumer, &mut seen);
    let dropped = sum_of(&outs, "dropped");
    let written = sum_of(&outs, "written");
    let s = ring.stats();
    assert_eq!((written, dropped), (60_000, 0), "{s:?}");
    assert_eq!(total(&seen), 60_000);
    assert_in_order(&seen);
    assert!(s.waits > 0, "the writers had to wait: {s:?}");
    assert_eq!(s.wait_timeouts, 0);
    assert_balanced(&s, &[0, 0, 60_000, 0, 0, 0]);
}
