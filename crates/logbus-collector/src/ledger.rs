//! A sink queue's side of the rings' ledgers (`logbus_ring::SinkSlot::
//! ledger_add`): the records a sink holds in memory only, counted per ring,
//! slot and level in the ring's shared memory, so that a SIGKILLed collector's
//! successor counts them (`lost_in_crash`) instead of nobody.
//!
//! The queue calls these hooks (its mutex held):
//! * a job is *released* (beyond `max_backlog`: no longer pins its ring,
//!   about to be committed): [`add`], by the reader, before the commit;
//! * a group is written: [`Group::settle`] after the write returned, never
//!   before (a kill mid-write counts the group lost, though part of it may
//!   be in the sink: at most one group per sink per kill counted lost
//!   though written; the reverse would lose records silently);
//! * records are shed, refused, or given up: counted in the sink's counters
//!   at once, but their ledger entries are only taken off once those
//!   counters are published ([`Debt`], paid after each status write): a
//!   kill before that leaves them in the ledger, and the successor counts
//!   them lost instead of nobody (a group with refusals is owed whole: a
//!   kill then counts its written part lost too, the one-group slack
//!   again). A sink removed by a reload pays what it owes when it is
//!   reaped: its counters are no longer published after the reload;
//! * the collector exits with them: counted `dropped` and taken off at once.
//!
//! A job without a mark (a sink beyond the ring's `SINK_SLOTS`) has no
//! ledger: its released records are still lost uncounted at a kill (said in
//! docs/OPERATING.md).

use logbus_ring::LEVELS;

use crate::queue::{Job, Mark};

/// Records of `job` per level, as the ledger counts them.
fn counts(job: &Job) -> [u64; LEVELS] {
    std::array::from_fn(|l| job.level_count(l) as u64)
}

/// `job` was released: its records are held in memory only from now on.
pub(crate) fn add(job: &Job) {
    if let Some(m) = &job.mark {
        m.slot.ledger_add(&m.ring, &counts(job));
    }
}

/// What a group in flight owes its rings' ledgers: per job with a mark, its
/// counts, and whether they are in the ledger (released) yet.
#[derive(Default)]
pub(crate) struct Group {
    jobs: Vec<(Mark, [u64; LEVELS], bool)>,
}

impl Group {
    /// Takes `job` into the group; `released`: its records are in the ledger.
    pub(crate) fn push(&mut self, job: &Job, released: bool) {
        if let Some(m) = &job.mark {
            self.jobs.push((m.clone(), counts(job), released));
        }
    }

    /// The group, in flight, is released: its pinned jobs go into the ledger.
    pub(crate) fn release(&mut self) {
        for (m, c, released) in &mut self.jobs {
            if !*released {
                m.slot.ledger_add(&m.ring, c);
                *released = true;
            }
        }
    }

    /// The group's write returned: its released jobs leave the ledger, now
    /// (`debt: None`) or once the counters are published (`Some`).
    pub(crate) fn settle(self, debt: Option<&mut Debt>) {
        let released = self.jobs.into_iter().filter(|j| j.2);
        match debt {
            Some(d) => d.0.extend(released.map(|(m, c, _)| (m, c))),
            None => released.for_each(|(m, c, _)| m.slot.ledger_sub(&m.ring, &c)),
        }
    }

    /// Takes its released jobs off the ledgers at once (the collector exits
    /// and counts them dropped).
    pub(crate) fn forget(self) {
        self.settle(None);
    }
}

/// Ledger entries of records counted (shed, refused, given up) but not yet
/// published: taken off once the status file has been written.
#[derive(Default)]
pub(crate) struct Debt(Vec<(Mark, [u64; LEVELS])>);

impl Debt {
    /// `n` records of level `l` of `job` (released) were counted.
    pub(crate) fn owe(&mut self, job: &Job, l: usize, n: u64) {
        if let Some(m) = &job.mark {
            let mut c = [0; LEVELS];
            c[l] = n;
            self.0.push((m.clone(), c));
        }
    }

    /// The counters are published: takes the entries off the ledgers.
    pub(crate) fn pay(&mut self) {
        for (m, c) in self.0.drain(..) {
            m.slot.ledger_sub(&m.ring, &c);
        }
    }
}

/// `job` (released) leaves the ledger now (the collector is exiting and
/// counts it dropped).
pub(crate) fn sub(job: &Job) {
    if let Some(m) = &job.mark {
        m.slot.ledger_sub(&m.ring, &counts(job));
    }
}
