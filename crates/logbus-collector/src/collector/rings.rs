//! Which rings are read: a ring added (its consumer role taken), pinned
//! under a second name, the pins a killed collector left adopted, the ring
//! directory scanned, a collector of one ring's path followed, and rings
//! being left let go once drained (see "Rings" in `mod.rs` and
//! `pin.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use logbus_ring::{Consumer, ConsumerError, OpenError, Ring, SinkMarks};

use super::source::{Leaving, Source};
use super::Collector;
use crate::notice::Notice;
use crate::resolver::Resolver;

impl Collector {
    /// Takes the consumer role of `ring` and reads it from now on.
    pub(super) fn add_source(&mut self, ring: Ring) -> Result<(), ConsumerError> {
        let consumer = Consumer::acquire(&ring)?;
        // Before any sink of ours touches the ledger.
        let lost = SinkMarks::lost(&consumer)
            .into_iter()
            .map(|l| (l, false))
            .collect();
        let key = self.next_source;
        self.next_source += 1;
        let mut src = Source {
            key,
            resolver: Resolver::new(&ring, key),
            origin: ring.path().to_path_buf(),
            age: key + 1,
            pin: None,
            held: None,
            read_at: std::time::Instant::now(),
            ring,
            consumer,
            commit_end: 0,
            dirty: false,
            places: HashMap::new(),
            leaving: None,
            repairs_said: (0, None),
            lost,
        };
        let names: Vec<&str> = self.config.sinks.iter().map(|s| s.name.as_str()).collect();
        src.place_sinks(&names);
        self.sources.push(src);
        self.count_lost_in_crash();
        self.publish_rings();
        Ok(())
    }

    /// Pins the ring just added (a collector of one ring; see `pin.rs`).
    /// A ring that cannot be pinned is read all the same: one line says why
    /// a collector killed while it is being replaced would strand its records.
    pub(super) fn pin_newest(&mut self) {
        let (Some(path), Some(src)) = (self.follow.as_ref(), self.sources.last_mut()) else {
            return;
        };
        match crate::pin::pin(path, &src.ring) {
            Ok(pin) => src.pin = Some(pin),
            Err(e) => (self.notify)(Notice::PinFailed {
                path: path.clone(),
                error: e.to_string(),
            }),
        }
    }

    /// At start: reads every ring a killed collector left pinned beside the
    /// path (see `pin.rs`) as a ring being left: drained until no process
    /// writes it, then let go and unpinned. Its records go out before the
    /// current ring's.
    pub(super) fn adopt_pins(&mut self) {
        let Some(path) = self.follow.clone() else {
            return;
        };
        for p in crate::pin::pins(&path) {
            if self.sources.iter().any(|s| s.pin.as_ref() == Some(&p)) {
                continue; // the current ring's own
            }
            let added = Ring::open_existing(&p)
                .map_err(|e| e.to_string())
                .and_then(|ring| self.add_source(ring).map_err(|e| e.to_string()));
            match added {
                Ok(()) => {
                    let src = self.sources.last_mut().expect("just added");
                    src.origin = path.clone();
                    src.age = 0;
                    src.pin = Some(p.clone());
                    src.leaving = Some(Leaving::Replaced);
                    src.ring.retire();
                    (self.notify)(Notice::PinnedRingFound { pin: p });
                }
                Err(problem) => (self.notify)(Notice::PinRefused { pin: p, problem }),
            }
        }
    }

    fn publish_rings(&self) {
        *self.rings.lock().unwrap_or_else(|p| p.into_inner()) =
            self.sources.iter().map(|s| s.ring.clone()).collect();
    }

    /// The rings read now (updated as rings come and go), for a metrics
    /// endpoint.
    pub fn rings(&self) -> Arc<std::sync::Mutex<Vec<Ring>>> {
        self.rings.clone()
    }

