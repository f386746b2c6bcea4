//! Where and how to send: [`OtlpConfig`], its resolution against the standard
//! `OTEL_EXPORTER_OTLP_*` environment variables, and the result, [`ResolvedConfig`].
//!
//! Each setting is taken from the first of these that has it (an empty variable counts
//! as unset):
//!
//! | setting  | 1. explicit            | 2. logs-specific variable           | 3. generic variable           | 4. default |
//! |----------|------------------------|-------------------------------------|-------------------------------|------------|
//! | protocol | `OtlpConfig::protocol` | `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`  | `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc` |
//! | endpoint | `OtlpConfig::endpoint` | `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`  | `OTEL_EXPORTER_OTLP_ENDPOINT` | `http://localhost:4317` (gRPC), `http://localhost:4318/v1/logs` (HTTP) |
//! | timeout  | `OtlpConfig::timeout`  | `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`   | `OTEL_EXPORTER_OTLP_TIMEOUT`  | 10 s |
//!
//! Headers are merged instead: the generic `OTEL_EXPORTER_OTLP_HEADERS`, then
//! `OTEL_EXPORTER_OTLP_LOGS_HEADERS`, then `OtlpConfig::headers`, a later source replacing
//! an earlier header of the same name (names compare case-insensitively). The variables
//! hold `key=value` pairs separated by commas, values percent-decoded.
//!
//! Endpoints follow the OTLP exporter specification: for HTTP/protobuf the generic
//! variable is a base URL to which `/v1/logs` is appended, while the logs-specific one
//! is used as it is. An explicit endpoint is used as it is when it has a path, and gets
//! `/v1/logs` when it has none (`http://collector:4318` and
//! `http://collector:4318/v1/logs` both work). For gRPC every endpoint is used as it is.
//! Timeouts in variables are whole milliseconds. Protocols are `grpc` and
//! `http/protobuf`; `http/json` is refused. Only `http://` endpoints are accepted: this
//! build has no TLS.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::OtlpError;

/// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`: the logs endpoint, used as it is.
pub const LOGS_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: the base endpoint of every signal.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL`: `grpc` or `http/protobuf` for logs.
pub const LOGS_PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf` for every signal.
pub const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT`: milliseconds per logs export.
pub const LOGS_TIMEOUT_ENV: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: milliseconds per export of every signal.
pub const TIMEOUT_ENV: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_LOGS_HEADERS`: `k=v,k2=v2` added to logs exports.
pub const LOGS_HEADERS_ENV: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `k=v,k2=v2` added to every export.
pub const HEADERS_ENV: &str = "OTEL_EXPORTER_OTLP_HEADERS";

/// The default gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The default HTTP/protobuf logs endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/logs";
/// The default export timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The path of the logs service on an OTLP/HTTP endpoint.
pub const HTTP_LOGS_PATH: &str = "/v1/logs";

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OTLP/gRPC (`grpc`), default port 4317.
    Grpc,
    /// OTLP/HTTP with a protobuf body (`http/protobuf`), default port 4318.
    HttpProtobuf,
}

impl Protocol {
    /// The name used by the `OTEL_EXPORTER_OTLP_PROTOCOL` variable.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Protocol {
    type Err = OtlpError;

    /// Parses `grpc` or `http/protobuf` (any case, surrounding blanks ignored).
    ///
    /// # Errors
    ///
    /// [`OtlpError::Config`] for anything else, including `http/json`, which this
    /// crate does not speak.
    fn from_str(text: &str) -> Result<Protocol, OtlpError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("grpc") {
            Ok(Protocol::Grpc)
        } else if text.eq_ignore_ascii_case("http/protobuf") {
            Ok(Protocol::HttpProtobuf)
        } else if text.eq_ignore_ascii_case("http/json") {
            Err(OtlpError::Config(
                "protocol \"http/json\" is not supported (use grpc or http/protobuf)".into(),
            ))
        } else {
            Err(OtlpError::Config(format!(
                "unknown protocol {text:?} (expected grpc or http/protobuf)"
            )))
        }
    }
}

