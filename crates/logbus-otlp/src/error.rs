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

/// A transport error's one-line text with each cause said once.
///
/// The transport hands its errors over as text only: opentelemetry-otlp
/// flattens an error and its `source()` chain into `error: cause: cause...`,
/// and an error whose own text already ends with its cause (or one that wraps
/// an error of the same words, as hyper-util's connect error does) makes
/// that read `tcp connect error: tcp connect error: Connection refused`.
/// Reading the text as `: `-separated causes, a cause that the one kept just
/// before it already contains is skipped, and so is a run of causes that
/// repeats the run just before it.
pub(crate) fn each_cause_once(text: &str) -> String {
    let text = one_line(text);
    let mut kept: Vec<&str> = Vec::new();
    for cause in text.split(": ") {
        if kept.last().is_some_and(|previous| previous.contains(cause)) {
            continue;
        }
        kept.push(cause);
        let n = kept.len();
        if let Some(k) = (2..=n / 2).find(|&k| kept[n - k..] == kept[n - 2 * k..n - k]) {
            kept.truncate(n - k);
        }
    }
    kept.join(": ")
}

#[cfg(test)]
mod tests {
    use super::each_cause_once;

    #[test]
    fn each_cause_is_said_once() {
        for (text, once) in [
            (
                "transport error: tcp connect error: tcp connect error: Connection refused",
                "transport error: tcp connect error: Connection refused",
            ),
            // An error whose text ends with its cause's, then that cause.
            (
                "connect: dns error: no such host: no such host",
                "connect: dns error: no such host",
            ),
            (
                "a (refused): refused: os error 111",
                "a (refused): os error 111",
            ),
            // Runs of causes repeated, and the repeats spread over lines.
            ("x: y: z: y: z: z", "x: y: z"),
            ("x: y:\n z: y: z", "x: y: z"),
            // Nothing repeated: unchanged.
            (
                "HTTP export failed: network error",
                "HTTP export failed: network error",
            ),
            ("x: y: x", "x: y: x"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(each_cause_once(text), once, "{text:?}");
        }
    }
}
