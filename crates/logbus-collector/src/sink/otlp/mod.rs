//! The `otlp` sink: records become owned [`OtlpRecord`]s (body, target,
//! attributes with their types, trace context, and the producer's resource)
//! and are exported in requests of up to `batch` records; a group is finished
//! when the endpoint has answered each of its requests. A request that fails
//! for now is sent again (the requests before it are not); one refused for
//! good is counted rejected, per level, and the next one is sent.

use std::collections::HashMap;
use std::sync::Arc;

use logbus_otlp::{AttrValue, OtlpConfig, OtlpExporter, OtlpRecord, OtlpResource, Protocol};
use logbus_ring::{Level, Value, LEVELS};

use crate::config::{OtlpProtocol, SinkConfig, SinkKind};
use crate::queue::Job;
use crate::sink::{Output, WriteOutcome};

pub(crate) mod config;

/// Resources cached before the caches are cleared.
const CACHE_MAX: usize = 4096;

/// Exports to an OpenTelemetry endpoint.
pub struct OtlpSink {
    exporter: OtlpExporter,
    batch: usize,
    /// The group being exported (kept across retries).
    records: Vec<OtlpRecord>,
    /// Records of `records` the endpoint has answered (taken or refused).
    sent: usize,
    /// Per [`crate::chunk::Origin::id`].
    by_origin: HashMap<u64, Arc<OtlpResource>>,
    /// Producers without a resource entry, per ring and pid.
    by_pid: HashMap<(u32, u32), Arc<OtlpResource>>,
    /// Requests of the group refused for good: the last refusal, and their
    /// records per level, reported when the group is finished.
    refused: Option<(String, [u64; LEVELS])>,
    /// Records endpoints rejected in partially successful exports, reported
    /// with the next finished group.
    partially_rejected: u64,
}

/// The exporter's settings of an `otlp` sink as the file gives them (what it
/// leaves unset comes from `OTEL_EXPORTER_OTLP_*` when the exporter resolves
/// them); `None` for another kind of sink.
pub fn exporter_config(kind: &SinkKind) -> Option<OtlpConfig> {
    let SinkKind::Otlp {
        endpoint,
        protocol,
        timeout,
        headers,
        ..
    } = kind
    else {
        return None;
    };
    Some(OtlpConfig {
        endpoint: endpoint.clone(),
        protocol: protocol.map(|p| match p {
            OtlpProtocol::Grpc => Protocol::Grpc,
            OtlpProtocol::Http => Protocol::HttpProtobuf,
        }),
        timeout: *timeout,
        headers: headers.clone(),
    })
}

impl OtlpSink {
    /// Builds the exporter of an `otlp` sink configuration.
    ///
    /// # Errors
    /// The exporter's one-line message (bad endpoint, headers...).
    pub fn new(cfg: &SinkConfig) -> Result<OtlpSink, String> {
        let (SinkKind::Otlp { batch, .. }, Some(config)) = (&cfg.kind, exporter_config(&cfg.kind))
        else {
            return Err("not an otlp sink".into());
        };
        Ok(OtlpSink {
            exporter: OtlpExporter::new(&config).map_err(|e| e.to_string())?,
            batch: *batch,
            records: Vec::new(),
            sent: 0,
            by_origin: HashMap::new(),
            by_pid: HashMap::new(),
            refused: None,
            partially_rejected: 0,
        })
    }

    fn convert(&mut self, jobs: &[Job]) {
        if self.by_origin.len() + self.by_pid.len() > CACHE_MAX {
            self.by_origin.clear();
            self.by_pid.clear();
        }
        for job in jobs {
            let c = &job.chunk;
            for (i, r) in c
                .selected(job.mask)
                .filter(|(i, r)| job.wants(*i, r.level() as u8))
            {
                let resource = match c.origin(i) {
                    Some(o) => self
                        .by_origin
                        .entry(o.id)
                        .or_insert_with(|| {
                            Arc::new(OtlpResource {
                                service_name: o.resource.service.clone(),
                                service_version: o.resource.version.clone(),
                                host_name: o.resource.host.clone(),
                                pid: o.resource.pid,
                                command: o.resource.command.clone(),
                                uid: Some(o.uid),
                            })
                        })
                        .clone(),
                    None => self
                        .by_pid
                        .entry((c.source, r.pid()))
                        .or_insert_with(|| {
                            Arc::new(OtlpResource {
                                pid: r.pid(),
                                uid: Some(c.uid),
                                ..OtlpResource::default()
                            })
                        })
                        .clone(),
                };
                let attributes = r
                    .fields()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::Str(s) => AttrValue::Str(s.to_string()),
                            Value::I64(x) => AttrValue::I64(x),
                            Value::U64(x) => AttrValue::U64(x),
                            Value::F64(x) => AttrValue::F64(x),
                            Value::Bool(x) => AttrValue::Bool(x),
                        };
                        (k.to_string(), v)
                    })
                    .collect();
                self.records.push(OtlpRecord {
                    time_ns: r.time_ns(),
                    observed_ns: c.polled_ns,
                    severity: r.severity(),
                    severity_text: r.level().name(),
                    body: r.message().to_string(),
                    target: r.target().to_string(),
                    attributes,
                    trace_id: r.trace_id(),
                    span_id: r.span_id(),
                    trace_flags: r.trace_flags(),
                    resource,
                });
            }
        }
    }
}

impl Output for OtlpSink {
    fn write(&mut self, jobs: &[Job]) -> WriteOutcome {
        if self.records.is_empty() {
            self.convert(jobs);
            self.sent = 0;
        }
        while self.sent < self.records.len() {
            let end = (self.sent + self.batch).min(self.records.len());
            let part = &self.records[self.sent..end];
            match self.exporter.export(part) {
                Ok(()) => self.partially_rejected += self.exporter.take_rejected(),
                Err(e) if !e.is_retryable() => {
                    let (last, levels) = self.refused.get_or_insert((String::new(), [0; LEVELS]));
                    *last = e.to_string();
                    for r in part {
                        if let Some(l) = Level::from_severity(r.severity) {
                            levels[l as usize] += 1;
                        }
                    }
                }
                Err(e) => return WriteOutcome::RetryLater(e.to_string()),
            }
            self.sent = end;
        }
        self.records.clear();
        self.sent = 0;
        let partially_rejected = std::mem::take(&mut self.partially_rejected);
        match self.refused.take() {
            None => WriteOutcome::Written { partially_rejected },
            Some((last, levels)) => WriteOutcome::Rejected {
                levels,
                last,
                partially_rejected,
            },
        }
    }

    fn discard(&mut self) {
        // The group given up is counted whole by the sink loop: none of its
        // refusals may be counted again against a later group.
        self.records.clear();
        self.sent = 0;
        self.refused = None;
        self.partially_rejected = 0;
    }

    fn group_records(&self) -> usize {
        self.batch
    }
}