/// What the caller chose; `None` (and an empty `headers`) falls back to the environment,
/// then to the OTLP defaults, as the [module documentation](self) tabulates.
///
/// # Examples
///
/// ```
/// use logbus_otlp::{OtlpConfig, Protocol};
/// use std::time::Duration;
///
/// let config = OtlpConfig {
///     endpoint: Some("http://collector:4318".into()),
///     protocol: Some(Protocol::HttpProtobuf),
///     timeout: Some(Duration::from_secs(2)),
///     headers: vec![("x-tenant".into(), "blue".into())],
/// };
/// let resolved = config.resolve_with(|_| None).unwrap();
/// assert_eq!(resolved.endpoint, "http://collector:4318/v1/logs");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The endpoint URL (`http://host:port`, see the module docs for paths).
    pub endpoint: Option<String>,
    /// The transport.
    pub protocol: Option<Protocol>,
    /// How long one [`export`](crate::OtlpExporter::export) may wait for the acknowledgement.
    pub timeout: Option<Duration>,
    /// Extra request headers (gRPC metadata), added to those from the environment.
    pub headers: Vec<(String, String)>,
}

/// A configuration with every setting decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    /// The URL requests go to (for HTTP, including the `/v1/logs` path).
    pub endpoint: String,
    /// The transport.
    pub protocol: Protocol,
    /// The bound on one export.
    pub timeout: Duration,
    /// Request headers, names lower-cased, in a stable order.
    pub headers: Vec<(String, String)>,
}

impl OtlpConfig {
    /// Resolves against the process environment.
    ///
    /// # Errors
    ///
    /// [`OtlpError::Config`] naming the setting (or variable) that is unusable.
    pub fn resolve(&self) -> Result<ResolvedConfig, OtlpError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Resolves against `env`, a lookup standing for the environment (tests pass a map,
    /// so that they never touch the process-wide environment).
    ///
    /// # Errors
    ///
    /// [`OtlpError::Config`] naming the setting (or variable) that is unusable.
    ///
    /// # Examples
    ///
    /// ```
    /// use logbus_otlp::{OtlpConfig, Protocol};
    ///
    /// let env = |name: &str| match name {
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://otel:4318/".to_string()),
    ///     "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".to_string()),
    ///     "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("2500".to_string()),
    ///     _ => None,
    /// };
    /// let resolved = OtlpConfig::default().resolve_with(env).unwrap();
    /// assert_eq!(resolved.protocol, Protocol::HttpProtobuf);
    /// assert_eq!(resolved.endpoint, "http://otel:4318/v1/logs");
    /// assert_eq!(resolved.timeout.as_millis(), 2500);
    /// ```
    pub fn resolve_with<F>(&self, env: F) -> Result<ResolvedConfig, OtlpError>
    where
        F: Fn(&str) -> Option<String>,
    {
        // Empty variables are unset, as the specification asks.
        let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let protocol = self.resolve_protocol(&var)?;
        Ok(ResolvedConfig {
            endpoint: self.resolve_endpoint(protocol, &var)?,
            protocol,
            timeout: self.resolve_timeout(&var)?,
            headers: self.resolve_headers(&var)?,
        })
    }

    /// The protocol: this config's, else the environment's, else gRPC.
    fn resolve_protocol(&self, var: &Env<'_>) -> Result<Protocol, OtlpError> {
        Ok(match self.protocol {
            Some(protocol) => protocol,
            None => match var(LOGS_PROTOCOL_ENV)
                .map(|v| (LOGS_PROTOCOL_ENV, v))
                .or_else(|| var(PROTOCOL_ENV).map(|v| (PROTOCOL_ENV, v)))
            {
                Some((name, value)) => value.parse().map_err(|err| in_variable(name, err))?,
                None => Protocol::Grpc,
            },
        })
    }

    /// The endpoint: this config's (with the logs path for HTTP when it has
    /// none), else the environment's logs endpoint as it is, else its base
    /// endpoint (with the logs path for HTTP), else the protocol's default.
    fn resolve_endpoint(&self, protocol: Protocol, var: &Env<'_>) -> Result<String, OtlpError> {
        Ok(
            if let Some(explicit) = self.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
                let explicit = check_url("endpoint", explicit)?;
                match protocol {
                    Protocol::HttpProtobuf if !has_path(&explicit) => join_logs_path(&explicit),
                    _ => explicit,
                }
            } else if let Some(value) = var(LOGS_ENDPOINT_ENV) {
                check_url(LOGS_ENDPOINT_ENV, &value)?
            } else if let Some(value) = var(ENDPOINT_ENV) {
                let base = check_url(ENDPOINT_ENV, &value)?;
                match protocol {
                    Protocol::Grpc => base,
                    Protocol::HttpProtobuf => join_logs_path(&base),
                }
            } else {
                match protocol {
                    Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_string(),
                    Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT.to_string(),
                }
            },
        )
    }

