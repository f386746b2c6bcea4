//! The `otlp` sink's table (`endpoint`, `protocol`, `timeout`, `headers`,
//! `batch`). It needs no more than the collector's `config` module (the
//! configuration fuzz target compiles it without the OTLP stack).

use std::collections::BTreeMap;

use crate::config::table::{sink_table, Dur};
use crate::config::{OtlpProtocol, SinkKind, DEFAULT_OTLP_BATCH};

sink_table! {
    /// An `otlp` sink's own keys.
    OtlpTable => OtlpOptions {
        /// Endpoint URL (else the environment, then the default).
        endpoint: Option<String>,
        /// Transport (else the environment, then gRPC).
        protocol: Option<OtlpProtocol>,
        /// Export timeout (else the environment, then 10 s).
        timeout: Option<Dur>,
        /// Extra request headers.
        headers: Option<BTreeMap<String, String>>,
        /// Records per export request.
        batch: Option<usize>,
    }
}

impl OtlpOptions {
    /// The sink's kind, validated (else the key and the problem).
    pub(crate) fn kind(self) -> Result<SinkKind, (&'static str, String)> {
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err((
                    "endpoint",
                    format!("\"{e}\" is not an http:// or https:// URL"),
                ));
            }
        }
        if self.batch == Some(0) {
            return Err(("batch", "must be at least 1".into()));
        }
        Ok(SinkKind::Otlp {
            endpoint: self.endpoint,
            protocol: self.protocol,
            timeout: self.timeout.map(|d| d.0),
            headers: self.headers.unwrap_or_default().into_iter().collect(),
            batch: self.batch.unwrap_or(DEFAULT_OTLP_BATCH),
        })
    }
}
