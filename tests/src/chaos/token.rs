//! The contract between producers and checker: what each chaos record's
//! message says about where it came from.
//!
//! A message is `chaos:<producer>:<thread>:<seq>:<len>:` followed by padding
//! up to `len` bytes in all, the padding one letter chosen by `seq`
//! (`a` + seq mod 26). A sink's copy of the message proves, by itself, which
//! producer thread wrote it, its place in that thread's order, and that it
//! arrived whole (no cut, no bytes of another record). The C and Python
//! producers (`tests/chaos/`) build the same string.

/// Prefix of every chaos message.
pub const PREFIX: &str = "chaos:";

/// The letter padding the message of record `seq`.
pub fn pad_letter(seq: u64) -> u8 {
    b'a' + (seq % 26) as u8
}

/// The message of record `seq` of `thread` of `producer`, `len` bytes long
/// (or as short as its header when `len` is less).
pub fn message(producer: &str, thread: u32, seq: u64, len: usize) -> String {
    let mut m = format!("{PREFIX}{producer}:{thread}:{seq}:{len}:");
    if m.len() < len {
        let pad = pad_letter(seq) as char;
        let n = len - m.len();
        m.extend((0..n).map(|_| pad));
    }
    m
}

/// Where a record came from, read back from its message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The producer's name (kind letter and number, e.g. `r3`).
    pub producer: String,
    /// The thread's index within its producer.
    pub thread: u32,
    /// The record's number within its thread, from 0.
    pub seq: u64,
}

/// Why a message is not a whole chaos message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Broken {
    /// It does not start like one (not a chaos record at all).
    Foreign,
    /// The header does not parse.
    Header,
    /// Its length or padding is wrong: cut, or mixed with other bytes.
    Body {
        /// Length the header promised.
        want: usize,
        /// Length found.
        got: usize,
    },
}

/// Reads `msg` back; a message must be exactly what [`message`] made.
pub fn parse(msg: &str) -> Result<Origin, Broken> {
    let rest = msg.strip_prefix(PREFIX).ok_or(Broken::Foreign)?;
    let mut parts = rest.splitn(5, ':');
    let mut next = || parts.next().ok_or(Broken::Header);
    let producer = next()?.to_string();
    let thread = next()?.parse().map_err(|_| Broken::Header)?;
    let seq: u64 = next()?.parse().map_err(|_| Broken::Header)?;
    let len: usize = next()?.parse().map_err(|_| Broken::Header)?;
    let pad = next()?;
    let header = msg.len() - pad.len();
    let want = len.max(header);
    let letter = pad_letter(seq);
    if msg.len() != want || !pad.bytes().all(|b| b == letter) {
        return Err(Broken::Body {
            want,
            got: msg.len(),
        });
    }
    Ok(Origin {
        producer,
        thread,
        seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_and_a_cut_or_mixed_one_does_not() {
        let m = message("r1", 2, 30, 100);
        assert_eq!(m.len(), 100);
        assert_eq!(
            parse(&m),
            Ok(Origin {
                producer: "r1".into(),
                thread: 2,
                seq: 30
            })
        );
        assert!(matches!(parse(&m[..99]), Err(Broken::Body { .. })));
        let mut mixed = m.clone().into_bytes();
        mixed[90] = b'z';
        assert!(parse(std::str::from_utf8(&mixed).unwrap()).is_err());
        assert_eq!(parse("hello"), Err(Broken::Foreign));
        let short = message("c0", 0, 5, 3);
        assert_eq!(parse(&short).unwrap().seq, 5);
    }
}
