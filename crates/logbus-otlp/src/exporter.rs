//! [`OtlpExporter`]: a blocking front of `opentelemetry-otlp`'s log exporter.
//!
//! The OTLP exporter of `opentelemetry-otlp` 0.33 is an async
//! [`opentelemetry_sdk::logs::LogExporter`]: it takes a [`LogBatch`] of SDK records and
//! sends them all under the one resource last given to `set_resource`. This type keeps
//! a small tokio runtime of its own (one worker thread, which drives the connections),
//! turns [`OtlpRecord`]s into SDK records (cloning a blank record obtained once from a
//! processor-less logger, since the SDK offers no public constructor), and for each
//! distinct resource of a call sets the resource and sends that group, blocking the
//! calling thread until the endpoint answers or the timeout expires.
//!
//! For OTLP/HTTP it hands the exporter an explicit hyper client running on that
//! runtime: the crate's default client, blocking reqwest, panics when driven from inside
//! a runtime, and selecting another client through `opentelemetry-otlp`'s features would
//! change the client of every other user of that crate in the workspace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::logs::{Logger as _, LoggerProvider as _};
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::logs::{LogBatch, LogExporter as _, SdkLogRecord, SdkLoggerProvider};
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};

use crate::config::{OtlpConfig, Protocol, ResolvedConfig};
use crate::error::{each_cause_once, one_line, OtlpError};
use crate::partial::PartialCount;
use crate::record::{OtlpRecord, OtlpResource, DEFAULT_SCOPE};

/// Sends [`OtlpRecord`]s to one OTLP endpoint, blocking until acknowledged.
///
/// Not meant to be used from inside an async runtime: `export` blocks the calling
/// thread (a collector's sink thread, typically).
///
/// # Examples
///
/// ```no_run
/// use logbus_otlp::{OtlpConfig, OtlpExporter, OtlpRecord, OtlpResource};
/// use std::sync::Arc;
///
/// # fn main() -> Result<(), logbus_otlp::OtlpError> {
/// let mut exporter = OtlpExporter::new(&OtlpConfig::default())?; // $OTEL_EXPORTER_OTLP_*, else grpc://localhost:4317
/// let resource = Arc::new(OtlpResource { service_name: "shop".into(), ..Default::default() });
/// let record = OtlpRecord {
///     time_ns: 1_700_000_000_000_000_000, observed_ns: 0, severity: 9, severity_text: "INFO",
///     body: "order placed".into(), target: "shop::orders".into(), attributes: vec![],
///     trace_id: None, span_id: None, trace_flags: 0, resource,
/// };
/// exporter.export(&[record])?;
/// exporter.shutdown()
/// # }
/// ```
pub struct OtlpExporter {
    // Field order is drop order: the transport goes before the runtime that drives it.
    exporter: opentelemetry_otlp::LogExporter,
    runtime: tokio::runtime::Runtime,
    config: ResolvedConfig,
    /// A fresh SDK record, cloned for every record exported.
    blank: SdkLogRecord,
    /// The scope of every record; the exporter replaces its name by the record's target.
    scope: InstrumentationScope,
    /// The resource the transport currently stamps on requests.
    current: Option<Arc<OtlpResource>>,
    /// Records endpoints rejected in partially successful exports, counted by
    /// `partial` during each export (see `crate::partial`).
    rejected: Arc<AtomicU64>,
    partial: tracing_core::Dispatch,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Resolves `config` against the process environment and builds the exporter.
    /// No connection is made yet: an unreachable endpoint shows at the first `export`.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Config`] for an unusable setting, [`OtlpError::Runtime`] when the
    /// runtime thread cannot start.
    pub fn new(config: &OtlpConfig) -> Result<OtlpExporter, OtlpError> {
        OtlpExporter::with_resolved(config.resolve()?)
    }

    /// Builds the exporter from settings already resolved (see
    /// [`OtlpConfig::resolve_with`]).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_resolved(config: ResolvedConfig) -> Result<OtlpExporter, OtlpError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("logbus-otlp")
            .enable_all()
            .build()
            .map_err(|e| OtlpError::Runtime(one_line(&e.to_string())))?;

