//! `logbus-chaos [--duration 60s] [--seed N] [--mode drop|wait] ...`: the
//! chaos harness (see `logbus_tests::chaos` and `docs/RELIABILITY.md`).
//!
//! ```sh
//! cargo build --release --workspace --bins
//! cargo run --release -p logbus-tests --bin logbus-chaos -- --duration 60s --seed 42 --mode drop
//! ```
//!
//! Prints a summary (records, faults survived, books, duplicates, memory),
//! and every violation with the seed and the command that replays the run;
//! exits 0 when the books balance and nothing broke, 1 on any violation, 2
//! when the run could not be set up.

use std::io::Write;
use std::process::ExitCode;

use logbus_tests::chaos::options::{Options, USAGE};
use logbus_tests::chaos::run;

fn main() -> ExitCode {
    let o = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e == USAGE => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("logbus-chaos: {e}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "logbus-chaos: seed {} mode {:?}, {} s, faults: {}",
        o.seed,
        o.mode,
        o.duration.as_secs(),
        o.faults.join(" ")
    );
    let out = match run::run(&o) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("logbus-chaos: seed {}: {e}", o.seed);
            eprintln!("logbus-chaos: replay: {}", o.replay());
            return ExitCode::from(2);
        }
    };
    for n in &out.notes {
        eprintln!("logbus-chaos: note: {n}");
    }
    print_summary(&out.summary);
    if let Some(p) = &o.json {
        let text = serde_json::to_string_pretty(&out.summary).expect("summary serialises");
        if let Err(e) = std::fs::write(p, text) {
            eprintln!("logbus-chaos: {}: {e}", p.display());
        }
    }
    if let Some(p) = &o.tsv {
        let mut text = String::from("seconds\tpid\trss_anon_kib\n");
        for (t, pid, k) in &out.memory {
            text += &format!("{t:.1}\t{pid}\t{k}\n");
        }
        if let Err(e) = std::fs::write(p, text) {
            eprintln!("logbus-chaos: {}: {e}", p.display());
        }
    }
    if out.violations.is_empty() {
        eprintln!(
            "logbus-chaos: seed {}: no violation; the books balance",
            o.seed
        );
        ExitCode::SUCCESS
    } else {
        for v in &out.violations {
            eprintln!("logbus-chaos: VIOLATION (seed {}): {v}", o.seed);
        }
        eprintln!(
            "logbus-chaos: {} violations; replay: {}",
            out.violations.len(),
            o.replay()
        );
        ExitCode::FAILURE
    }
}

fn print_summary(s: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "records started {}, producers {} ({} killed), collectors {}",
        s["books"]["records_started"], s["producers"], s["producers_killed"], s["collectors"]
    );
    let _ = writeln!(out, "faults survived: {}", s["faults"]);
    let _ = writeln!(
        out,
        "level  started inflight  emitted delivered  dropped  evicted  torn unread | stdout file otlp (distinct/shed/lost_in_crash)"
    );
    if let Some(levels) = s["books"]["levels"].as_object() {
        for name in logbus_tests::chaos::books::LEVEL_NAMES {
            let l = &levels[name];
            let n = |k: &str| l[k].as_u64().unwrap_or(0);
            let sink = |n: &str| {
                let k = &l["sinks"][n];
                format!("{}/{}/{}", k["distinct"], k["shed"], k["lost_in_crash"])
            };
            let _ = writeln!(
                out,
                "{name:<6}{:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>5} {:>6} | {} {} {}",
                n("started"),
                n("in_flight_at_kill"),
                n("emitted"),
                n("delivered"),
                n("dropped"),
                n("evicted"),
                n("torn"),
                n("unread"),
                sink("stdout"),
                sink("file"),
                sink("otlp")
            );
        }
    }
    if let Some(sinks) = s["books"]["sinks"].as_object() {
        for (n, k) in sinks {
            let _ = writeln!(
                out,
                "sink {n}: {} distinct, {} duplicates in {} groups, {} cut lines, \
                 {} lost_in_crash ({} of them counted though delivered)",
                k["distinct"],
                k["duplicates"],
                k["duplicate_groups"],
                k["cut_lines"],
                k["lost_in_crash"],
                k["lost_in_crash_though_delivered"]
            );
        }
    }
    let mem: Vec<String> = s["memory_kib"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| format!("{}s:{}", m[0].as_f64().unwrap_or(0.0) as u64, m[2]))
        .collect();
    let _ = writeln!(out, "collector RssAnon KiB (every 10 s): {}", mem.join(" "));
}
