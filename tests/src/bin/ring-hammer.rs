//! A producer process for the ring's multi-process tests.
//!
//! `ring-hammer RING --id K [--count N] [--threads T] [--severity S | --mix]
//!  [--msg-bytes B] [--wait-fd FD]`
//!
//! Each thread makes a writer and emits `N` records (forever with `N = 0`) with
//! fields `p` = K, `t` = thread index and `i` = 0, 1, 2, ... so that a reader
//! can check every record arrived exactly once and in order. With `--mix` the
//! severity cycles DEBUG, INFO, INFO, ERROR. With `--wait-fd`, every thread
//! waits until a byte can be read from that inherited descriptor (a start gun).
//! With `--hold-consumer` it only takes the consumer role, prints `held` and
//! keeps it until stdin closes or it is killed.
//! On exit prints `{"written":W,"dropped":D,"evicted":E}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use logbus_ring::{Emitted, Event, Field, Ring, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<u64>()
                    .unwrap_or_else(|_| fail(&format!("bad {name}")))
            })
    };
    let ring_path = args
        .get(1)
        .unwrap_or_else(|| fail("usage: ring-hammer RING --id K ..."));
    let id = get("--id").unwrap_or(0);
    let count = get("--count").unwrap_or(1000);
    let threads = get("--threads").unwrap_or(1);
    let severity = get("--severity").unwrap_or(9) as u8;
    let mix = args.iter().any(|a| a == "--mix");
    let msg_bytes = get("--msg-bytes").unwrap_or(40) as usize;
    let wait_fd = get("--wait-fd");
    let ring = Ring::open(ring_path).unwrap_or_else(|e| fail(&e.to_string()));
    if args.iter().any(|a| a == "--hold-consumer") {
        // Hold the consumer role until killed or stdin closes.
        let _c = logbus_ring::Consumer::acquire(&ring).unwrap_or_else(|e| fail(&e.to_string()));
        println!("held");
        let mut sink = String::new();
        let _ = std::io::stdin().read_line(&mut sink);
        return;
    }
    let written = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let evicted = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ring = ring.clone();
            let (written, dropped, evicted) = (written.clone(), dropped.clone(), evicted.clone());
            std::thread::spawn(move || {
                let mut w = ring.writer().unwrap_or_else(|e| fail(&e.to_string()));
                if let Some(fd) = wait_fd {
                    let mut b = [0u8; 1];
                    // SAFETY: `fd` is a descriptor the parent left open for us; reading
                    // into a 1-byte stack buffer.
                    unsafe { libc::read(fd as i32, b.as_mut_ptr().cast(), 1) };
                }
                let pad = "x".repeat(msg_bytes);
                let mut i = 0u64;
                while count == 0 || i < count {
                    let message = format!("{id}/{t}/{i} {pad}");
                    let sev = if mix {
                        [5, 9, 9, 17][(i % 4) as usize]
                    } else {
                        severity
                    };
                    let fields = [
                        Field {
                            key: "p",
                            value: Value::U64(id),
                        },
                        Field {
                            key: "t",
                            value: Value::U64(t),
                        },
                        Field {
                            key: "i",
                            value: Value::U64(i),
                        },
                    ];
                    let ev = Event {
                        target: "hammer",
                        fields: &fields,
                        ..Event::new(sev, &message)
                    };
                    match w.emit(&ev).unwrap_or_else(|e| fail(&e.to_string())) {
                        Emitted::Written { evicted: e } => {
                            written.fetch_add(1, Ordering::Relaxed);
                            evicted.fetch_add(e as u64, Ordering::Relaxed);
                        }
                        Emitted::Dropped => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap_or_else(|_| fail("a thread failed"));
    }
    println!(
        "{{\"written\":{},\"dropped\":{},\"evicted\":{}}}",
        written.load(Ordering::Relaxed),
        dropped.load(Ordering::Relaxed),
        evicted.load(Ordering::Relaxed)
    );
}

fn fail(msg: &str) -> ! {
    eprintln!("ring-hammer: {msg}");
    std::process::exit(1)
}
