//! Rough export throughput against the in-process test receivers.
//!
//! `cargo run --release -p logbus-otlp --features receiver --example otlp_throughput [records] [batch]`
//!
//! Prints records/s for gRPC and HTTP/protobuf, each export waiting for its
//! acknowledgement (as the collector's OTLP sink does). The receiver runs in the same
//! process, so the figure includes decoding on the receiving side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus_otlp::{AttrValue, OtlpConfig, OtlpExporter, OtlpRecord, OtlpResource, Protocol};
use logbus_testkit::otlp_receiver::Receiver;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let batch: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(512)
        .max(1);

    let resource = Arc::new(OtlpResource {
        service_name: "bench".into(),
        service_version: "1.0.0".into(),
        host_name: "localhost".into(),
        pid: std::process::id(),
        command: "throughput".into(),
        uid: None,
    });
    let records: Vec<OtlpRecord> = (0..batch)
        .map(|i| OtlpRecord {
            time_ns: 1_700_000_000_000_000_000 + i as u64,
            observed_ns: 1_700_000_000_000_000_000 + i as u64,
            severity: 9,
            severity_text: "INFO",
            body: format!("request {i} served"),
            target: "bench::http".into(),
            attributes: vec![
                ("status".into(), AttrValue::I64(200)),
                ("path".into(), AttrValue::Str("/api/orders".into())),
                ("latency_ms".into(), AttrValue::F64(1.25)),
            ],
            trace_id: Some([7; 16]),
            span_id: Some([9; 8]),
            trace_flags: 1,
            resource: Arc::clone(&resource),
        })
        .collect();

    for (name, protocol, receiver) in [
        ("grpc", Protocol::Grpc, Receiver::start()),
        (
            "http/protobuf",
            Protocol::HttpProtobuf,
            Receiver::start_http(),
        ),
    ] {
        let mut exporter = OtlpExporter::new(&OtlpConfig {
            endpoint: Some(receiver.endpoint()),
            protocol: Some(protocol),
            timeout: Some(Duration::from_secs(30)),
            headers: vec![],
        })?;
        exporter.export(&records[..1])?; // connect outside the measurement
        let started = Instant::now();
        let mut sent = 0;
        while sent < total {
            let n = batch.min(total - sent);
            exporter.export(&records[..n])?;
            sent += n;
        }
        let took = started.elapsed();
        println!(
            "{name:>14}: {sent} records in batches of {batch}: {:.0} records/s ({:.1} µs per export)",
            sent as f64 / took.as_secs_f64(),
            took.as_secs_f64() * 1e6 / sent.div_ceil(batch) as f64
        );
        exporter.shutdown()?;
    }
    Ok(())
}
