//! What one sink delivered, checked record by record as it arrives.
//!
//! For every producer thread a sink keeps a bitset of the sequence numbers
//! it has seen and the highest one. A record seen before is a duplicate (runs
//! of them are counted as groups: a collector killed mid-group writes that
//! group again); a record not seen before but below the highest is out of
//! order (a violation); a message that is not a whole chaos message is
//! broken. Distinct records are counted per level and per producer, for the
//! books (`books.rs`).

use std::collections::HashMap;

use super::token::{self, Broken};

/// Levels, TRACE .. FATAL.
pub const LEVELS: usize = 6;

/// Level index (0 TRACE .. 5 FATAL) of an OpenTelemetry severity number.
pub fn level_of_severity(n: i64) -> Option<usize> {
    (1..=24).contains(&n).then(|| ((n - 1) / 4) as usize)
}

/// Level index of a level name as the JSON lines spell it.
pub fn level_of_name(name: &str) -> Option<usize> {
    ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
        .iter()
        .position(|l| *l == name)
}

#[derive(Default)]
struct Seen {
    bits: Vec<u64>,
    max: Option<u64>,
}

impl Seen {
    /// Marks `seq`; true when it was new.
    fn insert(&mut self, seq: u64) -> bool {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        let new = self.bits[w] & (1 << b) == 0;
        self.bits[w] |= 1 << b;
        new
    }
}

/// Name prefix of producers that write each record from a new process.
pub const PROCESS_PER_RECORD: char = 's';

/// New records between two repeats that make them two groups: a
/// collector writes again what a killed one was writing, at most one poll's
/// chunk (16,384 records), and its repeats come mixed with records new to
/// the sink (a sink's progress is kept per block, and a chunk's blocks
/// were being written by several sinks at once).
pub const GROUP_GAP: u64 = 16_384;

/// Examples of each kind of violation kept (the counts are complete).
const EXAMPLES: usize = 5;

/// One sink's record of what it delivered.
#[derive(Default)]
pub struct SinkCheck {
    /// The sink's name.
    pub name: String,
    seen: HashMap<(String, u32), Seen>,
    /// Distinct records per level.
    pub distinct: [u64; LEVELS],
    /// Distinct records per producer and level.
    pub per_producer: HashMap<String, [u64; LEVELS]>,
    /// Records written more than once (each repeat counted).
    pub duplicates: u64,
    /// Groups of repeats: repeats less than [`GROUP_GAP`] new records
    /// apart are one group.
    pub duplicate_groups: u64,
    /// New records since the last repeat.
    since_repeat: Option<u64>,
    /// Records new to the sink that came after a later one of their thread.
    pub out_of_order: u64,
    /// The same, for producers whose every record comes from a process of
    /// its own (the shell producer's `logbus emit`): the ring orders the
    /// records of one thread, not those of processes one after another, so
    /// these are counted, not violations.
    pub reordered_across_processes: u64,
    /// Lines or messages that are not whole records.
    pub broken: u64,
    /// Lines cut off where a killed collector stopped writing.
    pub cut: u64,
    /// Records that are not chaos records, or have no level.
    pub foreign: u64,
    /// Records checked (duplicates included).
    pub records: u64,
    /// Where each duplicate group started: record number and origin.
    pub group_starts: Vec<String>,
    /// Examples of the violations above, for the report.
    pub examples: Vec<String>,
}

impl SinkCheck {
    /// An empty check for sink `name`.
    pub fn new(name: &str) -> SinkCheck {
        SinkCheck {
            name: name.to_string(),
            ..SinkCheck::default()
        }
    }

    fn example(&mut self, what: String) {
        if self.examples.len() < EXAMPLES * 4 {
            self.examples.push(what);
        }
    }

    /// One record as the sink delivered it: its level and message.
    pub fn record(&mut self, level: Option<usize>, msg: &str) {
        let origin = match token::parse(msg) {
            Ok(o) => o,
            Err(Broken::Foreign) => {
                self.foreign += 1;
                self.example(format!("foreign record: {:.120}", msg));
                return;
            }
            Err(e) => {
                self.broken += 1;
                self.example(format!("broken message ({e:?}): {:.120}", msg));
                return;
            }
        };
        let Some(level) = level else {
            self.foreign += 1;
            self.example(format!("record without a level: {:.120}", msg));
            return;
        };
        let seen = self
            .seen
            .entry((origin.producer.clone(), origin.thread))
            .or_default();
        if !seen.insert(origin.seq) {
            self.duplicates += 1;
            if !matches!(self.since_repeat, Some(n) if n <= GROUP_GAP) {
                self.duplicate_groups += 1;
                self.group_starts.push(format!(
                    "#{} {}:{}:{}",
                    self.records, origin.producer, origin.thread, origin.seq
                ));
            }
            self.records += 1;
            self.since_repeat = Some(0);
            return;
        }
        self.records += 1;
        if let Some(n) = &mut self.since_repeat {
            *n += 1;
        }
        let late = seen.max.is_some_and(|m| origin.seq < m);
        seen.max = Some(seen.max.map_or(origin.seq, |m| m.max(origin.seq)));
        if late && origin.producer.starts_with(PROCESS_PER_RECORD) {
            self.reordered_across_processes += 1;
        } else if late {
            self.out_of_order += 1;
            self.example(format!(
                "out of order: {}:{} seq {} after a later one",
                origin.producer, origin.thread, origin.seq
            ));
        }
        self.distinct[level] += 1;
        self.per_producer
            .entry(origin.producer)
            .or_insert([0; LEVELS])[level] += 1;
    }

