//! The formatter's own tests: each fast path against a plain computation
//! (`std`, `format!`, `ryu`, a byte loop); whole records are tested through
//! mapped rings in `tests/schema.rs`.

use logbus_ring::Value;

use crate::escape::*;
use crate::formatter::*;
use crate::json::*;
use crate::numbers::*;
use crate::out::Out;
use crate::text::*;
use crate::time::*;
use crate::*;

/// `n` iterations of a spread of values, a hundredth under Miri (which
/// runs these tests too, checking every access, a thousand times slower).
fn spread(n: usize) -> usize {
    if cfg!(miri) {
        n / 100
    } else {
        n
    }
}

/// `decimal_digits` agrees with `ilog10` at and around every power of
/// ten and two, at the ends, and on a spread of other values.
#[test]
fn decimal_digits_match_ilog10() {
    let expect = |v: u64| (v | 1).ilog10() as usize + 1;
    let mut vs = vec![0, 1, u64::MAX, u64::MAX - 1];
    let mut p = 1u64;
    while let Some(next) = p.checked_mul(10) {
        vs.extend([p - 1, p, p + 1]);
        p = next;
    }
    vs.extend([p - 1, p, p + 1]);
    for b in 0..64 {
        let q = 1u64 << b;
        vs.extend([q - 1, q, q + 1]);
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..spread(100_000) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        vs.extend([x, x >> (x % 64)]);
    }
    for v in vs {
        assert_eq!(decimal_digits(v), expect(v), "{v}");
    }
}

fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut v = Vec::new();
    f(&mut v);
    String::from_utf8(v).unwrap()
}

#[test]
fn rfc3339_known_instants() {
    assert_eq!(s(|o| write_rfc3339(o, 0)), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        s(|o| write_rfc3339(o, 951_782_400_000_000_007)),
        "2000-02-29T00:00:00.000000007Z"
    );
    assert_eq!(
        s(|o| write_rfc3339(o, 1_795_629_599_999_999_999)),
        "2026-11-25T17:59:59.999999999Z"
    );
}

#[test]
fn json_strings_escape_what_json_requires() {
    let nasty = "q\"b\\n\nt\tc\u{1}d\u{7f}é";
    let out = s(|o| write_json_str(o, nasty));
    let back: String = serde_json::from_str(&out).unwrap();
    assert_eq!(back, nasty);
}

#[test]
fn every_special_byte_at_every_position_is_escaped() {
    // The clean-string scan works 8 bytes at a time: put each byte that
    // needs escaping (and some that do not) at every offset of strings
    // long enough to cross word boundaries and leave tails.
    let specials = [
        '"', '\\', '\n', '\r', '\t', '\u{0}', '\u{1f}', '\u{7f}', 'é', '€', ' ', '~',
    ];
    // Under Miri, one length ending in each part of a word.
    let lens: Vec<usize> = if cfg!(miri) {
        vec![1, 9, 20]
    } else {
        (0..24).collect()
    };
    for len in lens {
        for at in 0..len {
            for &c in &specials {
                let mut t: String = "abcdefghijklmnopqrstuvwxyz".chars().take(len).collect();
                t.replace_range(
                    t.char_indices()
                        .nth(at)
                        .map(|(i, ch)| i..i + ch.len_utf8())
                        .unwrap(),
                    &c.to_string(),
                );
                let out = s(|o| write_json_str(o, &t));
                let back: String =
                    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
                assert_eq!(back, t);
                assert!(
                    !out[1..out.len() - 1].bytes().any(|b| b < 0x20 || b == 0x7f),
                    "{out:?}"
                );
            }
        }
    }
}

