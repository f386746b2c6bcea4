//! `test-producer RING --count N --prefix P [--level L] [--service S] [--start K]
//!  [--trace] [--retry] [--pause-every N] [--producer]`
//!
//! Emits records numbered `K .. K+N` with message `P-<i>`, target `test`,
//! fields `n` (u64, the number), `prefix` (string), `even` (bool), `ratio`
//! (f64) and `delta` (i64). With `--level` cycling `a,b,c` the i-th record gets
//! the (i mod 3)-th level. `--trace` gives each record a trace id (16 bytes of
//! `i`) and span id (8 bytes). `--retry`: a record the ring refuses (its overflow policy)
//! is emitted again after a short pause, so that every number gets in exactly
//! once. `--pause-every N`: sleep 1 ms every N records (a slow producer).
//! `--producer`: write through `logbus::Producer` (which follows the ring
//! path when the file is deleted or replaced) instead of one ring `Writer`.
//! Prints `written W dropped D` on stdout at the end.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use logbus_ring::{Emitted, Event, Field, Resource, Ring, Severity, Value, Writer};

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
    producer: bool,
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
        producer: false,
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
            "--producer" => a.producer = true,
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
    let mut out = if a.producer {
        match logbus::Producer::open(&a.ring) {
            Ok(p) => Out::Producer(p),
            Err(e) => {
                eprintln!("test-producer: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match writer(&a) {
            Ok((w, tag)) => Out::Writer(Box::new(w), tag),
            Err(code) => return code,
        }
    };
    match run(&a, &mut out) {
        Ok((written, dropped)) => {
            let tag = match out {
                Out::Writer(_, tag) => tag,
                Out::Producer(_) => 0,
            };
            println!("written {written} dropped {dropped} resource {tag}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// A ring writer tagged with this process's resource.
fn writer(a: &Args) -> Result<(Writer, u8), ExitCode> {
    let ring = match Ring::open(&a.ring) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("test-producer: {e}");
            return Err(ExitCode::FAILURE);
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
            return Err(ExitCode::FAILURE);
        }
    };
    w.set_resource(tag);
    if let Some(r) = &carry {
        w.carry_resource(r);
    }
    Ok((w, tag))
}

/// Where records go: one ring writer (and its resource tag), or a producer.
enum Out {
    Writer(Box<Writer>, u8),
    Producer(logbus::Producer),
}

impl Out {
    fn emit(&mut self, ev: &Event<'_>) -> Result<Emitted, String> {
        match self {
            Out::Writer(w, _) => w.emit(ev).map_err(|e| e.to_string()),
            Out::Producer(p) => match p.emit(ev) {
                logbus::Outcome::Written { evicted } => Ok(Emitted::Written { evicted }),
                logbus::Outcome::Dropped => Ok(Emitted::Dropped),
                logbus::Outcome::Unavailable => Err("the ring is unavailable".into()),
            },
        }
    }
}

fn run(a: &Args, out: &mut Out) -> Result<(u64, u64), ExitCode> {
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
            match out.emit(&ev) {
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
                    return Err(ExitCode::FAILURE);
                }
            }
        }
        if a.pause_every > 0 && (i + 1) % a.pause_every == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok((written, dropped))
}
