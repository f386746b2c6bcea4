//! The one error type of this crate.

use std::fmt;

/// Why building, using or shutting down an [`OtlpExporter`](crate::OtlpExporter) failed.
///
/// `Display` is one line, fit for a log or a binary's error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpError {
    /// The configuration (explicit or from the environment) is unusable: an unknown
    /// protocol, an endpoint that is not a URL, a timeout that is not a number of
    /// milliseconds, a malformed header. The text names the setting.
    Config(String),
    /// The exporter's tokio runtime could not be started.
    Runtime(String),
    /// The endpoint could not take the export now (connection refused, gRPC
    /// UNAVAILABLE or RESOURCE_EXHAUSTED, HTTP 429 or 5xx...): worth retrying.
    /// The records were not acknowledged.
    Export(String),
    /// The endpoint refused the records for good (gRPC INVALID_ARGUMENT,
    /// PERMISSION_DENIED, UNAUTHENTICATED, NOT_FOUND, UNIMPLEMENTED...; HTTP
    /// 400, 401, 403, 404, 405, 413): sending them again would fail again.
    Rejected(String),
    /// The endpoint did not acknowledge within the configured timeout. The records
    /// may or may not have arrived.
    Timeout,
    /// `shutdown` could not release the transport cleanly.
    Shutdown(String),
}

impl fmt::Display for OtlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtlpError::Config(why) => write!(f, "OTLP configuration: {why}"),
            OtlpError::Runtime(why) => write!(f, "OTLP exporter runtime: {why}"),
            OtlpError::Export(why) => write!(f, "OTLP export failed: {why}"),
            OtlpError::Rejected(why) => write!(f, "OTLP export rejected: {why}"),
            OtlpError::Timeout => f.write_str(
                "OTLP export timed out: the endpoint did not acknowledge within the configured timeout",
            ),
            OtlpError::Shutdown(why) => write!(f, "OTLP exporter shutdown: {why}"),
        }
    }
}

impl std::error::Error for OtlpError {}

impl OtlpError {
    /// Whether sending the same records again may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, OtlpError::Rejected(_) | OtlpError::Config(_))
    }
}

/// Makes a message one line: errors from the transport stack can carry newlines.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