#[test]
fn floats_read_back_exactly_and_as_short_as_ryu() {
    let mut values = vec![
        0.0,
        -0.0,
        12.5,
        3.0,
        -3.0,
        0.001,
        -0.001,
        0.1,
        0.2,
        0.3,
        1e11 + 0.5,
        0.0001,
        1e12,
        1e15,
        123.456,
        -0.25,
    ];
    let mut x = 0.37_f64;
    for i in 0..spread(20_000) {
        // Decimals of 0-4 places, products, and awkward binary fractions.
        values.push((i as f64) / 1000.0);
        values.push(-(i as f64) / 8.0);
        values.push((i as f64) * 0.1);
        x = (x * 3.7 + 0.13) % 1000.0;
        values.push(x);
    }
    for f in values {
        let ours = s(|o| write_json_value(o, Value::F64(f)));
        let theirs = ryu::Buffer::new().format_finite(f).to_string();
        let back: f64 = ours.parse().unwrap();
        assert!(
            back == f && back.is_sign_negative() == f.is_sign_negative(),
            "{f}: {ours}"
        );
        assert!(ours.len() <= theirs.len(), "{f}: ours {ours}, ryu {theirs}");
    }
}

#[test]
fn integers_at_every_width_match_std() {
    let mut values = vec![0u64, 1, 9, u64::MAX, u64::MAX - 1, i64::MAX as u64];
    for d in 1..20 {
        let p = 10u64.pow(d);
        values.extend([p - 1, p, p + 1, p / 2 + 7]);
    }
    for v in values {
        assert_eq!(s(|o| write_json_value(o, Value::U64(v))), v.to_string());
        let i = v as i64;
        assert_eq!(s(|o| write_json_value(o, Value::I64(i))), i.to_string());
        let i = i.wrapping_neg();
        assert_eq!(s(|o| write_json_value(o, Value::I64(i))), i.to_string());
    }
    for i in [i64::MIN, i64::MIN + 1, -1, -10, -99, -100] {
        assert_eq!(s(|o| write_json_value(o, Value::I64(i))), i.to_string());
    }
}

/// The per-entry memory of clean short strings answers as the check
/// itself, over a stream of repeated, changed, escaped and long strings.
#[test]
fn remembered_clean_strings_answer_as_the_check() {
    let mut f = Formatter::new();
    let alphabet = b"ab\"\\\n\x7fz ";
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut last: Vec<String> = vec![String::new(); CLEAN_ENTRIES + 1];
    for _ in 0..spread(200_000) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x % (CLEAN_ENTRIES as u64 + 1)) as usize;
        // Often the same string again, or one byte changed, else a new one.
        let s = match (x >> 8) % 4 {
            0 | 1 => last[at].clone(),
            2 if !last[at].is_empty() => {
                let mut b = last[at].clone().into_bytes();
                let at = (x >> 16) as usize % b.len();
                b[at] = alphabet[(x >> 24) as usize % alphabet.len()];
                String::from_utf8(b).unwrap()
            }
            _ => {
                let len = (x >> 32) as usize % 19;
                (0..len)
                    .map(|i| {
                        let c = (x >> (i % 8 * 8)) as usize;
                        if c.is_multiple_of(5) {
                            alphabet[c % alphabet.len()] as char
                        } else {
                            (b'a' + (c % 26) as u8) as char
                        }
                    })
                    .collect()
            }
        };
        assert_eq!(f.is_clean(at, &s), !str_needs_escape(s.as_bytes()), "{s:?}");
        last[at] = s;
    }
}

/// The per-severity tables say what the level and severity say.
#[test]
fn level_tables_match_the_level_of_every_severity() {
    for sev in 1..=24u8 {
        let name = logbus_ring::Level::from_severity(sev).unwrap().name();
        let (fragment, len) = &JSON_LEVELS[severity_index(sev)];
        assert_eq!(
            &fragment[..*len as usize],
            format!("\",\"level\":\"{name}\",\"severity\":{sev},\"target\":").as_bytes()
        );
        assert_eq!(
            &TEXT_LEVELS[severity_index(sev) / 4][..6],
            format!("{name:<6}").as_bytes()
        );
    }
}

