//! The collector under test: started, SIGKILLed and restarted, SIGHUPed,
//! stopped at the end; its stdout read by a thread that pauses on request
//! (a reader that stops reading), its status file followed for the sinks'
//! counters, its anonymous memory sampled.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::checker::{level_of_name, SinkCheck, LEVELS};

/// A sink's counters of records it did not deliver, per level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Undelivered {
    /// Shed (`dropped` in the status file).
    pub shed: [u64; LEVELS],
    /// Refused for good by the destination.
    pub rejected: [u64; LEVELS],
    /// Held in memory only by a killed collector, counted by the next one.
    pub lost_in_crash: [u64; LEVELS],
}

impl Undelivered {
    fn add(&mut self, o: &Undelivered) {
        for l in 0..LEVELS {
            self.shed[l] += o.shed[l];
            self.rejected[l] += o.rejected[l];
            self.lost_in_crash[l] += o.lost_in_crash[l];
        }
    }

    fn any_below(&self, o: &Undelivered) -> bool {
        (0..LEVELS).any(|l| {
            self.shed[l] < o.shed[l]
                || self.rejected[l] < o.rejected[l]
                || self.lost_in_crash[l] < o.lost_in_crash[l]
        })
    }
}

/// One collector process's last counters, and those of its earlier runs
/// (the collector starts a new run, with fresh counters, when it follows a
/// replaced ring).
#[derive(Default)]
struct PidCounters {
    banked: HashMap<String, Undelivered>,
    last: HashMap<String, Undelivered>,
}

/// A memory sample.
#[derive(Clone, Copy, Debug)]
pub struct MemSample {
    /// Seconds since the run started.
    pub t: f64,
    /// The collector's pid.
    pub pid: u32,
    /// Its RssAnon, KiB.
    pub rss_anon_kib: u64,
}

struct Running {
    child: Child,
    stderr: PathBuf,
    reader: JoinHandle<()>,
}

/// The collector and what is known about it.
pub struct Supervisor {
    bin: PathBuf,
    ring: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    running: Option<Running>,
    /// Incarnations started.
    pub started: u64,
    /// Incarnations SIGKILLed.
    pub kills: u64,
    /// Every incarnation's stderr file.
    pub stderrs: Vec<PathBuf>,
    /// Exit statuses of incarnations that were not SIGKILLed.
    pub exits: Vec<ExitStatus>,
    /// What the stdout sink delivered.
    pub stdout: Arc<Mutex<SinkCheck>>,
    /// Set: the stdout reader stops reading.
    pub pause: Arc<AtomicBool>,
    counters: HashMap<u32, PidCounters>,
    /// The stdout sink's record count at each kill.
    pub kill_marks: Vec<u64>,
    /// Memory samples.
    pub memory: Vec<MemSample>,
    t0: Instant,
}

/// Reads the collector's stdout into the check, pausing while `pause` is set.
fn read_stdout(out: ChildStdout, check: Arc<Mutex<SinkCheck>>, pause: Arc<AtomicBool>) {
    let mut r = BufReader::with_capacity(1 << 16, out);
    let mut line = Vec::new();
    loop {
        // Relaxed: a flag polled; nothing else is published through it.
        while pause.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut c = check.lock().unwrap_or_else(|e| e.into_inner());
        if line.last() != Some(&b'\n') {
            // The end of the pipe without a newline: the collector was
            // killed in the middle of this line (its successor writes the
            // record again).
            c.cut += 1;
            return;
        }
        match std::str::from_utf8(&line[..line.len() - 1]) {
            Ok(s) => c.json_line(s),
            Err(_) => {
                c.broken += 1;
            }
        }
    }
}

impl Supervisor {
    /// A supervisor of `bin` on `ring` with `config`; files go to `dir`.
    pub fn new(bin: PathBuf, ring: &Path, config: &Path, dir: &Path) -> Supervisor {
        Supervisor {
            bin,
            ring: ring.to_path_buf(),
            config: config.to_path_buf(),
            dir: dir.to_path_buf(),
            running: None,
            started: 0,
            kills: 0,
            stderrs: Vec::new(),
            exits: Vec::new(),
            stdout: Arc::new(Mutex::new(SinkCheck::new("stdout"))),
            pause: Arc::new(AtomicBool::new(false)),
            counters: HashMap::new(),
            memory: Vec::new(),
            kill_marks: Vec::new(),
            t0: Instant::now(),
        }
    }

