//! Exports to a real OTLP receiver (gRPC and HTTP/protobuf, over loopback sockets) and
//! checks what arrives, field by field.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbus_otlp::{
    AttrValue, OtlpConfig, OtlpError, OtlpExporter, OtlpRecord, OtlpResource, Protocol,
};
use logbus_testkit::otlp_receiver::{Code, ReceivedLog, Receiver, Value};

/// Long enough never to expire on a loaded machine; the waits return as soon as the
/// condition holds.
const PATIENCE: Duration = Duration::from_secs(30);

const TRACE_ID: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const SPAN_ID: [u8; 8] = [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8];
const T0: u64 = 1_700_000_000_123_456_789;

fn config(receiver: &Receiver, protocol: Protocol) -> OtlpConfig {
    OtlpConfig {
        endpoint: Some(receiver.endpoint()),
        protocol: Some(protocol),
        timeout: Some(PATIENCE),
        headers: vec![],
    }
}

fn alpha() -> OtlpResource {
    OtlpResource {
        service_name: "alpha".into(),
        service_version: "1.2.3".into(),
        host_name: "host-a".into(),
        pid: 1111,
        command: "alpha --serve --port 80".into(),
        uid: Some(1000),
    }
}

/// A record whose producer registered no resource: only host and pid known.
fn anonymous() -> OtlpResource {
    OtlpResource {
        host_name: "host-b".into(),
        pid: 2222,
        ..Default::default()
    }
}

fn record(
    resource: &Arc<OtlpResource>,
    severity: u8,
    text: &'static str,
    body: &str,
) -> OtlpRecord {
    OtlpRecord {
        time_ns: T0,
        observed_ns: T0 + 1_000,
        severity,
        severity_text: text,
        body: body.into(),
        target: String::new(),
        attributes: vec![],
        trace_id: None,
        span_id: None,
        trace_flags: 0,
        resource: Arc::clone(resource),
    }
}

/// Two resources interleaved (one of them through two distinct but equal `Arc`s),
/// every attribute type, with and without trace context.
fn mixed_batch() -> Vec<OtlpRecord> {
    let a = Arc::new(alpha());
    let a_again = Arc::new(alpha());
    let b = Arc::new(anonymous());

    let mut full = record(&a, 9, "INFO", "hello");
    full.target = "app::alpha".into();
    full.attributes = vec![
        ("s".into(), AttrValue::Str("text".into())),
        ("i".into(), AttrValue::I64(-42)),
        ("u".into(), AttrValue::U64(42)),
        ("big".into(), AttrValue::U64(u64::MAX)),
        ("f".into(), AttrValue::F64(1.5)),
        ("b".into(), AttrValue::Bool(true)),
    ];
    full.trace_id = Some(TRACE_ID);
    full.span_id = Some(SPAN_ID);
    full.trace_flags = 1;

    let mut plain = record(&b, 17, "ERROR", "boom");
    plain.target = "app::beta".into();
    plain.time_ns = T0 + 5;
    plain.observed_ns = T0 + 7;

    let mut untargeted = record(&a_again, 5, "DEBUG", "no target");
    untargeted.attributes = vec![("empty".into(), AttrValue::Str(String::new()))];

    let mut fatal = record(&b, 21, "FATAL", "unicode ✓ \"quoted\"\nsecond line");
    fatal.target = "app::beta".into();

    vec![full, plain, untargeted, fatal]
}

fn by_body<'a>(records: &'a [ReceivedLog], body: &str) -> &'a ReceivedLog {
    records
        .iter()
        .find(|r| r.body() == Some(body))
        .unwrap_or_else(|| panic!("no record with body {body:?} in {records:#?}"))
}

fn string(v: &str) -> Option<Value> {
    Some(Value::StringValue(v.into()))
}

