//! The harness's command line (see `bin/logbus-chaos.rs` for the usage).

use std::path::PathBuf;
use std::time::Duration;

/// The ring's mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Producers never wait; a full ring drops (or evicts).
    Drop,
    /// Lossless: producers wait up to `--wait-ms` for room.
    Wait,
}

/// The fault kinds, each switchable (`--no-FAULT`, `--only FAULT,...`).
pub const FAULTS: [&str; 8] = [
    "producer-kill",
    "producer-stop",
    "collector-kill",
    "collector-hup",
    "disk-full",
    "otlp-restart",
    "stdout-pause",
    "ring-replace",
];

/// Producer kinds, each switchable (`--no-KIND`).
pub const KINDS: [&str; 4] = ["rust", "c", "python", "shell"];

/// Parsed options.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long producers and faults run.
    pub duration: Duration,
    /// Seed of every random choice.
    pub seed: u64,
    /// Ring mode.
    pub mode: Mode,
    /// Lossless wait, ms (mode wait).
    pub wait_ms: u32,
    /// Faults enabled, by name (of [`FAULTS`]).
    pub faults: Vec<&'static str>,
    /// Producer kinds enabled (of [`KINDS`]).
    pub kinds: Vec<&'static str>,
    /// Producers of each kind running at once.
    pub per_kind: usize,
    /// The Python interpreter with the `logbus` package installed.
    pub python: Option<PathBuf>,
    /// Where to write the summary (JSON) and memory samples (TSV).
    pub json: Option<PathBuf>,
    /// See [`Options::json`].
    pub tsv: Option<PathBuf>,
    /// The sinks' `max_backlog` (percent of the ring's blocks a sink's
    /// unwritten records keep in the ring). 100 by default: records a sink
    /// holds past it wait in the collector's memory only, and a SIGKILLed
    /// collector loses them uncounted (the collector's own default, 25,
    /// shows that loss).
    pub max_backlog: u8,
    /// Keep the run's directory (ledgers, segments, stderr) after the run.
    pub keep: bool,
}

/// The usage text.
pub const USAGE: &str = "\
usage: logbus-chaos [--duration 60s] [--seed N] [--mode drop|wait] [--wait-ms 500]
                    [--no-FAULT]... [--only FAULT,...] [--no-KIND]... [--per-kind N]
                    [--max-backlog 100] [--python PATH] [--json FILE] [--tsv FILE] [--keep]
faults: producer-kill producer-stop collector-kill collector-hup disk-full
        otlp-restart stdout-pause ring-replace
kinds:  rust c python shell
--python defaults to $LOGBUS_CHAOS_PYTHON, else target/pyvenv/bin/python if it exists
(without one the Python producers are skipped, with the reason printed).";

fn duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("bad duration {s:?} (units: ms, s, m, h)")),
    })
}

impl Options {
    /// Parses `args` (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            duration: Duration::from_secs(60),
            seed: 1,
            mode: Mode::Drop,
            wait_ms: 500,
            faults: FAULTS.to_vec(),
            kinds: KINDS.to_vec(),
            per_kind: 2,
            python: std::env::var_os("LOGBUS_CHAOS_PYTHON").map(PathBuf::from),
            json: None,
            tsv: None,
            keep: false,
            max_backlog: 100,
        };
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut val = || it.next().ok_or(format!("{flag} needs a value"));
            match flag.as_str() {
                "--duration" => o.duration = duration(&val()?)?,
                "--seed" => o.seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
                "--mode" => {
                    o.mode = match val()?.as_str() {
                        "drop" => Mode::Drop,
                        "wait" => Mode::Wait,
                        m => return Err(format!("--mode {m}: drop or wait")),
                    }
                }
                "--wait-ms" => o.wait_ms = val()?.parse().map_err(|e| format!("--wait-ms: {e}"))?,
                "--per-kind" => {
                    o.per_kind = val()?.parse().map_err(|e| format!("--per-kind: {e}"))?
                }
                "--python" => o.python = Some(val()?.into()),
                "--json" => o.json = Some(val()?.into()),
                "--tsv" => o.tsv = Some(val()?.into()),
                "--keep" => o.keep = true,
                "--max-backlog" => {
                    o.max_backlog = val()?.parse().map_err(|e| format!("--max-backlog: {e}"))?
                }
                "--only" => {
                    let want = val()?;
                    let mut faults = Vec::new();
                    for f in want.split(',').filter(|f| !f.is_empty()) {
                        faults.push(
                            *FAULTS
                                .iter()
                                .find(|k| **k == f)
                                .ok_or(format!("--only: unknown fault {f}"))?,
                        );
                    }
                    o.faults = faults;
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => {
                    let name = other
                        .strip_prefix("--no-")
                        .ok_or(format!("unknown argument {other}\n{USAGE}"))?;
                    if FAULTS.contains(&name) {
                        o.faults.retain(|f| *f != name);
                    } else if KINDS.contains(&name) {
                        o.kinds.retain(|k| *k != name);
                    } else {
                        return Err(format!("unknown argument {other}\n{USAGE}"));
                    }
                }
            }
        }
        Ok(o)
    }

    /// Whether fault `name` is on.
    pub fn fault(&self, name: &str) -> bool {
        self.faults.contains(&name)
    }

    /// The command line that replays this run.
    pub fn replay(&self) -> String {
        let mut s = format!(
            "cargo run --release -p logbus-tests --bin logbus-chaos -- --duration {}s --seed {} --mode {}",
            self.duration.as_secs(),
            self.seed,
            match self.mode {
                Mode::Drop => "drop",
                Mode::Wait => "wait",
            }
        );
        if self.mode == Mode::Wait {
            s += &format!(" --wait-ms {}", self.wait_ms);
        }
        for f in FAULTS.iter().filter(|f| !self.fault(f)) {
            s += &format!(" --no-{f}");
        }
        for k in KINDS.iter().filter(|k| !self.kinds.contains(k)) {
            s += &format!(" --no-{k}");
        }
        if self.max_backlog != 100 {
            s += &format!(" --max-backlog {}", self.max_backlog);
        }
        if self.per_kind != 2 {
            s += &format!(" --per-kind {}", self.per_kind);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn switches_parse_and_the_replay_line_carries_them() {
        let o = Options::parse(args(
            "--duration 2m --seed 9 --mode wait --no-ring-replace --no-python",
        ))
        .unwrap();
        assert_eq!(o.duration, Duration::from_secs(120));
        assert!(!o.fault("ring-replace") && o.fault("disk-full"));
        assert!(!o.kinds.contains(&"python"));
        let r = o.replay();
        assert!(
            r.contains("--seed 9 --mode wait --wait-ms 500 --no-ring-replace --no-python"),
            "{r}"
        );
        let only = Options::parse(args("--only producer-kill,collector-kill")).unwrap();
        assert_eq!(only.faults, ["producer-kill", "collector-kill"]);
        assert!(Options::parse(args("--no-such")).is_err());
        assert!(Options::parse(args("--duration 5x")).is_err());
    }
}
