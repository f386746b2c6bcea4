//! The end of a run: every record accounted for, from the producers' own
//! books and the ring's and the collector's counters.
//!
//! Per level `L`, with `started` and `in_flight` from the producers' ledgers
//! (a record in flight when its producer was killed may or may not have
//! reached the ring) and the counters of every ring the run used (the
//! current one and each replaced one):
//!
//! * `started - in_flight <= emitted <= started`, where the ring's `emitted`
//!   is `delivered + dropped + evicted + torn + unread`;
//! * `torn <= in_flight` (only a killed producer tears a record);
//! * `unread = 0` in every ring, the replaced ones included (a record left in
//!   a replaced ring is counted nowhere a user looks), `invalid = 0`;
//! * for every sink: `distinct + shed + rejected + lost_in_crash =
//!   delivered` (the ring's committed records; every sink takes every
//!   level), summed over the collectors, with a slack that only counts too
//!   much, never too little: `distinct + shed + rejected <= delivered <=
//!   distinct + shed + rejected + lost_in_crash`, and over the levels the
//!   excess is at most [`CRASH_SLACK`] per collector kill (`lost_in_crash`
//!   may count the group a sink was writing at the kill, and what the
//!   reader had released but not yet committed; see the ring's
//!   `sink_ledger.rs`).
//!
//! And per sink: no record out of order, no broken line, no foreign record,
//! no record of a thread beyond what that thread started; duplicate groups
//! at most one per collector kill (plus one per stop of the OTLP endpoint,
//! for the OTLP sink: an export the endpoint took but could not answer is
//! sent again, as OTLP intends); lines cut by a kill at most one per kill.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::checker::{SinkCheck, LEVELS};
use super::ledger::ThreadBooks;
use super::supervisor::Undelivered;

/// Records per sink per collector kill that `lost_in_crash` may count
/// although the sink has them (or gets them again from the next
/// collector): the group being written (4,096 records, or the one chunk a
/// sink takes whole, at most a poll: 16,384) and what the reader released
/// in its last step and had not committed (about a poll).
pub const CRASH_SLACK: u64 = 2 * 16_384;

/// Level names, TRACE .. FATAL.
pub const LEVEL_NAMES: [&str; LEVELS] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// A producer's end state.
pub struct ProducerBooks {
    /// Its name.
    pub name: String,
    /// Its kind (letter).
    pub kind: char,
    /// SIGKILLed by the harness.
    pub killed: bool,
    /// Exited 0 by itself.
    pub clean_exit: bool,
    /// Per thread.
    pub threads: Vec<ThreadBooks>,
}

/// A sink's end state.
pub struct SinkBooks<'a> {
    /// What it delivered.
    pub check: &'a SinkCheck,
    /// What its collectors counted as not delivered.
    pub undelivered: Undelivered,
    /// Duplicate groups allowed beyond one per collector kill.
    pub extra_groups: u64,
}

/// The ring counters of one level, summed over the rings.
#[derive(Clone, Copy, Debug, Default)]
pub struct RingLevel {
    /// `emitted`.
    pub emitted: u64,
    /// `delivered`.
    pub delivered: u64,
    /// `dropped`.
    pub dropped: u64,
    /// `evicted`.
    pub evicted: u64,
    /// `torn`.
    pub torn: u64,
    /// `unread`.
    pub unread: u64,
}

/// Reads one level's counters from `logbus stat --json`.
pub fn ring_level(stat: &Value, level: usize) -> RingLevel {
    let l = &stat["levels"][LEVEL_NAMES[level]];
    let n = |k: &str| l[k].as_u64().unwrap_or(0);
    RingLevel {
        emitted: n("emitted"),
        delivered: n("delivered"),
        dropped: n("dropped"),
        evicted: n("evicted"),
        torn: n("torn"),
        unread: n("unread"),
    }
}