    /// One JSON line of a stdout or file sink. A line that does not parse is
    /// broken, unless a whole record follows the cut (a collector killed
    /// mid-line, its successor appending): then the cut is counted and the
    /// record after it checked.
    pub fn json_line(&mut self, line: &str) {
        if let Some((level, msg)) = parse_json(line) {
            self.record(level, &msg);
            return;
        }
        if let Some(at) = line.rfind("{\"time\":").filter(|at| *at > 0) {
            if let Some((level, msg)) = parse_json(&line[at..]) {
                self.cut += 1;
                self.record(level, &msg);
                return;
            }
        }
        self.broken += 1;
        self.example(format!("broken line: {:.160}", line));
    }

    /// Runs of sequence numbers missing below each thread's highest seen
    /// one (`producer:thread seq a..=b`), up to `limit` of them: where a
    /// sink lost records, for the report.
    pub fn gaps(&self, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        if limit == 0 {
            return out;
        }
        let mut keys: Vec<_> = self.seen.keys().collect();
        keys.sort();
        for k in keys {
            let s = &self.seen[k];
            let Some(max) = s.max else { continue };
            let mut start = None;
            for seq in 0..=max {
                let have = s.bits[(seq / 64) as usize] & (1 << (seq % 64)) != 0;
                match (have, start) {
                    (false, None) => start = Some(seq),
                    (true, Some(a)) => {
                        out.push(format!("{}:{} seq {a}..={}", k.0, k.1, seq - 1));
                        start = None;
                        if out.len() >= limit {
                            return out;
                        }
                    }
                    _ => {}
                }
            }
        }
        out
    }

    /// Records this sink has and `other` lacks (`producer:thread:seq`), up
    /// to `limit`: which records one sink lost that another delivered.
    pub fn lacking_in(&self, other: &SinkCheck, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut keys: Vec<_> = self.seen.keys().collect();
        keys.sort();
        for k in keys {
            let mine = &self.seen[k];
            let theirs = other.seen.get(k);
            for (w, bits) in mine.bits.iter().enumerate() {
                let have = theirs.and_then(|t| t.bits.get(w)).copied().unwrap_or(0);
                let mut only = bits & !have;
                while only != 0 && out.len() < limit {
                    let b = only.trailing_zeros() as u64;
                    out.push(format!("{}:{}:{}", k.0, k.1, w as u64 * 64 + b));
                    only &= only - 1;
                }
                if out.len() >= limit {
                    return out;
                }
            }
        }
        out
    }

    /// Highest sequence number seen of each producer thread.
    pub fn max_seq(&self) -> impl Iterator<Item = (&(String, u32), u64)> {
        self.seen.iter().filter_map(|(k, s)| s.max.map(|m| (k, m)))
    }
}

fn parse_json(line: &str) -> Option<(Option<usize>, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let msg = v.get("msg")?.as_str()?.to_string();
    let level = v
        .get("level")
        .and_then(|l| l.as_str())
        .and_then(level_of_name);
    Some((level, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::token::message;

    fn line(level: &str, p: &str, seq: u64) -> String {
        format!(
            "{{\"time\":\"t\",\"level\":\"{level}\",\"msg\":\"{}\"}}",
            message(p, 0, seq, 60)
        )
    }

    #[test]
    fn repeats_form_groups_and_late_records_are_out_of_order() {
        let mut c = SinkCheck::new("s");
        for s in [0, 1, 2, 1, 2, 3, 5, 4, 0] {
            c.json_line(&line("INFO", "r1", s));
        }
        assert_eq!(c.distinct[2], 6);
        assert_eq!((c.duplicates, c.duplicate_groups), (3, 1));
        for s in 6..GROUP_GAP + 7 {
            c.json_line(&line("INFO", "r1", s));
        }
        c.json_line(&line("INFO", "r1", 1));
        assert_eq!((c.duplicates, c.duplicate_groups), (4, 2));
        let mut other = SinkCheck::new("o");
        other.json_line(&line("INFO", "r1", 0));
        assert_eq!(other.lacking_in(&c, 5), Vec::<String>::new());
        assert_eq!(c.lacking_in(&other, 2), ["r1:0:1", "r1:0:2"]);
        assert_eq!(c.out_of_order, 1);
        assert_eq!(c.per_producer["r1"][2], 6 + GROUP_GAP + 1);
    }

    #[test]
    fn a_cut_line_followed_by_a_whole_record_counts_as_cut_and_garbage_as_broken() {
        let mut c = SinkCheck::new("s");
        let whole = line("WARN", "r1", 0);
        c.json_line(&format!("{}{}", &whole[..20], whole));
        c.json_line("not json");
        assert_eq!((c.cut, c.broken, c.distinct[3]), (1, 1, 1));
    }
}
