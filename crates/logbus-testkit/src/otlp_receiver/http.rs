//! The OTLP/HTTP receiver: a small HTTP/1.1 server on std sockets, one thread per
//! connection, decoding `POST /v1/logs` protobuf bodies with prost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use prost::Message;

/// The OTLP/HTTP logs path (the specification's default).
const HTTP_LOGS_PATH: &str = "/v1/logs";

use super::{ExportLogsServiceRequest, ExportLogsServiceResponse, Received, Store};

/// Bodies above this are refused (the OTLP exporter's own limit is far below).
const MAX_BODY: usize = 64 << 20;

/// The accept thread and every connection it opened.
#[derive(Default)]
pub(super) struct Connections {
    streams: Vec<TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

pub(super) struct HttpServer {
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Connections>>,
    accept: JoinHandle<()>,
}

impl HttpServer {
    /// Serves on `listener`; with `refuse`, answers every request that
    /// decodes with that status instead of 200.
    pub(super) fn start(
        listener: TcpListener,
        store: Arc<Store>,
        refuse: Option<u16>,
    ) -> HttpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Connections::default()));
        let accept = {
            let stop = Arc::clone(&stop);
            let connections = Arc::clone(&connections);
            std::thread::Builder::new()
                .name("otlp-http-receiver".into())
                .spawn(move || accept_loop(listener, store, refuse, stop, connections))
                .unwrap_or_else(|e| panic!("OTLP test receiver: thread: {e}"))
        };
        HttpServer {
            stop,
            connections,
            accept,
        }
    }

    pub(super) fn stop(self, addr: SocketAddr) {
        stop_accepting(&self.stop, addr, self.accept);
        let connections =
            std::mem::take(&mut *self.connections.lock().unwrap_or_else(|p| p.into_inner()));
        for stream in &connections.streams {
            // Unblocks the connection thread's read.
            let _ = stream.shutdown(Shutdown::Both);
        }
        for thread in connections.threads {
            let _ = thread.join();
        }
    }
}

/// Raises the stop flag, wakes the blocking `accept` with a connection of our own, and
/// joins the accept thread.
pub(super) fn stop_accepting(stop: &AtomicBool, addr: SocketAddr, accept: JoinHandle<()>) {
    // SYNC POINT (pairs with the Acquire loads in the accept loops): the flag guards no
    // data; Release makes it visible to the accept thread no later than the wake-up
    // connection below, which that thread can only accept after this store.
    stop.store(true, Ordering::Release);
    let _ = TcpStream::connect(addr);
    let _ = accept.join();
}

fn accept_loop(
    listener: TcpListener,
    store: Arc<Store>,
    refuse: Option<u16>,
    stop: Arc<AtomicBool>,
    connections: Arc<Mutex<Connections>>,
) {
    for stream in listener.incoming() {
        // SYNC POINT (pairs with the Release store in `stop_accepting`).
        if stop.load(Ordering::Acquire) {
            break;
        }
        let Ok(stream) = stream else { continue };
        store.connected();
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let store = Arc::clone(&store);
        let thread = std::thread::Builder::new()
            .name("otlp-http-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &store, refuse);
            });
        let mut connections = connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.streams.push(clone);
        if let Ok(thread) = thread {
            connections.threads.push(thread);
        }
    }
}

/// One parsed request head.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves requests on one keep-alive connection until the client closes it.
fn serve_connection(stream: TcpStream, store: &Store, refuse: Option<u16>) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader)? {
        let close = head
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let Some(body) = read_body(&mut reader, &mut writer, &head)? else {
            return Ok(());
        };
        answer(&mut writer, head, &body, store, refuse)?;
        if close {
            break;
        }
    }
    Ok(())
}

/// Reads the body `head` announces; `None` (after answering 411 or 413)
/// when it gives no length or too large a one: the connection then ends.
fn read_body(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    head: &Head,
) -> std::io::Result<Option<Vec<u8>>> {
    let Some(length) = head
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
    else {
        respond(
            writer,
            "411 Length Required",
            "text/plain",
            b"Content-Length required",
        )?;
        return Ok(None);
    };
    if length > MAX_BODY {
        respond(
            writer,
            "413 Payload Too Large",
            "text/plain",
            b"body too large",
        )?;
        return Ok(None);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Answers one request: 404 or 415 for what is not an OTLP logs export, 400
/// for a body that does not decode, else the export is stored and answered
/// 200 (or, with `refuse`, kept apart and answered with that status).
fn answer(
    writer: &mut TcpStream,
    head: Head,
    body: &[u8],
    store: &Store,
    refuse: Option<u16>,
) -> std::io::Result<()> {
    if head.method != "POST" || head.path != HTTP_LOGS_PATH {
        return respond(writer, "404 Not Found", "text/plain", b"only POST /v1/logs");
    }
    if !head
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/x-protobuf"))
    {
        return respond(
            writer,
            "415 Unsupported Media Type",
            "text/plain",
            b"application/x-protobuf only",
        );
    }
    let request = match ExportLogsServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            return respond(
                writer,
                "400 Bad Request",
                "text/plain",
                e.to_string().as_bytes(),
            )
        }
    };
    let received = Received {
        headers: head.headers,
        path: head.path,
        request,
    };
    match refuse {
        Some(status) => {
            store.refuse(received);
            respond(
                writer,
                &format!("{status} {}", reason(status)),
                "text/plain",
                b"the test receiver refuses every request",
            )
        }
        None => {
            store.push(received);
            let answer = ExportLogsServiceResponse {
                partial_success: None,
            }
            .encode_to_vec();
            respond(writer, "200 OK", "application/x-protobuf", &answer)
        }
    }
}

/// Reads a request line and headers; `None` when the client closed the connection.
fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    Ok(Some(Head {
        method,
        path,
        headers,
    }))
}

/// A reason phrase for the status line (clients go by the code alone).
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Refused",
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}
