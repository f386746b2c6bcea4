//! What the collector tells its operator. The library prints nothing: it
//! hands each [`Notice`] to the function its user gave
//! ([`crate::Collector::new`]), and the binary decides where it goes (the
//! `logbus-collector` program writes one line to stderr for each).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One event worth a line in the operator's log. `Display` is that line,
/// without the program's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A sink's write (or reopen) failed; `suppressed` more failures since
    /// its last notice (at most one every 10 s per sink).
    SinkFailed {
        /// The sink.
        sink: String,
        /// What failed, one line.
        error: String,
        /// Failures not reported since the last notice.
        suppressed: u64,
        /// What the sink does next: retries, or (refused for good) counts the
        /// records as rejected and moves on.
        next: &'static str,
    },
    /// A sink whose writes failed wrote again (said once per outage).
    SinkRecovered {
        /// The sink.
        sink: String,
        /// Failed attempts since the first failure.
        failures: u64,
        /// Since the first failure.
        after: std::time::Duration,
    },
    /// A sink shed records (its backlog passed its memory bound).
    SinkShed {
        /// The sink.
        sink: String,
        /// Records shed since the last notice.
        now: u64,
        /// Records shed in all.
        total: u64,
    },
    /// An earlier collector of a ring died (SIGKILL, crash) while a sink
    /// held records of it in memory only: found in the ring's ledger, counted
    /// `lost_in_crash` (when the sink is configured here).
    LostInCrash {
        /// The ring file.
        path: PathBuf,
        /// The sink, or `None` when no sink here has that name (then only
        /// this line counts them).
        sink: Option<String>,
        /// The slot's sink name hash (names the sink when `sink` is `None`).
        hash: u64,
        /// The records, over the levels.
        records: u64,
    },
    /// A sink's output is gone for good (stdout closed): the collector stops.
    OutputClosed {
        /// The sink.
        sink: String,
    },
    /// The status file could not be written (reported once).
    StatusUnwritable {
        /// The status file.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// SIGHUP without a configuration file: files are reopened.
    ReopenOnly,
    /// A reload failed; the running configuration stays.
    ReloadFailed {
        /// Why, one line.
        error: String,
    },
    /// A reload named another ring; a running collector keeps its ring.
    RingPathIgnored,
    /// A ring of the `--ring-dir` directory is being read from now on.
    RingAdded {
        /// The ring file.
        path: PathBuf,
        /// Its owner: the `uid` of its records.
        uid: u32,
    },
    /// A file of the `--ring-dir` directory is not read (said once per file).
    RingRefused {
        /// The file.
        path: PathBuf,
        /// Why, one line naming the file.
        problem: String,
    },
    /// More files of the `--ring-dir` directory were refused in one scan than
    /// are worth a line each (each is said no more after).
    RingsRefused {
        /// The directory.
        dir: PathBuf,
        /// Files refused without a line of their own.
        more: usize,
    },
    /// A ring of the `--ring-dir` directory is no longer read.
    RingLeft {
        /// The ring file.
        path: PathBuf,
        /// Why, and what became of its records.
        why: &'static str,
    },
    /// A ring's shared state was impossible (overwritten by a process that
    /// may write it) and its consumer set it right (at most one line per
    /// 10 s per ring).
    RingRepaired {
        /// The ring file.
        path: PathBuf,
        /// The first repair since the last notice, one line.
        repair: String,
        /// Further repairs since the last notice.
        more: u64,
    },
    /// A ring read by a collector of one ring cannot be kept reachable under
    /// a second name (`pin.rs`): if it is replaced while records are unread in
    /// it and the collector is killed, those records are lost.
    PinFailed {
        /// The ring path.
        path: PathBuf,
        /// Why, one line.
        error: String,
    },
    /// A ring a killed collector left pinned is read (drained until no
    /// process writes it, then let go and unpinned).
    PinnedRingFound {
        /// The pin.
        pin: PathBuf,
    },
    /// A file under a pin's name is not read (not a ring this collector may
    /// read, or another collector reads it).
    PinRefused {
        /// The file.
        pin: PathBuf,
        /// Why, one line.
        problem: String,
    },
    /// A collector of one ring reads the new ring its path names (the old one
    /// is drained meanwhile).
    RingFollowed {
        /// The ring path.
        path: PathBuf,
        /// The new ring's block count and block size.
        blocks: u32,
        /// Bytes per block.
        block_size: u32,
    },
    /// The ring path of a collector of one ring names nothing it can read yet
    /// (said once per reason).
    FollowWaiting {
        /// Why, one line naming the file.
        problem: String,
    },
    /// The `--ring-dir` directory holds more rings than one collector reads.
    TooManyRings {
        /// The directory.
        dir: PathBuf,
        /// Rings read at most.
        max: usize,
    },
    /// A reload succeeded.
    Reloaded {
        /// The configuration file.
        path: PathBuf,
        /// Sinks now running.
        kept: usize,
        /// Sinks replaced or removed.
        replaced: usize,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::SinkFailed { .. }
            | Notice::SinkRecovered { .. }
            | Notice::SinkShed { .. }
            | Notice::LostInCrash { .. }
            | Notice::OutputClosed { .. } => self.fmt_sink(f),
            Notice::RingAdded { .. }
            | Notice::RingRefused { .. }
            | Notice::RingsRefused { .. }
            | Notice::RingLeft { .. }
            | Notice::RingFollowed { .. }
            | Notice::FollowWaiting { .. }
            | Notice::PinFailed { .. }
            | Notice::PinnedRingFound { .. }
            | Notice::PinRefused { .. }
            | Notice::RingRepaired { .. }
            | Notice::TooManyRings { .. } => self.fmt_ring(f),
            Notice::StatusUnwritable { .. }
            | Notice::ReopenOnly
            | Notice::ReloadFailed { .. }
            | Notice::RingPathIgnored
            | Notice::Reloaded { .. } => self.fmt_control(f),
        }
    }
}