    /// The export timeout: this config's, else the environment's, else the
    /// default; above zero.
    fn resolve_timeout(&self, var: &Env<'_>) -> Result<Duration, OtlpError> {
        let timeout = match self.timeout {
            Some(timeout) => timeout,
            None => match var(LOGS_TIMEOUT_ENV)
                .map(|v| (LOGS_TIMEOUT_ENV, v))
                .or_else(|| var(TIMEOUT_ENV).map(|v| (TIMEOUT_ENV, v)))
            {
                Some((name, value)) => {
                    Duration::from_millis(value.trim().parse().map_err(|_| {
                        OtlpError::Config(format!(
                            "{name}={value:?} is not a whole number of milliseconds"
                        ))
                    })?)
                }
                None => DEFAULT_TIMEOUT,
            },
        };
        if timeout.is_zero() {
            return Err(OtlpError::Config(
                "the export timeout must be above zero".into(),
            ));
        }
        Ok(timeout)
    }

    /// The headers: the environment's (the logs variable winning), then
    /// this config's over them.
    fn resolve_headers(&self, var: &Env<'_>) -> Result<Vec<(String, String)>, OtlpError> {
        let mut headers: Vec<(String, String)> = Vec::new();
        for name in [HEADERS_ENV, LOGS_HEADERS_ENV] {
            if let Some(value) = var(name) {
                for (key, value) in parse_headers(name, &value)? {
                    set_header(&mut headers, key, value);
                }
            }
        }
        for (key, value) in &self.headers {
            check_header(key, value)
                .map_err(|why| OtlpError::Config(format!("header {key:?}: {why}")))?;
            set_header(&mut headers, key.clone(), value.clone());
        }
        Ok(headers)
    }
}

/// The environment as `resolve_with` reads it (empty variables unset).
type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

fn in_variable(name: &str, err: OtlpError) -> OtlpError {
    match err {
        OtlpError::Config(why) => OtlpError::Config(format!("{name}: {why}")),
        other => other,
    }
}

/// Accepts `http://host[:port][/path]`; returns it without surrounding blanks.
fn check_url(setting: &str, url: &str) -> Result<String, OtlpError> {
    let url = url.trim();
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(OtlpError::Config(format!(
            "{setting} {url:?}: https is not supported by this build (no TLS); use http://"
        )));
    } else {
        return Err(OtlpError::Config(format!(
            "{setting} {url:?} is not an http:// URL"
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(OtlpError::Config(format!(
            "{setting} {url:?} has no valid host"
        )));
    }
    Ok(url.to_string())
}

/// Whether an `http://` URL has a path other than `/`.
fn has_path(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    match rest.find('/') {
        Some(slash) => {
            let path = rest[slash..].split(['?', '#']).next().unwrap_or("");
            path != "/"
        }
        None => false,
    }
}

/// `base` + `/v1/logs`, without doubling the slash.
fn join_logs_path(base: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), HTTP_LOGS_PATH)
}