    /// The running collector's pid.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    /// Starts a collector and waits for its startup line.
    pub fn start(&mut self) -> Result<(), String> {
        assert!(self.running.is_none(), "one collector at a time");
        self.started += 1;
        let stderr = self.dir.join(format!("collector-{}.stderr", self.started));
        let mut child = Command::new(&self.bin)
            .arg("--ring")
            .arg(&self.ring)
            .arg("--config")
            .arg(&self.config)
            .env_remove("LOGBUS_RING")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let out = child.stdout.take().expect("piped stdout");
        let (check, pause) = (self.stdout.clone(), self.pause.clone());
        let reader = std::thread::spawn(move || read_stdout(out, check, pause));
        self.stderrs.push(stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&stderr).unwrap_or_default();
            if text.contains("consuming") {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                return Err(format!(
                    "the collector exited at start ({st}): {}",
                    text.trim()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no startup line from the collector in 30 s: {}",
                    text.trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.running = Some(Running {
            child,
            stderr,
            reader,
        });
        Ok(())
    }

    /// Sends `sig` to the running collector.
    pub fn signal(&self, sig: i32) {
        if let Some(r) = &self.running {
            // SAFETY: kill(2) on our own unreaped child has no memory-safety
            // preconditions.
            unsafe { libc::kill(r.child.id() as i32, sig) };
        }
    }

    /// SIGKILL, reap, and start the next one. The killed one's stdout is
    /// read to its end first (a pause in progress ends), so that the sink's
    /// output stays one stream in order.
    pub fn kill_and_restart(&mut self) -> Result<(), String> {
        self.poll_status();
        if let Some(mut r) = self.running.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
            // Its last status file is final now (written whole, by rename):
            // counters it published after the look above count too. (Its
            // ledger debts are paid only after a status write, so what it
            // counted and never published is counted by the next one.)
            self.poll_status();
            self.pause.store(false, Ordering::Relaxed);
            let _ = r.reader.join();
            self.kills += 1;
            let n = self
                .stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .records;
            self.kill_marks.push(n);
        }
        self.start()
    }

    /// Whether the running collector has exited on its own (a crash);
    /// restarts it then and says so.
    pub fn check_alive(&mut self) -> Option<String> {
        let r = self.running.as_mut()?;
        let st = r.child.try_wait().ok().flatten()?;
        let r = self.running.take().expect("running");
        self.pause.store(false, Ordering::Relaxed);
        let _ = r.reader.join();
        self.exits.push(st);
        let text = std::fs::read_to_string(&r.stderr).unwrap_or_default();
        let line = format!(
            "the collector exited on its own ({st}); its stderr ends: {}",
            text.lines().last().unwrap_or("")
        );
        let _ = self.start();
        Some(line)
    }

    /// SIGTERM and wait (up to `limit`) for the exit; the status.
    pub fn stop(&mut self, limit: Duration) -> Result<ExitStatus, String> {
        self.poll_status();
        let Some(mut r) = self.running.take() else {
            return Err("no collector running".into());
        };
        // The reader must not be paused, or the collector cannot flush stdout.
        self.pause.store(false, Ordering::Relaxed);
        // SAFETY: as in `signal`.
        unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        let st = loop {
            if let Ok(Some(st)) = r.child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = r.child.kill();
                let _ = r.child.wait();
                let _ = r.reader.join();
                return Err(format!(
                    "the collector did not exit within {limit:?} of SIGTERM"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = r.reader.join();
        self.exits.push(st);
        Ok(st)
    }

    /// The status file as it is now, if it parses.
    pub fn status(&self) -> Option<serde_json::Value> {
        let p = logbus_collector::status::status_path(&self.ring);
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    }

    /// Reads the status file and banks its per-sink counters.
    pub fn poll_status(&mut self) {
        let Some(doc) = self.status() else { return };
        let Some(pid) = doc["pid"].as_u64() else {
            return;
        };
        let mut now = HashMap::new();
        for s in doc["sinks"].as_array().into_iter().flatten() {
            let mut u = Undelivered::default();
            let per_level = |key: &str, out: &mut [u64; LEVELS]| {
                if let Some(m) = s[key].as_object() {
                    for (name, n) in m {
                        if let Some(l) = level_of_name(name) {
                            out[l] = n.as_u64().unwrap_or(0);
                        }
                    }
                }
            };
            per_level("dropped", &mut u.shed);
            per_level("rejected", &mut u.rejected);
            per_level("lost_in_crash", &mut u.lost_in_crash);
            now.insert(s["name"].as_str().unwrap_or("").to_string(), u);
        }
        let c = self.counters.entry(pid as u32).or_default();
        let reset = c
            .last
            .iter()
            .any(|(k, old)| now.get(k).is_some_and(|n| n.any_below(old)));
        if reset {
            let last = std::mem::take(&mut c.last);
            for (k, u) in last {
                c.banked.entry(k).or_default().add(&u);
            }
        }
        for (k, u) in now {
            c.last.insert(k, u);
        }
    }

    /// Every collector's counters of sink `name`, summed.
    pub fn undelivered(&self, name: &str) -> Undelivered {
        let mut total = Undelivered::default();
        for c in self.counters.values() {
            for m in [&c.banked, &c.last] {
                if let Some(u) = m.get(name) {
                    total.add(u);
                }
            }
        }
        total
    }

    /// Samples the running collector's RssAnon.
    pub fn sample_memory(&mut self) {
        let Some(pid) = self.pid() else { return };
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = text
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        if let Some(kib) = kib {
            self.memory.push(MemSample {
                t: self.t0.elapsed().as_secs_f64(),
                pid,
                rss_anon_kib: kib,
            });
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            self.pause.store(false, Ordering::Relaxed);
            let _ = r.child.kill();
            let _ = r.child.wait();
            let _ = r.reader.join();
        }
    }
}
