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
    /// Runs of consecutive repeats.
    pub duplicate_groups: u64,
    in_repeat: bool,
    /// Records new to the sink that came after a later one of their thread.
    pub out_of_order: u64,
    /// Lines or messages that are not whole records.
    pub broken: u64,
    /// Lines cut off where a killed collector stopped writing.
    pub cut: u64,
    /// Records that are not chaos records, or have no level.
    pub foreign: u64,
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
            if !self.in_repeat {
                self.duplicate_groups += 1;
                self.in_repeat = true;
            }
            return;
        }
        self.in_repeat = false;
        let late = seen.max.is_some_and(|m| origin.seq < m);
        seen.max = Some(seen.max.map_or(origin.seq, |m| m.max(origin.seq)));
        if late {
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

    /// Highest sequence number seen of each producer thread.
    pub fn max_seq(&self) -> impl Iterator<Item = (&(String, u32), u64)> {
        self.seen
            .iter()
            .filter_map(|(k, s)| s.max.map(|m| (k, m)))
    }
}

fn parse_json(line: &str) -> Option<(Option<usize>, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let msg = v.get("msg")?.as_str()?.to_string();
    let level = v.get("level").and_then(|l| l.as_str()).and_then(level_of_name);
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
        for s in [0, 1, 2, 1, 2, 3, 5, 4] {
            c.json_line(&line("INFO", "r1", s));
        }
        assert_eq!(c.distinct[2], 6);
        assert_eq!((c.duplicates, c.duplicate_groups), (2, 1));
        assert_eq!(c.out_of_order, 1);
        assert_eq!(c.per_producer["r1"][2], 6);
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
