//! The collector's TOML configuration (`logbus-collector/src/config.rs`,
//! compiled in from its source so that this target does not build the OTLP
//! stack; it needs only std, serde, toml and `logbus_ring::Level`): arbitrary
//! text must parse into a `Config` or fail with a `ConfigError` whose message
//! is one line naming the file, never panic.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/logbus-collector/src/config.rs"]
mod config;

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
