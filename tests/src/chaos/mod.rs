//! `logbus-chaos`: everything at once, at random, for as long as you like,
//! with the books checked exactly at the end (issue 20, part 1).
//!
//! One run (`run.rs`) creates a ring of the default size in a fresh
//! directory under `/dev/shm` (lossy, or lossless with `--mode wait`), starts
//! a collector with three sinks (stdout read by the harness, a file on a
//! small tmpfs, OTLP/gRPC to `logbus-testkit`'s receiver) and keeps
//! producers of every kind running (`producers.rs`: Rust, C, Python, shell),
//! while faults strike at seeded random moments (`faults.rs`). At the end it
//! lets every fault end, waits for the producers to finish and the collector
//! to drain, stops the collector with SIGTERM, and checks the books
//! (`books.rs`) from the producers' own ledgers (`ledger.rs`), what each
//! sink delivered (`checker.rs`, by the origin each message carries:
//! `token.rs`) and the rings' and collectors' counters (`supervisor.rs`).
//!
//! Every random choice comes from `--seed` (`rng.rs`); a violation prints
//! the seed and the command that replays the run.

pub mod books;
pub mod checker;
pub mod faults;
pub mod file_sink;
pub mod ledger;
pub mod options;
pub mod otlp;
pub mod producers;
pub mod rng;
pub mod run;
pub mod supervisor;
pub mod token;
pub mod workload;
