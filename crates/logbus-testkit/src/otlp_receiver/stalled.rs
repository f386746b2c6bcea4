//! The stalled receiver: accepts connections, holds them open, never reads nor answers.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::http::stop_accepting;
use super::Store;

pub(super) struct StalledServer {
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    accept: JoinHandle<()>,
}

impl StalledServer {
    pub(super) fn start(listener: TcpListener, store: Arc<Store>) -> StalledServer {
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let stop = Arc::clone(&stop);
            let held = Arc::clone(&held);
            std::thread::Builder::new()
                .name("otlp-stalled-receiver".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        // SYNC POINT (pairs with the Release store in `stop_accepting`).
                        if stop.load(Ordering::Acquire) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            held.lock().unwrap_or_else(|p| p.into_inner()).push(stream);
                            store.connected();
                        }
                    }
                })
                .unwrap_or_else(|e| panic!("OTLP test receiver: thread: {e}"))
        };
        StalledServer { stop, held, accept }
    }

    pub(super) fn stop(self, addr: SocketAddr) {
        stop_accepting(&self.stop, addr, self.accept);
        for stream in self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}
