//! `test-producer RING --count N --prefix P [--level L] [--service S] [--start K]
//!  [--trace] [--retry] [--pause-every N]`
//!
//! Emits records numbered `K .. K+N` with message `P-<i>`, target `test`,
//! fields `n` (u64, the number), `prefix` (string), `even` (bool), `ratio`
//! (f64) and `delta` (i64). With `--level` cycling `a,b,c` the i-th record gets
//! the (i mod 3)-th level. `--trace` gives each record a trace id (16 bytes of
//! `i`) and span id (8 bytes). `--retry`: a record the ring refuses (lane full)
//! is emitted again after a short pause, so that every number gets in exactly
//! once. `--pause-every N`: sleep 1 ms every N records (a slow producer).
//! Prints `written W dropped D` on stdout at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use logbus_ring::{Emitted, Event, Field, Resource, Ring, Severity, Value};

struct Args {
    ring: PathBuf,
    count: u64,
    start: u64,
    prefix: String,
    levels: Vec<u8>,
    service: String,
    trace: bool,
    retry: bool,
    pause_every: u64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let ring = it
        .next()
        .ok_or("usage: test-producer RING --count N --prefix P")?;
    let mut a = Args {
        ring: ring.into(),
        count: 1,
        start: 0,
        prefix: "r".into(),
        levels: vec![9],
        service: "test-producer".into(),
        trace: false,
        retry: false,
        pause_every: 0,
    };
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--count" => a.count = val()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--start" => a.start = val()?.parse().map_err(|e| format!("--start: {e}"))?,
            "--prefix" => a.prefix = val()?,
            "--service" => a.service = val()?,
            "--level" => {
                a.levels = val()?
                    .split(',')
                    .map(|l| {
                        l.parse::<Severity>()
                            .map(|s| s.0)
                            .map_err(|e| e.to_string())
                    })
                    .collect::<Result<_, _>>()?
            }
            "--pause-every" => {
                a.pause_every = val()?.parse().map_err(|e| format!("--pause-every: {e}"))?
            }
            "--trace" => a.trace = true,
            "--retry" => a.retry = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("test-producer: {e}");
            return ExitCode::from(2);
        }
    };
    let ring = match Ring::open(&a.ring) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("test-producer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let resource = Resource {
        pid: std::process::id(),
        service: a.service.clone(),
        version: "1.2.3".into(),
        host: "test-host".into(),
        command: "test-producer".into(),
    };
    // A full table: the records carry the resource themselves.
    let (tag, carry) = match ring.register_resource(&resource) {
        Ok(tag) => (tag, None),
        Err(_) => (0, Some(resource)),
    };
    let mut w = match ring.writer() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("test-producer: {e}");
            return ExitCode::FAILURE;
        }
    };
    w.set_resource(tag);
    if let Some(r) = &carry {
        w.carry_resource(r);
    }
    let (mut written, mut dropped) = (0u64, 0u64);
    let mut msg = String::new();
    for i in a.start..a.start + a.count {
        msg.clear();
        msg.push_str(&a.prefix);
        msg.push('-');
        msg.push_str(&i.to_string());
        let fields = [
            Field {
                key: "n",
                value: Value::U64(i),
            },
            Field {
                key: "prefix",
                value: Value::Str(&a.prefix),
            },
            Field {
                key: "even",
                value: Value::Bool(i % 2 == 0),
            },
            Field {
                key: "ratio",
                value: Value::F64(i as f64 / 4.0),
            },
            Field {
                key: "delta",
                value: Value::I64(-(i as i64)),
            },
        ];
        let mut trace = [0u8; 16];
        trace[8..].copy_from_slice(&i.to_be_bytes());
        trace[0] = 0xab;
        let mut span = i.to_be_bytes();
        span[0] = 0xcd;
        let ev = Event {
            target: "test",
            fields: &fields,
            trace_id: a.trace.then_some(trace),
            span_id: a.trace.then_some(span),
            trace_flags: u8::from(a.trace),
            ..Event::new(a.levels[(i % a.levels.len() as u64) as usize], &msg)
        };
        loop {
            match w.emit(&ev) {
                Ok(Emitted::Written { .. }) => {
                    written += 1;
                    break;
                }
                Ok(Emitted::Dropped) if a.retry => std::thread::sleep(Duration::from_micros(200)),
                Ok(Emitted::Dropped) => {
                    dropped += 1;
                    break;
                }
                Err(e) => {
                    eprintln!("test-producer: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if a.pause_every > 0 && (i + 1) % a.pause_every == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!("written {written} dropped {dropped} resource {tag}");
    ExitCode::SUCCESS
}