impl Notice {
    /// A sink's failures, recoveries and losses.
    fn fmt_sink(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::SinkFailed {
                sink,
                error,
                suppressed,
                next,
            } => {
                write!(f, "sink \"{sink}\": {}", error.replace('\n', " "))?;
                if *suppressed > 0 {
                    write!(f, " ({suppressed} more errors since the last report)")?;
                }
                write!(f, "; {next}")
            }
            Notice::SinkRecovered {
                sink,
                failures,
                after,
            } => write!(
                f,
                "sink \"{sink}\": writing again after {failures} failed attempts in {:.1} s",
                after.as_secs_f64()
            ),
            Notice::SinkShed { sink, now, total } => write!(
                f,
                "sink \"{sink}\" shed {now} records (its backlog passed its queue bound; {total} in all)"
            ),
            Notice::LostInCrash {
                path,
                sink: Some(sink),
                records,
                ..
            } => write!(
                f,
                "sink \"{sink}\": {records} records of {} were lost with an earlier collector that \
                 died holding them in memory only; counted lost_in_crash",
                path.display()
            ),
            Notice::LostInCrash {
                path,
                sink: None,
                hash,
                records,
            } => write!(
                f,
                "{records} records of {} were lost with an earlier collector that died holding them \
                 in memory only, for a sink no longer configured (name hash {hash:#018x}); \
                 counted by this line only",
                path.display()
            ),
            Notice::OutputClosed { sink } => {
                write!(f, "sink \"{sink}\": output closed; shutting down")
            }
            // Dispatched by `fmt`, which matches every notice.
            _ => unreachable!("fmt_sink: dispatched by fmt"),
        }
    }

    /// The rings read, refused, left, followed and repaired.
    fn fmt_ring(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::RingAdded { path, uid } => {
                write!(f, "reading ring {} (owner uid {uid})", path.display())
            }
            Notice::RingRefused { problem, .. } => write!(f, "{problem}; not read"),
            Notice::RingsRefused { dir, more } => write!(
                f,
                "{}: {more} more files are not rings this collector may read; not read",
                dir.display()
            ),
            Notice::RingLeft { path, why } => write!(f, "{}: {why}", path.display()),
            Notice::RingFollowed {
                path,
                blocks,
                block_size,
            } => write!(
                f,
                "following the new ring at {} ({blocks} blocks of {} KiB)",
                path.display(),
                block_size / 1024
            ),
            Notice::FollowWaiting { problem } => write!(f, "{problem}; still waiting"),
            Notice::PinFailed { path, error } => write!(
                f,
                "{}: cannot keep the ring reachable under a second name ({error}); \
                 if it is replaced and this collector killed before the old ring is drained, \
                 the records left in it are lost",
                path.display()
            ),
            Notice::PinnedRingFound { pin } => write!(
                f,
                "{}: a replaced ring a previous collector did not finish; reading it until it is \
                 drained and no process writes it any more",
                pin.display()
            ),
            Notice::PinRefused { pin, problem } => write!(
                f,
                "{}: not read as a replaced ring: {problem}",
                pin.display()
            ),
            Notice::RingRepaired { path, repair, more } => {
                write!(f, "{}: {repair}", path.display())?;
                if *more > 0 {
                    write!(f, " ({more} more repairs of this ring since the last line)")?;
                }
                Ok(())
            }
            Notice::TooManyRings { dir, max } => write!(
                f,
                "{}: more than {max} rings; the others are not read until some go",
                dir.display()
            ),
            // Dispatched by `fmt`, which matches every notice.
            _ => unreachable!("fmt_ring: dispatched by fmt"),
        }
    }

    /// Signals, reloads and the status file.
    fn fmt_control(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::StatusUnwritable { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
            Notice::ReopenOnly => write!(f, "SIGHUP: no --config file; reopening files"),
            Notice::ReloadFailed { error } => {
                write!(f, "reload failed, keeping the running configuration: {error}")
            }
            Notice::RingPathIgnored => write!(
                f,
                "reload: [ring] path changed; a running collector keeps its ring (restart to switch)"
            ),
            Notice::Reloaded {
                path,
                kept,
                replaced,
            } => write!(
                f,
                "reloaded {}: {kept} sinks ({replaced} replaced or removed)",
                path.display()
            ),
            // Dispatched by `fmt`, which matches every notice.
            _ => unreachable!("fmt_control: dispatched by fmt"),
        }
    }
}

/// Where notices go: shared by the reader and every sink thread.
pub type Notify = Arc<dyn Fn(Notice) + Send + Sync>;