/// The digit and hex words against `format!`, across every boundary of the parts computed at once.
#[test]
fn eight_digits_and_hex_words_match_format() {
    let mut values: Vec<u32> = (0..spread(10_000) as u32).collect();
    values.extend((0..spread(10_000) as u32).map(|i| i * 10_000 + 9_999 - i));
    values.extend((0..100_000_000).step_by(99_991 * (100_000 / spread(100_000))));
    values.extend([99_999_999, 10_000_000, 9_999_999, 12_345_678, 87_654_321]);
    for v in values {
        assert_eq!(&eight_digits(v), format!("{v:08}").as_bytes(), "{v}");
    }
    let mut x = 0x9e37_79b9u32;
    for i in 0..spread(100_000) as u32 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        for v in [x, i, i << 16, u32::MAX - i, 0x0a0a_0a0a ^ i] {
            assert_eq!(&hex_word(v), format!("{v:08x}").as_bytes(), "{v:x}");
        }
    }
    let id: Vec<u8> = (0..=255u8).collect();
    for len in 0..24 {
        let ours = s(|o| write_hex(o, &id[200..200 + len]));
        let theirs: String = id[200..200 + len]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(ours, theirs);
    }
}

/// The cached second prefix, across second, minute, day, month, year and
/// leap-day boundaries, in both directions, against an uncached computation.
#[test]
fn cached_time_prefix_follows_every_second_boundary() {
    let reference = |ns: u64| {
        let secs = ns / 1_000_000_000;
        let nanos = ns % 1_000_000_000;
        let p = second_prefix(secs);
        format!("{}{nanos:09}Z", std::str::from_utf8(&p).unwrap())
    };
    let mut f = Formatter::new();
    let mut instants = Vec::new();
    for base in [
        0u64,
        951_782_399,   // 2000-02-28T23:59:59
        951_868_799,   // 2000-02-29T23:59:59
        1_795_629_599, // 2026-11-25T17:59:59
        1_798_761_599, // 2026-12-31T23:59:59
        4_102_444_799, // 2099-12-31T23:59:59
    ] {
        for ns in [0, 1, 999_999_999, 123_456_789, 100_000_000, 99_999_999] {
            instants.push(base * 1_000_000_000 + ns);
            instants.push((base + 1) * 1_000_000_000 + ns);
        }
    }
    let back: Vec<u64> = instants.iter().rev().copied().collect();
    instants.extend(back);
    for ns in instants {
        let mut out = Vec::new();
        // SAFETY: 30 bytes and the 8 bytes of slack of the word stores.
        let mut w = unsafe { Out::new(&mut out, 38) };
        f.put_rfc3339(&mut w, ns);
        // SAFETY: `w` was made from `out` just above.
        unsafe { w.finish(&mut out) };
        assert_eq!(String::from_utf8(out).unwrap(), reference(ns), "{ns}");
        assert_eq!(s(|o| write_rfc3339(o, ns)), reference(ns), "{ns}");
    }
}

/// The word-at-a-time checks against a byte loop, for every byte value
/// at every position of strings of 0 to 20 bytes (short strings take the
/// 1-3 and 4-7 byte paths, longer ones the overlapping last word).
#[test]
fn word_checks_match_byte_checks() {
    type Check = (fn(u64) -> bool, fn(u8) -> bool);
    let checks: [Check; 3] = [
        (word_needs_escape, needs_escape),
        (word_has_control, |b| b < b' ' || b == 0x7f),
        (word_needs_quotes, |b| b <= b' ' || b == b'"' || b == b'='),
    ];
    // Every byte value; under Miri the boundaries of each class only.
    let bytes: Vec<u8> = if cfg!(miri) {
        vec![
            0, b'\n', 0x1f, b' ', b'!', b'"', b'=', b'\\', b'a', 0x7e, 0x7f, 0x80, 0xc3, 0xff,
        ]
    } else {
        (0..=255).collect()
    };
    // Under Miri, a length ending in each part of a word, one fill.
    let (lens, fills): (Vec<usize>, &[u8]) = if cfg!(miri) {
        (vec![0, 2, 5, 8, 13, 20], b"a")
    } else {
        ((0..=20).collect(), &[b'a', b'~', 0xc3, b' '])
    };
    for (word, byte) in checks {
        for &len in &lens {
            for at in 0..len.max(1) {
                for &v in &bytes {
                    for &fill in fills {
                        let mut b = vec![fill; len];
                        if len > 0 {
                            b[at] = v;
                        }
                        assert_eq!(any_word(&b, word), b.iter().any(|&c| byte(c)), "{b:?}");
                    }
                }
            }
        }
    }
}