        let exporter = {
            // The tonic channel and the hyper client spawn their tasks on the runtime
            // they are created in.
            let _entered = runtime.enter();
            build_transport(&config)?
        };

        let provider = SdkLoggerProvider::builder().build();
        let blank = provider.logger(DEFAULT_SCOPE).create_log_record();
        // No processor was registered: shutting it down has nothing to flush.
        let _ = provider.shutdown();

        let rejected = Arc::new(AtomicU64::new(0));
        Ok(OtlpExporter {
            exporter,
            runtime,
            config,
            blank,
            scope: InstrumentationScope::builder(DEFAULT_SCOPE).build(),
            current: None,
            partial: tracing_core::Dispatch::new(PartialCount::new(Arc::clone(&rejected))),
            rejected,
        })
    }

    /// Records the endpoint accepted the requests of but rejected (partial
    /// success) since the last call: `export` returns `Ok` for those requests,
    /// as the records cannot be sent again with any hope.
    pub fn take_rejected(&mut self) -> u64 {
        // Relaxed: written by this thread during `export`.
        self.rejected.swap(0, Ordering::Relaxed)
    }

    /// The settings in force.
    pub fn config(&self) -> &ResolvedConfig {
        &self.config
    }

    /// Sends `records` and returns once the endpoint acknowledged all of them.
    ///
    /// Records are sent in one request per distinct resource (in order of first
    /// appearance); the whole call is bounded by the configured timeout. The transport
    /// retries transient failures (unavailable, connection refused...) within that bound.
    /// An empty slice sends nothing.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Timeout`] when the endpoint has not acknowledged in time,
    /// [`OtlpError::Export`] when it failed or refused. In both cases some resource
    /// groups may already have been delivered: a retry can duplicate them.
    pub fn export(&mut self, records: &[OtlpRecord]) -> Result<(), OtlpError> {
        if records.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + self.config.timeout;

        for (resource, members) in group_by_resource(records) {
            let sdk: Vec<SdkLogRecord> = members
                .iter()
                .map(|&i| records[i].fill(self.blank.clone()))
                .collect();
            let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                sdk.iter().map(|record| (record, &self.scope)).collect();

            let same = self
                .current
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, resource) || **current == **resource);
            if !same {
                self.exporter.set_resource(&resource.to_sdk());
                self.current = Some(Arc::clone(resource));
            }

            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(OtlpError::Timeout);
            }
            let exporter = &self.exporter;
            let runtime = &self.runtime;
            // Under our counting subscriber: the transport reports partial
            // success only as an internal warning (see `crate::partial`).
            let outcome = tracing_core::dispatcher::with_default(&self.partial, || {
                runtime.block_on(async {
                    tokio::time::timeout(remaining, exporter.export(LogBatch::new(&pairs))).await
                })
            });
            match outcome {
                Err(_elapsed) => return Err(OtlpError::Timeout),
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(classify(err, deadline)),
            }
        }
        Ok(())
    }

    /// Closes the transport and stops the runtime.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Shutdown`] if the transport reports a failure while closing.
    pub fn shutdown(self) -> Result<(), OtlpError> {
        let OtlpExporter {
            exporter, runtime, ..
        } = self;
        let result = exporter.shutdown();
        drop(exporter);
        runtime.shutdown_timeout(Duration::from_secs(1));
        result.map_err(|e| OtlpError::Shutdown(each_cause_once(&e.to_string())))
    }
}

/// Groups record indices by resource, in order of first appearance. A batch holds few
/// resources (one per producing process), so a linear scan beats hashing.
fn group_by_resource(records: &[OtlpRecord]) -> Vec<(&Arc<OtlpResource>, Vec<usize>)> {
    let mut groups: Vec<(&Arc<OtlpResource>, Vec<usize>)> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let resource = &record.resource;
        match groups
            .iter_mut()
            .find(|(r, _)| Arc::ptr_eq(r, resource) || ***r == **resource)
        {
            Some((_, members)) => members.push(i),
            None => groups.push((resource, vec![i])),
        }
    }
    groups
}

