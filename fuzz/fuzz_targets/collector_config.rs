//! The collector's TOML configuration (`logbus-collector/src/config/` and
//! each sink's table, `src/sink/*/config.rs`, compiled in from their source
//! in the collector's module layout so that this target does not build the
//! OTLP stack; they need only std, serde, toml and `logbus_ring::Level`):
//! arbitrary text must parse into a `Config` or fail with a `ConfigError`
//! whose message is one line naming the file, never panic.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../crates/logbus-collector/src/config/mod.rs"]
mod config;

/// The sinks' tables, where the collector's `config` finds them.
#[allow(dead_code)]
#[path = "../../crates/logbus-collector/src/sink"]
mod sink {
    pub mod file {
        pub(crate) mod config;
    }
    pub mod null {
        pub(crate) mod config;
    }
    pub mod otlp {
        pub(crate) mod config;
    }
    pub mod stdout {
        pub(crate) mod config;
    }
}

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::parse(text, "fuzz.toml".as_ref()) {
        Ok(cfg) => {
            for s in &cfg.sinks {
                let _ = (s.level_mask(), s.kind.type_name(), s.kind.line_format());
            }
        }
        Err(e) => {
            let line = e.to_string();
            assert!(line.starts_with("fuzz.toml"), "{line}");
        }
    }
});