/// Inserts or replaces (case-insensitively) a header; names are stored lower-case, as
/// HTTP/2 and gRPC metadata require.
fn set_header(headers: &mut Vec<(String, String)>, key: String, value: String) {
    let key = key.trim().to_ascii_lowercase();
    match headers.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => headers.push((key, value)),
    }
}

fn check_header(key: &str, value: &str) -> Result<(), &'static str> {
    let key = key.trim();
    if key.is_empty() {
        return Err("empty name");
    }
    // RFC 9110 token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !key.chars().all(token) {
        return Err("the name has characters not allowed in a header name");
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("the value has control characters");
    }
    Ok(())
}

/// Parses `k1=v1,k2=v2` (values percent-decoded).
fn parse_headers(variable: &str, text: &str) -> Result<Vec<(String, String)>, OtlpError> {
    let mut out = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |why: &str| OtlpError::Config(format!("{variable}: entry {pair:?} {why}"));
        let (key, value) = pair.split_once('=').ok_or_else(|| bad("has no '='"))?;
        let value = percent_decode(value.trim()).ok_or_else(|| bad("has a bad %-escape"))?;
        check_header(key, &value).map_err(bad)?;
        out.push((key.trim().to_string(), value));
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_without_environment() {
        let r = OtlpConfig::default().resolve_with(env(&[])).unwrap();
        assert_eq!(r.protocol, Protocol::Grpc);
        assert_eq!(r.endpoint, "http://localhost:4317");
        assert_eq!(r.timeout, DEFAULT_TIMEOUT);
        assert!(r.headers.is_empty());

        let http = OtlpConfig {
            protocol: Some(Protocol::HttpProtobuf),
            ..Default::default()
        };
        assert_eq!(
            http.resolve_with(env(&[])).unwrap().endpoint,
            "http://localhost:4318/v1/logs"
        );
    }

    #[test]
    fn logs_specific_variables_beat_generic_ones_and_explicit_beats_both() {
        let vars = env(&[
            (PROTOCOL_ENV, "grpc"),
            (LOGS_PROTOCOL_ENV, "http/protobuf"),
            (ENDPOINT_ENV, "http://generic:1"),
            (LOGS_ENDPOINT_ENV, "http://logs:2/custom/path"),
            (TIMEOUT_ENV, "100"),
            (LOGS_TIMEOUT_ENV, "200"),
        ]);
        let r = OtlpConfig::default().resolve_with(&vars).unwrap();
        assert_eq!(r.protocol, Protocol::HttpProtobuf);
        // The logs-specific endpoint is used as it is.
        assert_eq!(r.endpoint, "http://logs:2/custom/path");
        assert_eq!(r.timeout, Duration::from_millis(200));

        let explicit = OtlpConfig {
            endpoint: Some("http://explicit:3".into()),
            protocol: Some(Protocol::Grpc),
            timeout: Some(Duration::from_millis(300)),
            headers: vec![],
        };
        let r = explicit.resolve_with(&vars).unwrap();
        assert_eq!(r.protocol, Protocol::Grpc);
        assert_eq!(r.endpoint, "http://explicit:3");
        assert_eq!(r.timeout, Duration::from_millis(300));
    }

    #[test]
    fn generic_http_endpoint_gets_the_logs_path() {
        for base in ["http://otel:4318", "http://otel:4318/"] {
            let r = OtlpConfig::default()
                .resolve_with(env(&[
                    (PROTOCOL_ENV, "http/protobuf"),
                    (ENDPOINT_ENV, base),
                ]))
                .unwrap();
            assert_eq!(r.endpoint, "http://otel:4318/v1/logs");
        }
        let r = OtlpConfig::default()
            .resolve_with(env(&[
                (PROTOCOL_ENV, "http/protobuf"),
                (ENDPOINT_ENV, "http://gw/otlp"),
            ]))
            .unwrap();
        assert_eq!(r.endpoint, "http://gw/otlp/v1/logs");
        // gRPC endpoints are never rewritten.
        let r = OtlpConfig::default()
            .resolve_with(env(&[(ENDPOINT_ENV, "http://otel:4317/")]))
            .unwrap();
        assert_eq!(r.endpoint, "http://otel:4317/");
    }

    #[test]
    fn explicit_http_endpoint_keeps_a_path_and_gets_one_when_missing() {
        let with = |endpoint: &str| OtlpConfig {
            endpoint: Some(endpoint.into()),
            protocol: Some(Protocol::HttpProtobuf),
            ..Default::default()
        };
        assert_eq!(
            with("http://h:1").resolve_with(env(&[])).unwrap().endpoint,
            "http://h:1/v1/logs"
        );
        assert_eq!(
            with("http://h:1/").resolve_with(env(&[])).unwrap().endpoint,
            "http://h:1/v1/logs"
        );
        assert_eq!(
            with("http://h:1/in")
                .resolve_with(env(&[]))
                .unwrap()
                .endpoint,
            "http://h:1/in"
        );
    }

    #[test]
    fn empty_variables_are_unset() {
        let r = OtlpConfig::default()
            .resolve_with(env(&[
                (LOGS_ENDPOINT_ENV, ""),
                (ENDPOINT_ENV, "http://g:9"),
                (LOGS_TIMEOUT_ENV, " "),
            ]))
            .unwrap();
        assert_eq!(r.endpoint, "http://g:9");
        assert_eq!(r.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn headers_merge_in_order_and_decode() {
        let config = OtlpConfig {
            headers: vec![("X-Three".into(), "explicit".into())],
            ..Default::default()
        };
        let r = config
            .resolve_with(env(&[
                (HEADERS_ENV, "x-one=1, x-two=generic,x-three=generic"),
                (LOGS_HEADERS_ENV, "X-Two=a%20b%3Dc"),
            ]))
            .unwrap();
        assert_eq!(
            r.headers,
            vec![
                ("x-one".to_string(), "1".to_string()),
                ("x-two".to_string(), "a b=c".to_string()),
                ("x-three".to_string(), "explicit".to_string()),
            ]
        );
    }

    #[test]
    fn bad_settings_are_config_errors_naming_the_source() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(PROTOCOL_ENV, "http/json")], "http/json"),
            (&[(LOGS_PROTOCOL_ENV, "carrier-pigeon")], LOGS_PROTOCOL_ENV),
            (&[(TIMEOUT_ENV, "soon")], TIMEOUT_ENV),
            (&[(TIMEOUT_ENV, "0")], "above zero"),
            (&[(ENDPOINT_ENV, "localhost:4317")], ENDPOINT_ENV),
            (&[(LOGS_ENDPOINT_ENV, "https://secure:4317")], "https"),
            (&[(HEADERS_ENV, "novalue")], HEADERS_ENV),
            (&[(LOGS_HEADERS_ENV, "k=%zz")], LOGS_HEADERS_ENV),
        ];
        for (vars, needle) in cases {
            let err = OtlpConfig::default().resolve_with(env(vars)).unwrap_err();
            let OtlpError::Config(text) = &err else {
                panic!("{vars:?}: {err:?}")
            };
            assert!(
                text.contains(needle),
                "{vars:?}: {text:?} should mention {needle:?}"
            );
            assert!(!err.to_string().contains('\n'));
        }
        let bad_header = OtlpConfig {
            headers: vec![("bad name".into(), "v".into())],
            ..Default::default()
        };
        assert!(matches!(
            bad_header.resolve_with(env(&[])),
            Err(OtlpError::Config(_))
        ));
    }

    #[test]
    fn protocol_names_round_trip() {
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
            assert_eq!(protocol.to_string().parse::<Protocol>().unwrap(), protocol);
        }
        assert_eq!(" GRPC ".parse::<Protocol>().unwrap(), Protocol::Grpc);
    }
}
