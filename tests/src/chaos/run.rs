//! One chaos run, start to end: set-up, the fault loop, the quiet end, the
//! books.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::books::{self, ProducerBooks, SinkBooks};
use super::faults::Schedule;
use super::file_sink::{Disk, Segments};
use super::options::{Mode, Options};
use super::otlp::Endpoint;
use super::producers::{self, Kind, Limits, Producer, Programs};
use super::rng::Rng;
use super::supervisor::Supervisor;

/// How often the file sink's output is moved aside (with a SIGHUP) when no
/// `collector-hup` fault did it meanwhile.
const CUT_EVERY: Duration = Duration::from_secs(3);

/// What a run found.
pub struct Outcome {
    /// Every violation, one line each.
    pub violations: Vec<String>,
    /// The summary document (also written by `--json`).
    pub summary: Value,
    /// Memory samples: seconds, pid, RssAnon KiB.
    pub memory: Vec<(f64, u32, u64)>,
    /// Lines said along the way (skipped kinds, fallbacks).
    pub notes: Vec<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The workspace's root (this package lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn logbus(bin_dir: &Path, args: &[&str], ring: &Path) -> Result<String, String> {
    let out = Command::new(bin_dir.join("logbus"))
        .args(args)
        .arg(ring)
        .env_remove("LOGBUS_RING")
        .output()
        .map_err(|e| format!("logbus: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "logbus {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn create_ring(bin_dir: &Path, o: &Options, ring: &Path) -> Result<(), String> {
    let wait = o.wait_ms.to_string();
    let args: Vec<&str> = match o.mode {
        Mode::Drop => vec!["create"],
        Mode::Wait => vec!["create", "--wait-ms", &wait],
    };
    logbus(bin_dir, &args, ring).map(|_| ())
}

fn stat(bin_dir: &Path, ring: &Path) -> Result<Value, String> {
    let text = logbus(bin_dir, &["stat", "--json"], ring)?;
    serde_json::from_str(&text).map_err(|e| format!("logbus stat --json: {e}"))
}

fn config(ring: &Path, file: &Path, otlp: &str, spare: bool, backlog: u8) -> String {
    let mut c = format!(
        "[ring]\npath = \"{}\"\nshutdown_timeout = \"30s\"\n\n\
         [[sinks]]\nname = \"stdout\"\ntype = \"stdout\"\nmax_backlog = {backlog}\n\n\
         [[sinks]]\nname = \"file\"\ntype = \"file\"\npath = \"{}\"\nmax_backlog = {backlog}\n\n\
         [[sinks]]\nname = \"otlp\"\ntype = \"otlp\"\nendpoint = \"{otlp}\"\nprotocol = \"grpc\"\n\
         timeout = \"2s\"\nmax_backlog = {backlog}\n",
        ring.display(),
        file.display()
    );
    if spare {
        c += "\n[[sinks]]\nname = \"spare\"\ntype = \"null\"\n";
    }
    c
}

fn write_config(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write the collector's configuration");
    std::fs::rename(&tmp, path).expect("rename the collector's configuration");
}

/// Faults survived, per kind.
#[derive(Default)]
struct Tally(std::collections::BTreeMap<&'static str, u64>);

impl Tally {
    fn add(&mut self, f: &'static str) {
        *self.0.entry(f).or_insert(0) += 1;
    }
}

/// A timed end of a fault.
enum Pending {
    Cont(usize),
    Free,
    OtlpUp,
    Resume,
}

/// Runs the harness as `o` says, in a fresh directory under `/dev/shm`.
pub fn run(o: &Options) -> Result<Outcome, String> {
    let mut notes = Vec::new();
    let bin_dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .ok_or("no directory of the executable")?
        .to_path_buf();
    for b in ["logbus", "logbus-collector", "chaos-producer"] {
        if !bin_dir.join(b).exists() {
            return Err(format!(
                "{} is not built (cargo build -p logbus-tests --bins -p logbus-cli -p logbus-collector-bin, \
                 or cargo build --workspace --bins)",
                bin_dir.join(b).display()
            ));
        }
    }
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("logbus-chaos-{}-{}", o.seed, std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let _cleanup = Cleanup {
        dir: dir.clone(),
        keep: o.keep,
    };
    let ring = dir.join("ring");
    create_ring(&bin_dir, o, &ring)?;
    let max_msg = stat(&bin_dir, &ring)?["max_message"]
        .as_u64()
        .unwrap_or(1024) as usize;
    let limits = Limits { max_msg };

    let root = root();
    let mut kinds: Vec<Kind> = o.kinds.iter().filter_map(|k| Kind::from_name(k)).collect();
    let c = if kinds.contains(&Kind::C) {
        match producers::build_c(&root, &bin_dir, &dir) {
            Ok(p) => Some(p),
            Err(e) => {
                notes.push(format!("C producers skipped: {e}"));
                kinds.retain(|k| *k != Kind::C);
                None
            }
        }
    } else {
        None
    };
    let python = if kinds.contains(&Kind::Python) {
        let py = o.python.clone().or_else(|| {
            let p = root.join("target/pyvenv/bin/python");
            p.exists().then_some(p)
        });
        match py.map(|p| producers::check_python(&p).map(|()| p)) {
            Some(Ok(p)) => Some((p, root.join("tests/chaos/producer.py"))),
            Some(Err(e)) => {
                notes.push(format!("Python producers skipped: {e}"));
                kinds.retain(|k| *k != Kind::Python);
                None
            }
            None => {
                notes.push(
                    "Python producers skipped: no --python, no $LOGBUS_CHAOS_PYTHON, no target/pyvenv \
                     (scripts/test makes it)"
                        .into(),
                );
                kinds.retain(|k| *k != Kind::Python);
                None
            }
        }
    } else {
        None
    };
    let programs = Programs {
        rust: bin_dir.join("chaos-producer"),
        c,
        python,
        shell: (root.join("tests/chaos/producer.sh"), bin_dir.join("logbus")),
    };

    let (mut disk, why) = Disk::new(&dir.join("fs"), "64m");
    if let Some(why) = why.filter(|_| o.fault("disk-full")) {
        notes.push(format!(
            "disk-full skipped: {why}; the file sink writes a plain directory"
        ));
    }
    let mut segments = Segments::new(disk.path("out.log"));
    let mut endpoint = Endpoint::start();
    let cfg_path = dir.join("collector.toml");
    let configs = [
        config(
            &ring,
            &disk.path("out.log"),
            &endpoint.url(),
            false,
            o.max_backlog,
        ),
        config(
            &ring,
            &disk.path("out.log"),
            &endpoint.url(),
            true,
            o.max_backlog,
        ),
    ];
    let mut cfg_index = 0;
    write_config(&cfg_path, &configs[0]);
    let mut sup = Supervisor::new(bin_dir.join("logbus-collector"), &ring, &cfg_path, &dir);
    sup.start()?;

    let t0 = Instant::now();
    let end = t0 + o.duration;
    let end_ms = now_ms() + o.duration.as_millis() as u64;
    let mut rng = Rng::new(o.seed, 0x9e0d);
    let mut sched = Schedule::new(o.seed, &o.faults, t0, o.duration);
    let mut tally = Tally::default();
    let mut violations = Vec::new();
    let mut all: Vec<Producer> = Vec::new();
    let mut start_errors = 0u64;
    let mut pending: Vec<(Instant, Pending)> = Vec::new();
    let mut replaced: Vec<PathBuf> = Vec::new();
    let mut next_n = 0usize;
    let mut last_poll = t0;
    let mut last_mem = t0;
    let mut last_cut = t0;
    sup.sample_memory();

    let slots: Vec<Kind> = kinds
        .iter()
        .flat_map(|k| (0..o.per_kind).map(move |_| *k))
        .collect();
    let mut slot_owner: Vec<Option<usize>> = vec![None; slots.len()];

    while Instant::now() < end {
        let now = Instant::now();
        // Keep every slot filled with a live producer, each living 2 - 20 s.
        for (s, kind) in slots.iter().enumerate() {
            let live = slot_owner[s].is_some_and(|i| !all[i].reap());
            if !live && now + Duration::from_millis(500) < end {
                let life = rng.range(2000, 20000);
                let until = (now_ms() + life).min(end_ms);
                let seed = rng.next_u64() >> 1;
                match Producer::start(&programs, *kind, next_n, seed, &ring, &dir, limits, until) {
                    Ok(p) => {
                        slot_owner[s] = Some(all.len());
                        all.push(p);
                    }
                    Err(e) => {
                        start_errors += 1;
                        notes.push(format!(
                            "producer {}{next_n} did not start: {e}",
                            kind.letter()
                        ));
                        slot_owner[s] = None;
                    }
                }
                next_n += 1;
            }
        }
        // Ends of faults.
        let mut i = 0;
        while i < pending.len() {
            if pending[i].0 <= now {
                match pending.swap_remove(i).1 {
                    Pending::Cont(p) => {
                        all[p].signal(libc::SIGCONT);
                        all[p].stopped = false;
                    }
                    Pending::Free => disk.free(),
                    Pending::OtlpUp => {
                        if !endpoint.restart() {
                            pending.push((now + Duration::from_millis(200), Pending::OtlpUp));
                        }
                    }
                    Pending::Resume => sup.pause.store(false, Ordering::Relaxed),
                }
            } else {
                i += 1;
            }
        }
        for f in sched.due(now) {
            let live: Vec<usize> = slot_owner
                .iter()
                .flatten()
                .copied()
                .filter(|i| all[*i].status.is_none())
                .collect();
            match f {
                "producer-kill" => {
                    if let Some(&p) = (!live.is_empty()).then(|| sched.rng().pick(&live)) {
                        if all[p].signal(libc::SIGKILL) {
                            all[p].killed = true;
                            let _ = all[p].child.wait();
                            all[p].reap();
                            tally.add(f);
                        }
                    }
                }
                "producer-stop" => {
                    let running: Vec<usize> =
                        live.iter().copied().filter(|i| !all[*i].stopped).collect();
                    if let Some(&p) = (!running.is_empty()).then(|| sched.rng().pick(&running)) {
                        if all[p].signal(libc::SIGSTOP) {
                            all[p].stopped = true;
                            pending.push((now + sched.hold(f), Pending::Cont(p)));
                            tally.add(f);
                        }
                    }
                }
                "collector-kill" => {
                    sup.kill_and_restart()?;
                    tally.add(f);
                }
                "collector-hup" => {
                    cfg_index = 1 - cfg_index;
                    write_config(&cfg_path, &configs[cfg_index]);
                    segments.cut();
                    sup.signal(libc::SIGHUP);
                    last_cut = now;
                    tally.add(f);
                }
                "disk-full" if disk.can_fill() && !disk.is_full() => {
                    disk.fill();
                    pending.push((now + sched.hold(f), Pending::Free));
                    tally.add(f);
                }
                "otlp-restart" if endpoint.is_up() => {
                    endpoint.stop();
                    pending.push((now + sched.hold(f), Pending::OtlpUp));
                    tally.add(f);
                }
                "stdout-pause" => {
                    sup.pause.store(true, Ordering::Relaxed);
                    pending.push((now + sched.hold(f), Pending::Resume));
                    tally.add(f);
                }
                "ring-replace" => {
                    replace_ring(&bin_dir, o, &ring, &mut replaced)?;
                    tally.add(f);
                }
                _ => {}
            }
        }
        // The file sink's output is read in segments: moved aside, and the
        // collector told to reopen (SIGHUP, with the configuration unchanged).
        if now.duration_since(last_cut) >= CUT_EVERY {
            segments.cut();
            sup.signal(libc::SIGHUP);
            last_cut = now;
        }
        if now.duration_since(last_poll) >= Duration::from_millis(500) {
            last_poll = now;
            sup.poll_status();
            if let Some(line) = sup.check_alive() {
                violations.push(line);
            }
            segments.consume(false);
        }
        if now.duration_since(last_mem) >= Duration::from_secs(10) {
            last_mem = now;
            sup.sample_memory();
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    // The quiet end: every fault ended, producers finish, the collector drains.
    for (_, p) in pending.drain(..) {
        match p {
            Pending::Cont(i) => {
                all[i].signal(libc::SIGCONT);
                all[i].stopped = false;
            }
            Pending::Free => disk.free(),
            Pending::OtlpUp => {
                let deadline = Instant::now() + Duration::from_secs(10);
                while !endpoint.restart() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Pending::Resume => sup.pause.store(false, Ordering::Relaxed),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while all.iter_mut().any(|p| !p.reap()) {
        if Instant::now() > deadline {
            for p in all.iter_mut().filter(|p| p.status.is_none()) {
                violations.push(format!(
                    "producer {} did not exit 60 s after its deadline",
                    p.name
                ));
                p.signal(libc::SIGKILL);
                p.killed = true;
                let _ = p.child.wait();
                p.reap();
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = wait_drained(&bin_dir, &ring, &mut sup, &mut segments) {
        violations.push(e);
    }
    sup.sample_memory();
    match sup.stop(Duration::from_secs(60)) {
        Ok(st) if st.success() => {}
        Ok(st) => violations.push(format!("the last collector exited {st} at SIGTERM")),
        Err(e) => violations.push(e),
    }
    segments.consume(true);
    endpoint.finish(Duration::from_secs(10));

    // Processes: nothing panicked or crashed.
    for p in &all {
        let err = std::fs::read_to_string(&p.stderr).unwrap_or_default();
        if err.contains("panicked") {
            violations.push(format!(
                "producer {} panicked: {}",
                p.name,
                first_line_with(&err, "panicked")
            ));
        }
        if !p.killed && !p.status.is_some_and(|s| s.success()) {
            violations.push(format!(
                "producer {} exited {:?}: {}",
                p.name,
                p.status,
                err.lines().last().unwrap_or("")
            ));
        }
    }
    for e in &sup.stderrs {
        let err = std::fs::read_to_string(e).unwrap_or_default();
        if err.contains("panicked") || err.contains("internal error") {
            violations.push(format!(
                "{}: {}",
                e.display(),
                first_line_with(&err, "panick")
            ));
        }
    }

    // The books.
    let mut rings = vec![(ring.display().to_string(), stat(&bin_dir, &ring)?)];
    for r in &replaced {
        rings.push((r.display().to_string(), stat(&bin_dir, r)?));
    }
    let producer_books: Vec<ProducerBooks> = all
        .iter()
        .map(|p| ProducerBooks {
            name: p.name.clone(),
            kind: p.kind.letter(),
            killed: p.killed,
            clean_exit: !p.killed && p.status.is_some_and(|s| s.success()),
            threads: p.books(),
        })
        .collect();
    let stdout = sup.stdout.lock().unwrap_or_else(|e| e.into_inner());
    let sinks = [
        SinkBooks {
            check: &stdout,
            undelivered: sup.undelivered("stdout"),
            extra_groups: 0,
        },
        SinkBooks {
            check: &segments.check,
            undelivered: sup.undelivered("file"),
            extra_groups: 0,
        },
        SinkBooks {
            check: &endpoint.check,
            undelivered: sup.undelivered("otlp"),
            extra_groups: endpoint.stops,
        },
    ];
    let (found, books_doc) = books::check(&producer_books, &rings, &sinks, sup.kills);
    violations.extend(found);
    let memory: Vec<(f64, u32, u64)> = sup
        .memory
        .iter()
        .map(|m| (m.t, m.pid, m.rss_anon_kib))
        .collect();
    if let Some(v) = memory_trend(&memory) {
        violations.push(v);
    }
    let faults: serde_json::Map<String, Value> = tally
        .0
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let summary = json!({
        "seed": o.seed,
        "mode": match o.mode { Mode::Drop => "drop", Mode::Wait => "wait" },
        "duration_s": o.duration.as_secs(),
        "replay": o.replay(),
        "producers": all.len(),
        "producers_killed": all.iter().filter(|p| p.killed).count(),
        "producer_start_errors": start_errors,
        "collectors": sup.started,
        "stdout_records_at_kills": sup.kill_marks,
        "faults": faults,
        "rings": rings.iter().map(|(p, s)| json!({"path": p, "stat": s})).collect::<Vec<_>>(),
        "books": books_doc,
        "memory_kib": memory.iter().map(|(t, pid, k)| json!([t, pid, k])).collect::<Vec<_>>(),
        "notes": notes,
        "violations": violations,
    });
    Ok(Outcome {
        violations,
        summary,
        memory,
        notes,
    })
}

fn first_line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines().find(|l| l.contains(needle)).unwrap_or("")
}

/// Deletes the ring file and creates it again. The old file is kept under
/// another name (a hard link made first) so that its counters can be read
/// at the end: what is left unread in it is what the replacement lost.
fn replace_ring(
    bin_dir: &Path,
    o: &Options,
    ring: &Path,
    replaced: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let old = ring.with_file_name(format!("ring.replaced{}", replaced.len()));
    std::fs::hard_link(ring, &old).map_err(|e| format!("link {}: {e}", old.display()))?;
    let new = ring.with_file_name("ring.new");
    create_ring(bin_dir, o, &new)?;
    std::fs::remove_file(ring).map_err(|e| format!("unlink {}: {e}", ring.display()))?;
    std::fs::rename(&new, ring).map_err(|e| format!("rename {}: {e}", new.display()))?;
    replaced.push(old);
    Ok(())
}

/// Waits until the collector has read and committed everything and every
/// sink is done (its status says backlog 0 after the ring is empty), then
/// one more status write so its counters are final.
fn wait_drained(
    bin_dir: &Path,
    ring: &Path,
    sup: &mut Supervisor,
    segments: &mut Segments,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(line) = sup.check_alive() {
            return Err(line);
        }
        segments.consume(false);
        let unread = stat(bin_dir, ring)?["unread"].as_u64().unwrap_or(u64::MAX);
        let since = now_ms() * 1_000_000;
        if unread == 0 {
            // A status written after this moment with every backlog 0.
            std::thread::sleep(Duration::from_millis(1100));
            if let Some(s) = sup.status() {
                let fresh = s["updated_ns"].as_u64().unwrap_or(0) > since;
                let idle = s["sinks"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|k| k["backlog"].as_u64() == Some(0)));
                if fresh && idle {
                    sup.poll_status();
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(
                "the collector did not drain the ring within 180 s of the producers' end".into(),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A growing trend in the collector's memory: the last quarter's median
/// above twice the second quarter's and 64 MiB more.
fn memory_trend(samples: &[(f64, u32, u64)]) -> Option<String> {
    if samples.len() < 8 {
        return None;
    }
    let q = samples.len() / 4;
    let median = |s: &[(f64, u32, u64)]| {
        let mut v: Vec<u64> = s.iter().map(|x| x.2).collect();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (early, late) = (median(&samples[q..2 * q]), median(&samples[3 * q..]));
    (late > 2 * early && late > early + 64 * 1024).then(|| {
        format!("the collector's memory grows: RssAnon median {early} KiB early, {late} KiB late")
    })
}

struct Cleanup {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