/// Maps an SDK export error: deadline-shaped failures are timeouts.
fn classify(err: OTelSdkError, deadline: Instant) -> OtlpError {
    let text = match err {
        OTelSdkError::Timeout(_) => return OtlpError::Timeout,
        OTelSdkError::InternalFailure(text) => text,
        other => other.to_string(),
    };
    // The transports give up at the same deadline as ours, and say so in prose
    // (tonic: "Timeout expired" / DeadlineExceeded; hyper client: "deadline has elapsed").
    let lower = text.to_ascii_lowercase();
    if Instant::now() >= deadline
        || lower.contains("deadlineexceeded")
        || lower.contains("timeout expired")
        || lower.contains("deadline has elapsed")
    {
        OtlpError::Timeout
    } else if permanent(&lower) {
        OtlpError::Rejected(each_cause_once(&text))
    } else {
        OtlpError::Export(each_cause_once(&text))
    }
}

/// Whether a transport error says the records are refused for good, as the
/// OTLP specification has it: every gRPC code but CANCELLED,
/// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE
/// and DATA_LOSS; every HTTP 4xx and 5xx but 429, 502, 503 and 504. The SDK
/// reports a status in prose ("... failed with gRPC code: Internal", "...
/// failed with status code: 500"), read here; other texts (a transport that
/// names the code in its own words) are matched on the permanent codes'
/// names.
///
/// A status the client made up for a broken transport is no verdict of the
/// endpoint's, whatever its code: tonic reports an HTTP/2 stream or
/// connection ended under a request (a receiver shutting down sends GOAWAY)
/// as `Internal` ("h2 protocol error: ..."), and other transport failures
/// as `Unknown`. The endpoint may have taken the records; they are sent
/// again (at least once, as OTLP intends), never counted rejected.
fn permanent(lower: &str) -> bool {
    const TRANSPORT: [&str; 6] = [
        "h2 protocol error",
        "transport error",
        "connection reset",
        "connection closed",
        "broken pipe",
        "error reading a body",
    ];
    if TRANSPORT.iter().any(|t| lower.contains(t)) {
        return false;
    }
    if let Some((_, rest)) = lower.split_once("grpc code: ") {
        let code: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        const RETRYABLE: [&str; 7] = [
            "cancelled",
            "deadlineexceeded",
            "resourceexhausted",
            "aborted",
            "outofrange",
            "unavailable",
            "dataloss",
        ];
        return !code.is_empty() && code != "ok" && !RETRYABLE.contains(&code.as_str());
    }
    if let Some((_, rest)) = lower.split_once("status code: ") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(status) = digits.parse::<u16>() {
            return (400..600).contains(&status) && ![429, 502, 503, 504].contains(&status);
        }
    }
    const GRPC: [&str; 8] = [
        "invalidargument",
        "invalid argument",
        "permissiondenied",
        "permission denied",
        "unauthenticated",
        "unimplemented",
        "notfound",
        "failedprecondition",
    ];
    const HTTP: [&str; 6] = ["400", "401", "403", "404", "405", "413"];
    GRPC.iter().any(|c| lower.contains(c))
        || HTTP.iter().any(|c| {
            lower.match_indices(c).any(|(i, _)| {
                !lower[..i].ends_with(|ch: char| ch.is_ascii_digit())
                    && !lower[i + 3..].starts_with(|ch: char| ch.is_ascii_digit())
            })
        })
}