    /// Looks for new rings in the ring directory, and at the health of those
    /// read: one replaced or removed is drained and let go, one truncated is
    /// let go.
    pub(super) fn scan_dir(&mut self) {
        for src in &mut self.sources {
            if src.leaving.is_some() {
                continue;
            }
            let (leaving, why) = if src.ring.faulted() || src.ring.check_size().is_err() {
                (
                    Leaving::Truncated,
                    "the ring file was truncated under the collector; \
                     no longer read (records not yet read are lost)",
                )
            } else if !src.ring.is_current() {
                (
                    Leaving::Replaced,
                    "the path now names another file, or none; reading the old ring until it is \
                     drained and no process writes it any more, then letting it go",
                )
            } else {
                continue;
            };
            if leaving == Leaving::Replaced {
                // No new writer in it from now on: a process that opened the
                // old file makes its next writer in the new ring.
                src.ring.retire();
            }
            src.leaving = Some(leaving);
            (self.notify)(Notice::RingLeft {
                path: src.ring.path().to_path_buf(),
                why,
            });
        }
        self.follow_path();
        let Some(mut dir) = self.dir.take() else {
            return;
        };
        let read: Vec<(u64, u64)> = self.sources.iter().map(|s| s.ring.file_id()).collect();
        let notify = self.notify.clone();
        dir.scan(&read, &*notify, |ring| {
            self.add_source(ring).map_err(|e| e.to_string())
        });
        self.dir = Some(dir);
    }

    /// A collector of one ring whose ring is being left (or gone): reads the
    /// ring its path names now, once there is one.
    fn follow_path(&mut self) {
        let Some(path) = self.follow.clone() else {
            return;
        };
        if self.sources.iter().any(|s| s.leaving.is_none()) {
            return;
        }
        let problem = match Ring::open_existing(&path) {
            // The file being left (a truncated one still at the path): wait
            // for another.
            Ok(ring)
                if self
                    .sources
                    .iter()
                    .any(|s| s.ring.file_id() == ring.file_id()) =>
            {
                None
            }
            Ok(ring) => {
                let (blocks, block_size) = (ring.geometry().blocks, ring.geometry().block_size);
                match self.add_source(ring) {
                    Ok(()) => {
                        self.pin_newest();
                        self.follow_said = None;
                        (self.notify)(Notice::RingFollowed {
                            path: path.clone(),
                            blocks,
                            block_size,
                        });
                        None
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
            Err(OpenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                None
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            if self.follow_said.as_deref() != Some(problem.as_str()) {
                (self.notify)(Notice::FollowWaiting {
                    problem: problem.clone(),
                });
                self.follow_said = Some(problem);
            }
        }
    }

    /// Lets go of the rings being left once they are drained and committed
    /// (a replaced one: and no process has a writer of it any more).
    pub(super) fn drop_left(&mut self) {
        let pending = &self.pending;
        let dir = &mut self.dir;
        let notify = &self.notify;
        let mut gone = false;
        self.sources.retain_mut(|src| {
            let done = match src.leaving {
                None => return true,
                Some(Leaving::Truncated) => true,
                // Retired (when it was found replaced), then drained, then
                // the locks: a writer that let go after our look wrote
                // nothing after it (it drops its writer, and with it the
                // lock, only once its last record is stamped), so one more
                // look would find it; the next turn looks again. A process
                // that makes a writer only after our look sees the ring
                // retired and writes in the new one (`Ring::retire`).
                Some(Leaving::Replaced) => {
                    src.consumer.is_drained()
                        && !src.ring.writers_alive()
                        && src.consumer.is_drained()
                }
            };
            let key = src.key;
            if !done || src.held.is_some() || pending.iter().any(|p| p.chunk.source == key) {
                return true;
            }
            if src.leaving == Some(Leaving::Replaced) {
                notify(Notice::RingLeft {
                    path: src.ring.path().to_path_buf(),
                    why: "the replaced ring is drained and no process writes it any more; let go",
                });
            }
            if let Some(pin) = &src.pin {
                crate::pin::unpin(pin, src.ring.file_id());
            }
            if src.leaving == Some(Leaving::Truncated) {
                if let Some(dir) = dir.as_mut() {
                    dir.let_go(src.ring.path(), src.ring.file_id());
                }
            }
            gone = true;
            false
        });
        if gone {
            self.publish_rings();
        }
    }
}