/// The text form's fast paths give what the byte-by-byte rules say:
/// control characters escaped, values with spaces, quotes or `=` quoted.
#[test]
fn text_form_quotes_and_escapes_as_the_byte_rules_say() {
    for v in [
        "plain",
        "a b",
        "a=b",
        "q\"",
        "tab\t",
        "del\u{7f}x",
        "é",
        "",
        "0123456789=",
        "x",
    ] {
        let quoted = v.is_empty() || v.bytes().any(|b| b <= b' ' || b == b'"' || b == b'=');
        let mut want = String::new();
        if quoted {
            want = s(|o| write_json_str(o, v));
        } else if v.bytes().any(|b| b < b' ' || b == 0x7f) {
            // SAFETY: a string takes at most 6 bytes per byte.
            let mut out = Vec::new();
            let mut w = unsafe { Out::new(&mut out, 6 * v.len()) };
            put_escaped(&mut w, v.as_bytes(), false);
            // SAFETY: `w` was made from `out` just above.
            unsafe { w.finish(&mut out) };
            want = String::from_utf8(out).unwrap();
        } else {
            want.push_str(v);
        }
        let mut out = Vec::new();
        // SAFETY: as in `write_text`.
        let mut w = unsafe { Out::new(&mut out, 6 * v.len() + 40) };
        match Value::Str(v) {
            Value::Str(s) if s.is_empty() || any_word(s.as_bytes(), word_needs_quotes) => {
                put_json_str(&mut w, s)
            }
            Value::Str(s) => put_text_clean(&mut w, s),
            _ => unreachable!(),
        }
        // SAFETY: `w` was made from `out` just above.
        unsafe { w.finish(&mut out) };
        assert_eq!(String::from_utf8(out).unwrap(), want, "{v:?}");
    }
}

#[test]
fn non_finite_floats_stay_valid_json() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -0.0] {
        let out = s(|o| write_json_value(o, Value::F64(f)));
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }
}

/// Whole records through `write_json_as` and `write_text`, the
/// formatter's unchecked writer over every part of a record: escapes,
/// non-ASCII, every field kind, ids, a service, a cut message. Only under
/// Miri, which has no mapping to make a ring with: the records are
/// decoded from a buffer (`logbus_ring::fuzzing`); without Miri the same
/// paths run on mapped rings (tests/schema.rs) and in the fuzz target
/// `record_decode`.
#[cfg(miri)]
#[test]
fn whole_records_format_within_their_bound() {
    use logbus_ring::fuzzing::{decode_block, encode_block};
    use logbus_ring::{Batch, Event, Field};
    let text = "quote \" slash \\ nl \n tab \t ctl \u{1} é € 😀 \u{7f}";
    let fields = [
        Field {
            key: "s",
            value: Value::Str(text),
        },
        Field {
            key: text,
            value: Value::I64(i64::MIN),
        },
        Field {
            key: "u",
            value: Value::U64(u64::MAX),
        },
        Field {
            key: "f",
            value: Value::F64(-1.5e-300),
        },
        Field {
            key: "nan",
            value: Value::F64(f64::NAN),
        },
        Field {
            key: "b",
            value: Value::Bool(false),
        },
    ];
    let long = text.repeat(8);
    let events = [
        Event {
            target: text,
            fields: &fields,
            trace_id: Some([0xab; 16]),
            span_id: Some([0xcd; 8]),
            trace_flags: 1,
            time_ns: 1_700_000_000_123_456_789,
            ..Event::new(17, text)
        },
        Event::new(1, ""),
        Event::new(9, &long),
    ];
    let (block, n) = encode_block(&events, 1, 4096, 200);
    assert_eq!(n, 3);
    let mut batch = Batch::new();
    assert_eq!(decode_block(&block, 1, &mut batch).records, 3);
    for r in batch.iter() {
        for service in [None, Some(text)] {
            let mut out = b"kept".to_vec();
            write_json_as(&mut out, &r, service, Some(1000));
            let line = std::str::from_utf8(&out[4..]).unwrap();
            assert_eq!(line.matches('\n').count(), 1, "{line}");
            serde_json::from_str::<serde_json::Value>(line).unwrap();
            let mut out = Vec::new();
            write_text(&mut out, &r, service);
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        }
    }
}
