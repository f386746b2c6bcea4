//! The OTLP/gRPC receiver: tonic serving `opentelemetry-proto`'s generated `LogsService`.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use tokio::sync::oneshot;
use tonic::codegen::tokio_stream::Stream;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;

use super::{ExportLogsServiceRequest, ExportLogsServiceResponse, Received, Store};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// How the service answers each Export.
#[derive(Clone, Copy, Debug)]
pub(super) enum Answer {
    /// Success, reporting `reject` records rejected (partial success) when above 0.
    Accept { reject: i64 },
    /// This status, whatever the request.
    Refuse(tonic::Code),
}

struct Service {
    store: Arc<Store>,
    answer: Answer,
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();
        let received = Received {
            headers,
            path: EXPORT_PATH.to_string(),
            request: request.into_inner(),
        };
        let reject = match self.answer {
            Answer::Accept { reject } => reject,
            Answer::Refuse(code) => {
                self.store.refuse(received);
                return Err(tonic::Status::new(
                    code,
                    "the test receiver refuses every request",
                ));
            }
        };
        self.store.push(received);
        let partial_success = (reject > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: reject,
            error_message: "the test receiver rejects some records".into(),
        });
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success,
        }))
    }
}

pub(super) struct GrpcServer {
    shutdown: oneshot::Sender<()>,
    done: mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl GrpcServer {
    pub(super) fn start(
        listener: std::net::TcpListener,
        store: Arc<Store>,
        answer: Answer,
    ) -> GrpcServer {
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("OTLP test receiver: set_nonblocking: {e}"));
        let (shutdown, stop) = oneshot::channel::<()>();
        let (finished, done) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("otlp-grpc-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("OTLP test receiver: runtime: {e}"));
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("OTLP test receiver: listener: {e}"));
                    let incoming = tonic::transport::server::TcpIncoming::from(listener);
                    let counted = CountConnections {
                        store: Arc::clone(&store),
                        incoming,
                    };
                    let served = tonic::transport::Server::builder()
                        .add_service(LogsServiceServer::new(Service { store, answer }))
                        .serve_with_incoming_shutdown(counted, async {
                            let _ = stop.await;
                        })
                        .await;
                    if let Err(e) = served {
                        eprintln!("OTLP test receiver (gRPC) stopped: {e}");
                    }
                });
                let _ = finished.send(());
            })
            .unwrap_or_else(|e| panic!("OTLP test receiver: thread: {e}"));
        GrpcServer {
            shutdown,
            done,
            thread,
        }
    }

    /// Asks for a graceful stop and waits for it a while. A client that keeps its
    /// connection open can delay a graceful stop indefinitely; the thread is then left
    /// to finish on its own rather than hang the test.
    pub(super) fn stop(self) {
        let _ = self.shutdown.send(());
        if self.done.recv_timeout(Duration::from_secs(5)).is_ok() {
            let _ = self.thread.join();
        }
    }
}

/// Counts accepted connections on their way to tonic.
struct CountConnections {
    store: Arc<Store>,
    incoming: tonic::transport::server::TcpIncoming,
}

impl Stream for CountConnections {
    type Item = std::io::Result<tokio::net::TcpStream>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = std::pin::Pin::new(&mut self.incoming).poll_next(cx);
        if let std::task::Poll::Ready(Some(Ok(_))) = &polled {
            self.store.connected();
        }
        polled
    }
}
