//! The logbus record schema, shared by `logbus dump --json` and the
//! collector's stdout and file sinks.
//!
//! JSON form: one object per line, keys in this order, absent ones left out:
//!
//! | key | value |
//! |---|---|
//! | `time` | RFC 3339, UTC, nanoseconds: `2026-11-25T18:00:00.123456789Z` |
//! | `level` | `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL` |
//! | `severity` | the OpenTelemetry severity number, 1-24 |
//! | `target` | the logger name |
//! | `msg` | the message |
//! | `pid`, `tid` | producer process and thread |
//! | `seq` | unique in the ring, increasing in emit order for each producer |
//! | `trace_id`, `span_id` | lowercase hex; left out when absent |
//! | `service` | the producer's service name, when its resource is known |
//! | `fields` | an object of the structured fields (types kept); left out when empty |
//! | `truncated` | `true`, only when something was cut |
//!
//! Text form: `time LEVEL target: message trace_id=… span_id=… key=value …`.
//!
//! Both writers append to a `Vec<u8>` and allocate nothing else.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("logbus-fmt-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! use logbus_ring::{Batch, Consumer, Event, Ring};
//! let ring = Ring::open(dir.join("ring")).unwrap();
//! ring.writer().unwrap().emit(&Event { time_ns: 1, ..Event::new(9, "hi") }).unwrap();
//! let mut c = Consumer::acquire(&ring).unwrap();
//! let mut batch = Batch::new();
//! c.poll(&mut batch, 10);
//! let mut line = Vec::new();
//! logbus_format::write_json(&mut line, &batch.get(0).unwrap(), None);
//! assert!(line.starts_with(br#"{"time":"1970-01-01T00:00:00.000000001Z","level":"INFO","severity":9,"#));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![deny(missing_docs)]

use logbus_ring::{RecordRef, Value};

/// Appends `r` as one JSON object and a newline.
pub fn write_json(out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&str>) {
    out.extend_from_slice(b"{\"time\":\"");
    write_rfc3339(out, r.time_ns());
    out.extend_from_slice(b"\",\"level\":\"");
    out.extend_from_slice(r.level().name().as_bytes());
    out.extend_from_slice(b"\",\"severity\":");
    write_int(out, r.severity());
    out.extend_from_slice(b",\"target\":");
    write_json_str(out, r.target());
    out.extend_from_slice(b",\"msg\":");
    write_json_str(out, r.message());
    out.extend_from_slice(b",\"pid\":");
    write_int(out, r.pid());
    out.extend_from_slice(b",\"tid\":");
    write_int(out, r.tid());
    out.extend_from_slice(b",\"seq\":");
    write_int(out, r.seq());
    if let Some(t) = r.trace_id() {
        out.extend_from_slice(b",\"trace_id\":\"");
        write_hex(out, &t);
        out.push(b'"');
    }
    if let Some(s) = r.span_id() {
        out.extend_from_slice(b",\"span_id\":\"");
        write_hex(out, &s);
        out.push(b'"');
    }
    if let Some(s) = service {
        out.extend_from_slice(b",\"service\":");
        write_json_str(out, s);
    }
    let mut first = true;
    for (k, v) in r.fields() {
        out.extend_from_slice(if first { b",\"fields\":{" } else { b"," });
        first = false;
        write_json_str(out, k);
        out.push(b':');
        write_json_value(out, v);
    }
    if !first {
        out.push(b'}');
    }
    if r.truncated() {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.extend_from_slice(b"}\n");
}

/// Appends `r` as one readable line and a newline.
pub fn write_text(out: &mut Vec<u8>, r: &RecordRef<'_>, service: Option<&str>) {
    write_rfc3339(out, r.time_ns());
    out.push(b' ');
    let name = r.level().name();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&b"      "[..6 - name.len()]);
    if let Some(s) = service {
        out.push(b'[');
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"] ");
    }
    if !r.target().is_empty() {
        out.extend_from_slice(r.target().as_bytes());
        out.extend_from_slice(b": ");
    }
    write_text_clean(out, r.message());
    if let Some(t) = r.trace_id() {
        out.extend_from_slice(b" trace_id=");
        write_hex(out, &t);
    }
    if let Some(s) = r.span_id() {
        out.extend_from_slice(b" span_id=");
        write_hex(out, &s);
    }
    for (k, v) in r.fields() {
        out.push(b' ');
        write_text_clean(out, k);
        out.push(b'=');
        match v {
            Value::Str(s)
                if s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'=') =>
            {
                write_json_str(out, s)
            }
            Value::Str(s) => out.extend_from_slice(s.as_bytes()),
            other => write_json_value(out, other),
        }
    }
    if r.truncated() {
        out.extend_from_slice(b" (truncated)");
    }
    out.push(b'\n');
}

/// Control characters (a newline in a message, say) would break the one-line
/// form: write them escaped as in JSON.
fn write_text_clean(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < b' ' || b == 0x7f) {
        let mut tmp = Vec::with_capacity(s.len() + 8);
        write_json_str(&mut tmp, s);
        out.extend_from_slice(&tmp[1..tmp.len() - 1]);
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a JSON value for a field value (non-finite floats as strings).
pub fn write_json_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::Str(s) => write_json_str(out, s),
        Value::I64(i) => write_int(out, i),
        Value::U64(u) => write_int(out, u),
        Value::F64(f) if f.is_finite() => {
            out.extend_from_slice(ryu::Buffer::new().format_finite(f).as_bytes())
        }
        Value::F64(f) => {
            out.push(b'"');
            out.extend_from_slice(if f.is_nan() {
                b"NaN"
            } else if f > 0.0 {
                b"inf"
            } else {
                b"-inf"
            });
            out.push(b'"');
        }
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends bytes as lowercase hex.
pub fn write_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

/// Appends `ns` since the Unix epoch as RFC 3339 UTC with nanoseconds.
pub fn write_rfc3339(out: &mut Vec<u8>, ns: u64) {
    let secs = ns / 1_000_000_000;
    let nanos = (ns % 1_000_000_000) as u32;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let mut buf = *b"0000-00-00T00:00:00.000000000Z";
    let put = |buf: &mut [u8; 30], at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 0, 4, y as u64);
    put(&mut buf, 5, 2, m as u64);
    put(&mut buf, 8, 2, d as u64);
    put(&mut buf, 11, 2, rem / 3600);
    put(&mut buf, 14, 2, rem % 3600 / 60);
    put(&mut buf, 17, 2, rem % 60);
    put(&mut buf, 20, 9, nanos as u64);
    out.extend_from_slice(&buf);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn non_finite_floats_stay_valid_json() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.5, -0.0] {
            let out = s(|o| write_json_value(o, Value::F64(f)));
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
    }
}
