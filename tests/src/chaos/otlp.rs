//! The collector's OTLP sink's endpoint: `logbus-testkit`'s real gRPC
//! receiver, stopped and started again on the same port. What it received
//! is checked and let go at each stop, so that a long run holds only one
//! receiver's worth.

use std::net::SocketAddr;
use std::time::Duration;

use logbus_testkit::otlp_receiver::Receiver;

use super::checker::{level_of_severity, SinkCheck};

/// The endpoint and what it delivered.
pub struct Endpoint {
    addr: SocketAddr,
    receiver: Option<Receiver>,
    /// Times it was stopped.
    pub stops: u64,
    /// What it received.
    pub check: SinkCheck,
}

impl Endpoint {
    /// A receiver on a free local port.
    pub fn start() -> Endpoint {
        let r = Receiver::start();
        Endpoint {
            addr: r.addr(),
            receiver: Some(r),
            stops: 0,
            check: SinkCheck::new("otlp"),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether it is serving.
    pub fn is_up(&self) -> bool {
        self.receiver.is_some()
    }

    fn harvest(&mut self, r: Receiver) {
        for rec in r.stop() {
            let level = level_of_severity(i64::from(rec.record.severity_number));
            match rec.body() {
                Some(b) => self.check.record(level, b),
                None => {
                    self.check.foreign += 1;
                }
            }
        }
    }

    /// Stops serving (the records so far are checked).
    pub fn stop(&mut self) {
        if let Some(r) = self.receiver.take() {
            self.harvest(r);
            self.stops += 1;
        }
    }

    /// Serves again on the same port; false when the port cannot be bound
    /// yet (tried again later).
    pub fn restart(&mut self) -> bool {
        if self.receiver.is_some() {
            return true;
        }
        if std::net::TcpListener::bind(self.addr).is_err() {
            return false;
        }
        let addr = self.addr;
        match std::panic::catch_unwind(move || Receiver::start_on(addr)) {
            Ok(r) => {
                self.receiver = Some(r);
                true
            }
            Err(_) => false,
        }
    }

    /// At the end (the collector has exited): checks what the receiver
    /// holds (serving again first, within `limit`, if it was stopped).
    pub fn finish(&mut self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while !self.restart() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
    }
}