fn build_transport(config: &ResolvedConfig) -> Result<opentelemetry_otlp::LogExporter, OtlpError> {
    let built = match config.protocol {
        Protocol::Grpc => {
            let mut metadata = MetadataMap::new();
            for (key, value) in &config.headers {
                let name = AsciiMetadataKey::from_bytes(key.as_bytes()).map_err(|_| {
                    OtlpError::Config(format!("header {key:?} is not a valid gRPC metadata name"))
                })?;
                let value = value.parse::<AsciiMetadataValue>().map_err(|_| {
                    OtlpError::Config(format!(
                        "header {key:?} has a value not valid in gRPC metadata"
                    ))
                })?;
                metadata.insert(name, value);
            }
            opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone())
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_timeout(config.timeout)
                .with_metadata(metadata)
                .build()
        }
        Protocol::HttpProtobuf => {
            let client = opentelemetry_http::hyper::HyperClient::with_default_connector(
                config.timeout,
                None,
            );
            opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_endpoint(config.endpoint.clone())
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(config.timeout)
                .with_http_client(client)
                .with_headers(config.headers.iter().cloned().collect())
                .build()
        }
    };
    built.map_err(|e| OtlpError::Config(one_line(&e.to_string())))
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::fmt;
    use std::time::{Duration, Instant};

    use opentelemetry_sdk::error::OTelSdkError;

    use super::classify;
    use crate::OtlpError;

    /// An error with a cause; `with_cause` makes its text end with the
    /// cause's, as many errors' `Display` does.
    #[derive(Debug)]
    struct Nested {
        text: &'static str,
        with_cause: bool,
        cause: Option<Box<dyn Error + Send + Sync>>,
    }

    impl fmt::Display for Nested {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.text)?;
            match &self.cause {
                Some(cause) if self.with_cause => write!(f, ": {cause}"),
                _ => Ok(()),
            }
        }
    }

    impl Error for Nested {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.cause.as_deref().map(|c| c as &(dyn Error + 'static))
        }
    }

    /// What the transport hands over: the error, then each `source()`, as
    /// opentelemetry-otlp's tonic exporter writes them.
    fn flattened(err: &(dyn Error + 'static)) -> String {
        let mut out = format!("TonicLogsClient export failed with gRPC code: Unavailable: {err}");
        let mut next = err.source();
        while let Some(cause) = next {
            out.push_str(&format!(": {cause}"));
            next = cause.source();
        }
        out
    }

    // Found by logbus-chaos (drop mode, seed 301, one hour, 350 receiver
    // restarts): about 500 records counted rejected though the receiver had
    // taken most of them. A transport that broke under a request is retried.
    #[test]
    fn a_transport_broken_under_a_request_is_retried_whatever_its_code() {
        let deadline = Instant::now() + Duration::from_secs(60);
        for text in [
            "TonicLogsClient export failed with gRPC code: Internal: h2 protocol error: http2 error: connection error received: not a result of an error",
            "TonicLogsClient export failed with gRPC code: Unknown: transport error: connection closed before message completed",
            "TonicLogsClient export failed with gRPC code: Internal: h2 protocol error: error reading a body from connection: connection reset",
        ] {
            let got = classify(OTelSdkError::InternalFailure(text.into()), deadline);
            assert!(got.is_retryable(), "{text}: {got:?}");
        }
        // The endpoint's own verdicts stay as the specification has them.
        for (text, retry) in [
            (
                "TonicLogsClient export failed with gRPC code: Internal: internal server error",
                false,
            ),
            (
                "TonicLogsClient export failed with gRPC code: InvalidArgument: bad record",
                false,
            ),
            (
                "TonicLogsClient export failed with gRPC code: Unavailable: try later",
                true,
            ),
        ] {
            let got = classify(OTelSdkError::InternalFailure(text.into()), deadline);
            assert_eq!(got.is_retryable(), retry, "{text}: {got:?}");
        }
    }

    #[test]
    fn a_failed_export_says_each_cause_once() {
        // tonic's transport error over hyper-util's connect error, which wraps
        // another of the same words, over the OS error; and the same with
        // causes whose text already ends with their source's.
        let refused = || std::io::Error::from_raw_os_error(111);
        for with_cause in [false, true] {
            let err = Nested {
                text: "transport error",
                with_cause,
                cause: Some(Box::new(Nested {
                    text: "tcp connect error",
                    with_cause,
                    cause: Some(Box::new(Nested {
                        text: "tcp connect error",
                        with_cause,
                        cause: Some(Box::new(refused())),
                    })),
                })),
            };
            let text = flattened(&err);
            assert!(
                text.contains("tcp connect error: tcp connect error"),
                "{text}"
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            let got = classify(OTelSdkError::InternalFailure(text), deadline);
            assert_eq!(
                got,
                OtlpError::Export(format!(
                    "TonicLogsClient export failed with gRPC code: Unavailable: transport error: tcp connect error: {}",
                    refused()
                )),
                "with_cause: {with_cause}"
            );
        }
    }
}