/// The compliance check every transport passes.
fn assert_mixed_batch_arrives(receiver: &Receiver, protocol: Protocol) {
    let mut exporter = OtlpExporter::new(&config(receiver, protocol)).unwrap();
    exporter
        .export(&mixed_batch())
        .expect("export acknowledged");
    // Acknowledged means stored: no waiting needed, but wait anyway to get a clear
    // failure message rather than a race if that ever changes.
    let records = receiver.wait_for_records(4, PATIENCE);
    assert_eq!(records.len(), 4, "{records:#?}");

    // Grouping: one request per resource, in order of first appearance, each with one
    // resource; equal resources behind different Arcs go together.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.resource_logs.len() == 1));

    let full = by_body(&records, "hello");
    let plain = by_body(&records, "boom");
    let untargeted = by_body(&records, "no target");
    let fatal = by_body(&records, "unicode ✓ \"quoted\"\nsecond line");
    assert_eq!(full.request, 0);
    assert_eq!(untargeted.request, 0);
    assert_eq!(plain.request, 1);
    assert_eq!(fatal.request, 1);

    // Resource attributes.
    for r in [full, untargeted] {
        assert_eq!(r.resource_attr("service.name").cloned(), string("alpha"));
        assert_eq!(r.resource_attr("service.version").cloned(), string("1.2.3"));
        assert_eq!(r.resource_attr("host.name").cloned(), string("host-a"));
        assert_eq!(
            r.resource_attr("process.pid").cloned(),
            Some(Value::IntValue(1111))
        );
        assert_eq!(
            r.resource_attr("process.command_line").cloned(),
            string("alpha --serve --port 80")
        );
        assert_eq!(
            r.resource_attr("process.user.id").cloned(),
            Some(Value::IntValue(1000))
        );
        assert_eq!(r.resource.len(), 6, "{:?}", r.resource);
    }
    for r in [plain, fatal] {
        assert_eq!(
            r.resource_attr("service.name").cloned(),
            string("unknown_service")
        );
        assert_eq!(r.resource_attr("host.name").cloned(), string("host-b"));
        assert_eq!(
            r.resource_attr("process.pid").cloned(),
            Some(Value::IntValue(2222))
        );
        assert_eq!(r.resource_attr("service.version"), None);
        assert_eq!(r.resource_attr("process.command_line"), None);
        assert_eq!(r.resource_attr("process.user.id"), None);
    }

    // Severity, body, scope, times.
    assert_eq!(
        (
            full.record.severity_number,
            full.record.severity_text.as_str()
        ),
        (9, "INFO")
    );
    assert_eq!(
        (
            plain.record.severity_number,
            plain.record.severity_text.as_str()
        ),
        (17, "ERROR")
    );
    assert_eq!(
        (
            untargeted.record.severity_number,
            untargeted.record.severity_text.as_str()
        ),
        (5, "DEBUG")
    );
    assert_eq!(
        (
            fatal.record.severity_number,
            fatal.record.severity_text.as_str()
        ),
        (21, "FATAL")
    );
    assert_eq!(full.scope, "app::alpha");
    assert_eq!(plain.scope, "app::beta");
    assert_eq!(fatal.scope, "app::beta");
    assert_eq!(untargeted.scope, "logbus");
    assert_eq!(full.record.time_unix_nano, T0);
    assert_eq!(full.record.observed_time_unix_nano, T0 + 1_000);
    assert_eq!(plain.record.time_unix_nano, T0 + 5);
    assert_eq!(plain.record.observed_time_unix_nano, T0 + 7);

    // Attributes: order and types kept; the target is not repeated as an attribute.
    let attrs: Vec<(&str, Option<Value>)> = full
        .record
        .attributes
        .iter()
        .map(|kv| {
            (
                kv.key.as_str(),
                kv.value.as_ref().and_then(|v| v.value.clone()),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        vec![
            ("s", string("text")),
            ("i", Some(Value::IntValue(-42))),
            ("u", Some(Value::IntValue(42))),
            ("big", string("18446744073709551615")),
            ("f", Some(Value::DoubleValue(1.5))),
            ("b", Some(Value::BoolValue(true))),
        ]
    );
    assert_eq!(untargeted.attr("empty").cloned(), string(""));
    assert!(plain.record.attributes.is_empty());

    // Trace context only where given.
    assert_eq!(full.record.trace_id, TRACE_ID.to_vec());
    assert_eq!(full.record.span_id, SPAN_ID.to_vec());
    assert_eq!(full.record.flags, 1);
    for r in [plain, untargeted, fatal] {
        assert!(r.record.trace_id.is_empty() && r.record.span_id.is_empty());
        assert_eq!(r.record.flags, 0);
    }

    exporter.shutdown().unwrap();
}

#[test]
fn grpc_export_delivers_every_field_grouped_by_resource() {
    let receiver = Receiver::start();
    assert_mixed_batch_arrives(&receiver, Protocol::Grpc);
    assert!(receiver
        .received()
        .iter()
        .all(|r| r.path == "/opentelemetry.proto.collector.logs.v1.LogsService/Export"));
}

#[test]
fn http_export_delivers_every_field_grouped_by_resource() {
    let receiver = Receiver::start_http();
    assert_mixed_batch_arrives(&receiver, Protocol::HttpProtobuf);
    assert!(receiver.received().iter().all(|r| r.path == "/v1/logs"));
}

#[test]
fn one_exporter_sends_many_batches_and_switches_resources_back_and_forth() {
    let receiver = Receiver::start();
    let mut exporter = OtlpExporter::new(&config(&receiver, Protocol::Grpc)).unwrap();
    let a = Arc::new(alpha());
    let b = Arc::new(anonymous());
    for round in 0..5u8 {
        let resource = if round % 2 == 0 { &a } else { &b };
        exporter
            .export(&[record(resource, 9, "INFO", &format!("round {round}"))])
            .unwrap();
    }
    let records = receiver.wait_for_records(5, PATIENCE);
    assert_eq!(records.len(), 5);
    for (round, r) in records.iter().enumerate() {
        assert_eq!(r.body(), Some(format!("round {round}").as_str()));
        let expected = if round % 2 == 0 {
            "alpha"
        } else {
            "unknown_service"
        };
        assert_eq!(r.resource_attr("service.name").cloned(), string(expected));
    }
    exporter.shutdown().unwrap();
}

#[test]
fn a_partial_success_is_counted_not_retried() {
    // The endpoint takes the request but rejects 2 of its 5 records: export
    // succeeds (sending them again would not help) and says how many.
    let receiver = Receiver::start_partial(2);
    let mut exporter = OtlpExporter::new(&config(&receiver, Protocol::Grpc)).unwrap();
    let resource = Arc::new(alpha());
    let batch: Vec<_> = (0..5)
        .map(|i| record(&resource, 9, "INFO", &format!("p{i}")))
        .collect();
    exporter.export(&batch).unwrap();
    assert_eq!(exporter.take_rejected(), 2);
    assert_eq!(exporter.take_rejected(), 0, "taken");
    assert_eq!(receiver.requests().len(), 1, "not sent again");
    // A full success after it counts nothing.
    let ok = Receiver::start();
    let mut exporter = OtlpExporter::new(&config(&ok, Protocol::Grpc)).unwrap();
    exporter.export(&batch).unwrap();
    assert_eq!(exporter.take_rejected(), 0);
}

#[test]
fn an_empty_export_sends_nothing() {
    let receiver = Receiver::start();
    let mut exporter = OtlpExporter::new(&config(&receiver, Protocol::Grpc)).unwrap();
    exporter.export(&[]).unwrap();
    // The exporter answered without a request; then a real one arrives alone.
    exporter
        .export(&[record(&Arc::new(alpha()), 9, "INFO", "only")])
        .unwrap();
    assert_eq!(receiver.requests().len(), 1);
}

fn assert_headers_arrive(receiver: &Receiver, protocol: Protocol) {
    let mut config = config(receiver, protocol);
    config.headers = vec![
        ("X-Tenant".into(), "blue".into()),
        ("authorization".into(), "Bearer t0k".into()),
    ];
    let mut exporter = OtlpExporter::new(&config).unwrap();
    exporter
        .export(&[record(&Arc::new(alpha()), 9, "INFO", "with headers")])
        .unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let headers: HashMap<&str, &str> = received[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(headers.get("x-tenant"), Some(&"blue"), "{headers:?}");
    assert_eq!(
        headers.get("authorization"),
        Some(&"Bearer t0k"),
        "{headers:?}"
    );
}

#[test]
fn configured_headers_reach_a_grpc_receiver() {
    assert_headers_arrive(&Receiver::start(), Protocol::Grpc);
}

#[test]
fn configured_headers_reach_an_http_receiver() {
    assert_headers_arrive(&Receiver::start_http(), Protocol::HttpProtobuf);
}

fn assert_stalled_times_out(protocol: Protocol) {
    let receiver = Receiver::start_stalled();
    let timeout = Duration::from_millis(400);
    let mut exporter = OtlpExporter::new(&OtlpConfig {
        endpoint: Some(receiver.endpoint()),
        protocol: Some(protocol),
        timeout: Some(timeout),
        headers: vec![],
    })
    .unwrap();
    let started = Instant::now();
    let result = exporter.export(&[record(&Arc::new(alpha()), 9, "INFO", "into the void")]);
    let took = started.elapsed();
    assert_eq!(result, Err(OtlpError::Timeout));
    // It really reached the receiver (and was not refused).
    assert!(receiver.wait_for_connections(1, PATIENCE) >= 1);
    // A liveness bound, not a speed goal: a stall must not hold the caller for long
    // past its timeout (the margin absorbs scheduling on a loaded machine).
    assert!(
        took < timeout + Duration::from_secs(10),
        "export took {took:?}"
    );
    // And a stalled endpoint leaves the exporter usable.
    assert_eq!(
        exporter.export(&[record(&Arc::new(alpha()), 9, "INFO", "again")]),
        Err(OtlpError::Timeout)
    );
}

#[test]
fn a_stalled_grpc_endpoint_times_out() {
    assert_stalled_times_out(Protocol::Grpc);
}

#[test]
fn a_stalled_http_endpoint_times_out() {
    assert_stalled_times_out(Protocol::HttpProtobuf);
}

#[test]
fn an_unreachable_endpoint_fails_with_one_line() {
    // Port 1 (tcpmux): privileged and unused, so the connection is refused. A port
    // freed by this test could be handed to another test's receiver meanwhile.
    let port = 1;
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let mut exporter = OtlpExporter::new(&OtlpConfig {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            protocol: Some(protocol),
            timeout: Some(Duration::from_millis(300)),
            headers: vec![],
        })
        .unwrap();
        let err = exporter
            .export(&[record(&Arc::new(alpha()), 9, "INFO", "x")])
            .unwrap_err();
        assert!(
            matches!(err, OtlpError::Export(_) | OtlpError::Timeout),
            "{protocol}: {err:?}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}

#[test]
fn a_wrong_http_path_is_a_permanent_rejection() {
    let receiver = Receiver::start_http();
    let mut config = config(&receiver, Protocol::HttpProtobuf);
    config.endpoint = Some(format!("{}/not/logs", receiver.endpoint()));
    config.timeout = Some(Duration::from_secs(5));
    let mut exporter = OtlpExporter::new(&config).unwrap();
    let err = exporter
        .export(&[record(&Arc::new(alpha()), 9, "INFO", "x")])
        .unwrap_err();
    assert!(
        matches!(err, OtlpError::Rejected(ref text) if text.contains("404")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(receiver.requests().is_empty());
}

/// One export of two records to an endpoint that refuses every request: the
/// error, and the requests the endpoint answered (transport retries included).
fn refused_export(receiver: &Receiver, protocol: Protocol) -> (OtlpError, usize) {
    let mut exporter = OtlpExporter::new(&config(receiver, protocol)).unwrap();
    let resource = Arc::new(alpha());
    let err = exporter
        .export(&[
            record(&resource, 9, "INFO", "refused 1"),
            record(&resource, 17, "ERROR", "refused 2"),
        ])
        .unwrap_err();
    assert!(!err.to_string().contains('\n'), "{err}");
    assert!(receiver.records().is_empty(), "nothing was taken");
    // Every attempt carried the whole group.
    let refused = receiver.refused();
    assert!(
        refused
            .iter()
            .all(|r| r.request.resource_logs[0].scope_logs[0].log_records.len() == 2),
        "{refused:#?}"
    );
    exporter.shutdown().unwrap();
    (err, refused.len())
}

/// The gRPC statuses the OTLP specification says not to retry, and the sink
/// takes as final: each is `Rejected`, not retryable, and was sent once (the
/// transport does not retry it either).
#[test]
fn a_grpc_refusal_for_good_is_rejected_and_not_retryable() {
    for code in [
        Code::InvalidArgument,
        Code::PermissionDenied,
        Code::Unauthenticated,
        Code::NotFound,
        Code::Unimplemented,
        Code::FailedPrecondition,
        Code::Unknown,
        Code::Internal,
        Code::AlreadyExists,
    ] {
        let receiver = Receiver::start_refusing(code);
        let (err, requests) = refused_export(&receiver, Protocol::Grpc);
        assert!(
            matches!(err, OtlpError::Rejected(ref text) if text.contains(&format!("{code:?}"))),
            "{code:?}: {err:?}"
        );
        assert!(!err.is_retryable(), "{code:?}: {err:?}");
        assert_eq!(requests, 1, "{code:?} sent again");
    }
}

/// UNAVAILABLE and RESOURCE_EXHAUSTED say "not now": a retryable export
/// failure, not a rejection (nor a timeout: the endpoint answered).
#[test]
fn a_grpc_refusal_for_now_is_retryable() {
    for code in [
        Code::Unavailable,
        Code::ResourceExhausted,
        Code::Aborted,
        Code::DataLoss,
    ] {
        let receiver = Receiver::start_refusing(code);
        let (err, requests) = refused_export(&receiver, Protocol::Grpc);
        assert!(
            matches!(err, OtlpError::Export(ref text) if text.contains(&format!("{code:?}"))),
            "{code:?}: {err:?}"
        );
        assert!(err.is_retryable(), "{code:?}: {err:?}");
        assert!(requests >= 1, "{code:?}");
        eprintln!("{code:?}: {requests} requests in one export; {err}");
    }
}

#[test]
fn an_http_refusal_for_good_is_rejected_and_not_retryable() {
    for status in [400, 401, 403, 404, 405, 409, 413, 422, 500, 501] {
        let receiver = Receiver::start_http_refusing(status);
        let (err, requests) = refused_export(&receiver, Protocol::HttpProtobuf);
        assert!(
            matches!(err, OtlpError::Rejected(ref text) if text.contains(&status.to_string())),
            "{status}: {err:?}"
        );
        assert!(!err.is_retryable(), "{status}: {err:?}");
        assert_eq!(requests, 1, "{status} sent again");
    }
}

#[test]
fn an_http_refusal_for_now_is_retryable() {
    for status in [429, 502, 503, 504] {
        let receiver = Receiver::start_http_refusing(status);
        let (err, requests) = refused_export(&receiver, Protocol::HttpProtobuf);
        assert!(
            matches!(err, OtlpError::Export(ref text) if text.contains(&status.to_string())),
            "{status}: {err:?}"
        );
        assert!(err.is_retryable(), "{status}: {err:?}");
        assert!(requests >= 1, "{status}");
        eprintln!("{status}: {requests} requests in one export; {err}");
    }
}

#[test]
fn bad_configuration_is_refused_at_construction() {
    let err = OtlpExporter::new(&OtlpConfig {
        endpoint: Some("localhost:4317".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, OtlpError::Config(_)), "{err:?}");
}

#[test]
fn an_injected_environment_picks_endpoint_protocol_and_headers() {
    let receiver = Receiver::start_http();
    let endpoint = receiver.endpoint();
    let env = |name: &str| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL" => Some("http/protobuf".into()),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-injected=1".into()),
        _ => None,
    };
    let resolved = OtlpConfig::default().resolve_with(env).unwrap();
    assert_eq!(resolved.endpoint, format!("{endpoint}/v1/logs"));
    let mut exporter = OtlpExporter::with_resolved(resolved).unwrap();
    exporter
        .export(&[record(&Arc::new(alpha()), 9, "INFO", "from injected env")])
        .unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert!(received[0]
        .headers
        .contains(&("x-injected".into(), "1".into())));
}

/// Set by the parent test for the child it spawns.
const CHILD_MARK: &str = "LOGBUS_OTLP_ENV_CHILD";

/// Run only as a child of `the_process_environment_is_honoured`: exports with an
/// all-`None` configuration, so everything comes from the variables it was given.
#[test]
#[ignore = "run by the_process_environment_is_honoured in a child process"]
fn env_child_exports_with_default_config() {
    if std::env::var_os(CHILD_MARK).is_none() {
        return;
    }
    let mut exporter = OtlpExporter::new(&OtlpConfig::default()).unwrap();
    assert_eq!(exporter.config().protocol, Protocol::HttpProtobuf);
    exporter
        .export(&[record(
            &Arc::new(alpha()),
            13,
            "WARN",
            "from the environment",
        )])
        .unwrap();
    exporter.shutdown().unwrap();
}

#[test]
fn the_process_environment_is_honoured() {
    let receiver = Receiver::start_http();
    // The child gets the variables; this process's environment is left alone.
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "env_child_exports_with_default_config",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_MARK, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "30000")
        .env("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-from-env=yes%21")
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "child test failed: {}\n{}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    let records = receiver.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].body(), Some("from the environment"));
    assert_eq!(records[0].record.severity_number, 13);
    assert!(receiver.received()[0]
        .headers
        .contains(&("x-from-env".into(), "yes!".into())));
}

#[test]
fn the_exporter_can_move_to_a_sink_thread() {
    fn is_send<T: Send>() {}
    is_send::<OtlpExporter>();
    let receiver = Receiver::start();
    let mut exporter = OtlpExporter::new(&config(&receiver, Protocol::Grpc)).unwrap();
    std::thread::spawn(move || {
        exporter
            .export(&[record(&Arc::new(alpha()), 9, "INFO", "from a thread")])
            .unwrap();
        exporter.shutdown().unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(receiver.wait_for_records(1, PATIENCE).len(), 1);
}
