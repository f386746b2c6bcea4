//! Export logbus records to OpenTelemetry back ends over OTLP.
//!
//! The collector turns the records it drains from the ring into owned [`OtlpRecord`]s
//! (each pointing at the [`OtlpResource`] of the process that wrote it) and hands them
//! to an [`OtlpExporter`], which sends them over OTLP/gRPC or OTLP/HTTP with a protobuf
//! body and returns once the endpoint acknowledged them, or fails within the configured
//! timeout.
//!
//! - [`config`]: [`OtlpConfig`], resolved against the standard `OTEL_EXPORTER_OTLP_*`
//!   variables (endpoint, protocol, timeout, headers) into a [`ResolvedConfig`].
//! - [`record`]: the records and how each field maps onto an OTLP `LogRecord` and
//!   `Resource` (the target becomes the instrumentation scope name).
//! - [`exporter`]: the blocking exporter, built on `opentelemetry-otlp` 0.33's
//!   `LogExporter` driven by a one-worker tokio runtime of its own.
//!
//! The OTLP receiver the tests export to lives in the test-support crate
//! (`logbus-testkit`).
//!
//! # Examples
//!
//! ```no_run
//! use logbus_otlp::{AttrValue, OtlpConfig, OtlpExporter, OtlpRecord, OtlpResource, Protocol};
//! use std::{sync::Arc, time::Duration};
//!
//! # fn main() -> Result<(), logbus_otlp::OtlpError> {
//! let config = OtlpConfig {
//!     endpoint: Some("http://otel-collector:4318".into()),
//!     protocol: Some(Protocol::HttpProtobuf),
//!     timeout: Some(Duration::from_secs(5)),
//!     headers: vec![],
//! };
//! let mut exporter = OtlpExporter::new(&config)?;
//! let resource = Arc::new(OtlpResource {
//!     service_name: "billing".into(),
//!     service_version: "1.4.2".into(),
//!     host_name: "node-7".into(),
//!     pid: 4242,
//!     command: "billing --serve".into(),
//!     uid: Some(1000),
//! });
//! exporter.export(&[OtlpRecord {
//!     time_ns: logbus_time_ns(),
//!     observed_ns: 0,
//!     severity: 17,
//!     severity_text: "ERROR",
//!     body: "card declined".into(),
//!     target: "billing::charge".into(),
//!     attributes: vec![("amount_cents".into(), AttrValue::I64(1299))],
//!     trace_id: None,
//!     span_id: None,
//!     trace_flags: 0,
//!     resource,
//! }])?;
//! exporter.shutdown()?;
//! # Ok(()) }
//! # fn logbus_time_ns() -> u64 { 0 }
//! ```
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod exporter;
mod partial;
pub mod record;

pub use config::{OtlpConfig, Protocol, ResolvedConfig};
pub use error::OtlpError;
pub use exporter::OtlpExporter;
pub use record::{AttrValue, OtlpRecord, OtlpResource};
