//! Records read from a real ring format to the documented schema.

use logbus_ring::{Batch, Consumer, Event, Field, Ring, Value};

fn one(ev: &Event<'_>, f: impl Fn(&mut Vec<u8>, &logbus_ring::RecordRef<'_>)) -> String {
    let dir = logbus_testkit::TempDir::new("fmt");
    let ring = Ring::open(dir.ring()).unwrap();
    ring.writer().unwrap().emit(ev).unwrap();
    let mut c = Consumer::acquire(&ring).unwrap();
    let mut b = Batch::new();
    assert_eq!(c.poll(&mut b, 10), 1);
    let mut out = Vec::new();
    f(&mut out, &b.get(0).unwrap());
    String::from_utf8(out).unwrap()
}

#[test]
fn json_has_every_key_of_the_schema_with_types() {
    let ev = Event {
        severity: 17,
        time_ns: 1_795_629_599_123_456_789,
        target: "app::db",
        message: "failed \"x\"",
        fields: &[
            Field {
                key: "n",
                value: Value::I64(-3),
            },
            Field {
                key: "u",
                value: Value::U64(7),
            },
            Field {
                key: "f",
                value: Value::F64(0.25),
            },
            Field {
                key: "b",
                value: Value::Bool(false),
            },
            Field {
                key: "s",
                value: Value::Str("v"),
            },
        ],
        trace_id: Some([0x0a; 16]),
        span_id: Some([0xff; 8]),
        trace_flags: 1,
    };
    let line = one(&ev, |o, r| {
        logbus_format::write_json_as(o, r, Some("billing"), Some(65534))
    });
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["time"], "2026-11-25T17:59:59.123456789Z");
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["severity"], 17);
    assert_eq!(v["target"], "app::db");
    assert_eq!(v["msg"], "failed \"x\"");
    assert_eq!(v["pid"], std::process::id());
    assert_eq!(v["uid"], 65534);
    assert!(line.contains(r#","uid":65534,"tid":"#), "{line}");
    assert!(v["tid"].as_u64().unwrap() > 0);
    assert!(v["seq"].is_u64());
    assert_eq!(v["trace_id"], "0a".repeat(16));
    assert_eq!(v["span_id"], "ff".repeat(8));
    assert_eq!(v["service"], "billing");
    assert_eq!(
        v["fields"],
        serde_json::json!({"n": -3, "u": 7, "f": 0.25, "b": false, "s": "v"})
    );
    assert!(v.get("truncated").is_none());
}

#[test]
fn absent_parts_are_left_out() {
    let line = one(&Event::new(9, "plain"), |o, r| {
        logbus_format::write_json(o, r, None)
    });
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for key in ["trace_id", "span_id", "fields", "truncated", "service"] {
        assert!(v.get(key).is_none(), "{key} present in {line}");
    }
}

#[test]
fn text_is_one_readable_line() {
    let ev = Event {
        time_ns: 1_795_629_599_000_000_000,
        target: "web",
        fields: &[
            Field {
                key: "path",
                value: Value::Str("/a b"),
            },
            Field {
                key: "code",
                value: Value::U64(500),
            },
        ],
        trace_id: Some([1; 16]),
        ..Event::new(13, "slow\nrequest")
    };
    let line = one(&ev, |o, r| logbus_format::write_text(o, r, None));
    assert_eq!(
        line,
        format!(
            "2026-11-25T17:59:59.000000000Z WARN  web: slow\\nrequest trace_id={} path=\"/a b\" code=500\n",
            "01".repeat(16)
        )
    );
}