/// Checks the books; returns the violations and the summary document.
pub fn check(
    producers: &[ProducerBooks],
    rings: &[(String, Value)],
    sinks: &[SinkBooks<'_>],
    kills: u64,
) -> (Vec<String>, Value) {
    let mut v = Vec::new();
    let mut started = [0u64; LEVELS];
    let mut in_flight = [0u64; LEVELS];
    let mut thread_started: HashMap<(String, u32), u64> = HashMap::new();
    let mut per_producer = Vec::new();
    for p in producers {
        let mut mine = [0u64; LEVELS];
        for (t, b) in p.threads.iter().enumerate() {
            for l in 0..LEVELS {
                started[l] += b.per_level[l];
                mine[l] += b.per_level[l];
            }
            if let Some(l) = b.in_flight_level {
                if p.clean_exit {
                    v.push(format!(
                        "producer {} thread {t} exited with a record in flight (started {}, done {})",
                        p.name, b.started, b.done
                    ));
                }
                in_flight[l] += 1;
            }
            thread_started.insert((p.name.clone(), t as u32), b.started);
        }
        let delivered: serde_json::Map<String, Value> = sinks
            .iter()
            .map(|s| {
                (
                    s.check.name.clone(),
                    json!(s
                        .check
                        .per_producer
                        .get(&p.name)
                        .copied()
                        .unwrap_or_default()),
                )
            })
            .collect();
        per_producer.push(json!({
            "name": p.name, "kind": p.kind.to_string(), "killed": p.killed,
            "emitted": mine, "delivered": delivered,
        }));
    }
    let mut ring = [RingLevel::default(); LEVELS];
    for (path, stat) in rings {
        if stat["invalid"].as_u64().unwrap_or(0) != 0 {
            v.push(format!("{path}: {} invalid records", stat["invalid"]));
        }
        for (l, acc) in ring.iter_mut().enumerate() {
            let r = ring_level(stat, l);
            if r.unread != 0 {
                v.push(format!(
                    "{path}: {} {} records left unread at the end (counted nowhere the collector shows)",
                    r.unread, LEVEL_NAMES[l]
                ));
            }
            acc.emitted += r.emitted;
            acc.delivered += r.delivered;
            acc.dropped += r.dropped;
            acc.evicted += r.evicted;
            acc.torn += r.torn;
            acc.unread += r.unread;
        }
    }
    let mut levels = serde_json::Map::new();
    let mut unbalanced = std::collections::HashSet::new();
    let mut excess: HashMap<String, u64> = HashMap::new();
    for l in 0..LEVELS {
        let r = ring[l];
        let name = LEVEL_NAMES[l];
        let low = started[l] - in_flight[l];
        if r.emitted < low || r.emitted > started[l] {
            v.push(format!(
                "{name}: the producers started {} records ({} in flight at a kill), the rings account for {} \
                 (delivered {} + dropped {} + evicted {} + torn {} + unread {})",
                started[l], in_flight[l], r.emitted, r.delivered, r.dropped, r.evicted, r.torn, r.unread
            ));
        }
        if r.torn > in_flight[l] {
            v.push(format!(
                "{name}: {} torn records but only {} in flight at a producer's kill",
                r.torn, in_flight[l]
            ));
        }
        let mut per_sink = serde_json::Map::new();
        for s in sinks {
            let d = s.check.distinct[l];
            let u = &s.undelivered;
            let (shed, rej, lost) = (u.shed[l], u.rejected[l], u.lost_in_crash[l]);
            if d + shed + rej > r.delivered || d + shed + rej + lost < r.delivered {
                unbalanced.insert(s.check.name.clone());
                v.push(format!(
                    "{name}: sink {} has {d} distinct records + {shed} shed + {rej} rejected \
                     (+ {lost} lost_in_crash) = {}, but the collectors committed {}",
                    s.check.name,
                    d + shed + rej + lost,
                    r.delivered
                ));
            }
            *excess.entry(s.check.name.clone()).or_default() +=
                (d + shed + rej + lost).saturating_sub(r.delivered);
            per_sink.insert(
                s.check.name.clone(),
                json!({"distinct": d, "shed": shed, "rejected": rej, "lost_in_crash": lost}),
            );
        }
        levels.insert(
            name.into(),
            json!({
                "started": started[l], "in_flight_at_kill": in_flight[l], "emitted": r.emitted,
                "delivered": r.delivered, "dropped": r.dropped, "evicted": r.evicted,
                "torn": r.torn, "unread": r.unread, "sinks": per_sink,
            }),
        );
    }
    // Where sinks disagree, the records one has and another lacks.
    for a in sinks {
        for b in sinks.iter().filter(|b| b.check.name != a.check.name) {
            if unbalanced.contains(&b.check.name) {
                let lack = a.check.lacking_in(b.check, 5);
                if !lack.is_empty() {
                    v.push(format!(
                        "sink {} lacks records sink {} has: {}",
                        b.check.name,
                        a.check.name,
                        lack.join(", ")
                    ));
                }
            }
        }
    }
    let mut sink_docs = serde_json::Map::new();
    for s in sinks {
        let c = s.check;
        let n = &c.name;
        let over = excess.get(n).copied().unwrap_or(0);
        if over > kills * CRASH_SLACK {
            v.push(format!(
                "sink {n}: {over} records counted lost_in_crash though delivered, more than \
                 {CRASH_SLACK} for each of the {kills} collector kills"
            ));
        }
        if c.out_of_order > 0 {
            v.push(format!("sink {n}: {} records out of order", c.out_of_order));
        }
        if c.broken > 0 {
            v.push(format!("sink {n}: {} broken lines or messages", c.broken));
        }
        if c.foreign > 0 {
            v.push(format!(
                "sink {n}: {} records not from a chaos producer",
                c.foreign
            ));
        }
        if c.cut > kills {
            v.push(format!(
                "sink {n}: {} lines cut, more than the {kills} collector kills",
                c.cut
            ));
        }
        let allowed = kills + s.extra_groups;
        if c.duplicate_groups > allowed {
            v.push(format!(
                "sink {n}: {} duplicate groups ({} records), more than the {allowed} allowed; they start at {}",
                c.duplicate_groups,
                c.duplicates,
                c.group_starts.join(", ")
            ));
        }
        for ((p, t), max) in c.max_seq() {
            match thread_started.get(&(p.clone(), *t)) {
                Some(s) if max < *s => {}
                Some(s) => v.push(format!(
                    "sink {n}: record {p}:{t}:{max} delivered, but that thread started only {s}"
                )),
                None => v.push(format!(
                    "sink {n}: records of an unknown producer thread {p}:{t}"
                )),
            }
        }
        for g in c.gaps(if unbalanced.contains(n) { 5 } else { 0 }) {
            v.push(format!(
                "sink {n}: missing {g} (dropped, evicted, shed, or lost)"
            ));
        }
        for e in c.examples.iter().take(5) {
            v.push(format!("sink {n}: e.g. {e}"));
        }
        sink_docs.insert(
            n.clone(),
            json!({
                "distinct": c.distinct.iter().sum::<u64>(), "duplicates": c.duplicates,
                "duplicate_groups": c.duplicate_groups, "cut_lines": c.cut,
                "out_of_order": c.out_of_order, "broken": c.broken,
                "reordered_across_processes": c.reordered_across_processes,
                "shed": s.undelivered.shed.iter().sum::<u64>(),
                "rejected": s.undelivered.rejected.iter().sum::<u64>(),
                "lost_in_crash": s.undelivered.lost_in_crash.iter().sum::<u64>(),
                "lost_in_crash_though_delivered": over,
            }),
        );
    }
    let doc = json!({
        "records_started": started.iter().sum::<u64>(),
        "levels": levels,
        "sinks": sink_docs,
        "producers": per_producer,
    });
    (v, doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::token::message;

    fn stat(emitted: u64, delivered: u64, dropped: u64, unread: u64) -> Value {
        json!({"invalid": 0, "levels": {"INFO": {
            "emitted": emitted, "delivered": delivered, "dropped": dropped,
            "evicted": 0, "torn": 0, "unread": unread}}})
    }

    fn producer(started: u64) -> ProducerBooks {
        let mut t = ThreadBooks {
            started,
            done: started,
            ..ThreadBooks::default()
        };
        t.per_level[2] = started;
        ProducerBooks {
            name: "r0".into(),
            kind: 'r',
            killed: false,
            clean_exit: true,
            threads: vec![t],
        }
    }

    #[test]
    fn balanced_books_pass_and_a_missing_record_or_an_unread_one_fails() {
        let mut c = SinkCheck::new("s");
        for s in 0..3 {
            c.record(Some(2), &message("r0", 0, s, 40));
        }
        fn sinks(c: &SinkCheck) -> Vec<SinkBooks<'_>> {
            vec![SinkBooks {
                check: c,
                undelivered: Undelivered::default(),
                extra_groups: 0,
            }]
        }
        let ok = check(
            &[producer(4)],
            &[("ring".into(), stat(4, 3, 1, 0))],
            &sinks(&c),
            0,
        );
        assert!(ok.0.is_empty(), "{:?}", ok.0);
        // One record the sink never got and nobody counted.
        let lost = check(
            &[producer(4)],
            &[("ring".into(), stat(4, 4, 0, 0))],
            &sinks(&c),
            0,
        );
        assert_eq!(lost.0.len(), 1, "{:?}", lost.0);
        // The ring counts 3 of 4 started (one vanished before the ring).
        let short = check(
            &[producer(4)],
            &[("ring".into(), stat(3, 3, 0, 0))],
            &sinks(&c),
            0,
        );
        assert_eq!(short.0.len(), 1, "{:?}", short.0);
        let unread = check(
            &[producer(4)],
            &[("old".into(), stat(4, 3, 0, 1))],
            &sinks(&c),
            0,
        );
        assert!(unread.0[0].contains("left unread"), "{:?}", unread.0);
    }

    /// A sink short of records balances only with what the next collector
    /// counted lost_in_crash; counting more than a kill's slack fails, and
    /// so does counting too little.
    #[test]
    fn lost_in_crash_closes_the_books_within_the_slack() {
        let mut c = SinkCheck::new("s");
        for s in 0..3 {
            c.record(Some(2), &message("r0", 0, s, 40));
        }
        let books = |lost: u64, kills: u64| {
            let mut u = Undelivered::default();
            u.lost_in_crash[2] = lost;
            let sinks = [SinkBooks {
                check: &c,
                undelivered: u,
                extra_groups: 0,
            }];
            check(
                &[producer(5)],
                &[("ring".into(), stat(5, 5, 0, 0))],
                &sinks,
                kills,
            )
            .0
        };
        // 2 of 5 never reached the sink: uncounted, a violation.
        assert!(!books(0, 1).is_empty());
        assert!(books(2, 1).is_empty(), "{:?}", books(2, 1));
        // Counted lost though written: within one kill's slack.
        assert!(books(2 + CRASH_SLACK, 1).is_empty());
        let over = books(3 + CRASH_SLACK, 1);
        assert!(
            over.iter().any(|v| v.contains("though delivered")),
            "{over:?}"
        );
    }
}
