//! OTLP over gRPC (port 4317): TraceService, LogsService and MetricsService, gzip and zstd accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};

use super::{Logs, Metrics, Signal, Traces, export};
use crate::state::IngestState;

#[derive(Clone)]
pub struct OtlpGrpc {
    state: IngestState,
}

impl OtlpGrpc {
    async fn handle<S: Signal>(
        &self,
        request: Request<S::Request>,
    ) -> Result<Response<S::Response>, Status> {
        let state = &self.state;
        crate::auth::check_grpc(&state.tokens, request.metadata())?;
        let started = std::time::Instant::now();
        let req = request.into_inner();
        // Decoded already (tonic reads the message before the call): the hold covers the wait for the commit.
        let result = match state.inflight.hold(req.encoded_len()) {
            Ok(hold) => export::<S>(state.ingest(), req, hold).await,
            Err(e) => Err(e.into()),
        };
        super::record_request(
            &state.instruments,
            "grpc",
            S::NAME,
            started,
            result.as_ref().map(S::rejected),
        );
        result.map(Response::new).map_err(|e| e.grpc_status())
    }
}

/// One OTLP service: its trait, request, response and signal.
macro_rules! service {
    ($service:ident, $request:ident, $response:ident, $signal:ident) => {
        #[tonic::async_trait]
        impl $service for OtlpGrpc {
            async fn export(
                &self,
                request: Request<$request>,
            ) -> Result<Response<$response>, Status> {
                self.handle::<$signal>(request).await
            }
        }
    };
}

service!(
    TraceService,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    Traces
);
service!(
    LogsService,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    Logs
);
service!(
    MetricsService,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
    Metrics
);

/// How large a gRPC message and how long a call and a connection may be.
#[derive(Debug, Clone, Copy)]
pub struct GrpcBounds {
    /// Largest message, after decompression (`--max-body-bytes`).
    pub max_message_bytes: usize,
    /// A whole call: receiving the message, committing, answering (a body sent slowly ends here).
    pub request: std::time::Duration,
    /// After this a connection gets GOAWAY: calls in flight finish, the client reconnects.
    pub max_connection_age: std::time::Duration,
    /// A new connection must have sent the HTTP/2 preface within this.
    pub opening: std::time::Duration,
}

/// Serves the three OTLP services on `listener` until `shutdown` resolves, then finishes in-flight calls.
pub async fn serve(
    listener: TcpListener,
    state: IngestState,
    bounds: GrpcBounds,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let svc = OtlpGrpc { state };
    macro_rules! configure {
        ($server:ident) => {
            $server::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(bounds.max_message_bytes)
        };
    }
    tonic::transport::Server::builder()
        .timeout(bounds.request)
        .max_connection_age(bounds.max_connection_age)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .add_service(configure!(TraceServiceServer))
        .add_service(configure!(LogsServiceServer))
        .add_service(configure!(MetricsServiceServer))
        .serve_with_incoming_shutdown(
            tokio_stream::StreamExt::map(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                move |conn| conn.map(|c| OpeningDeadline::new(c, bounds.opening)),
            ),
            shutdown,
        )
        .await
}

/// A connection that must deliver its opening bytes (the HTTP/2 preface and the header of the first SETTINGS
/// frame) before a deadline, or its reads fail: a client sending one byte a second cannot hold it open.
/// Past the opening, calls are bounded by the request timeout and connections by their maximum age.
struct OpeningDeadline {
    inner: tokio::net::TcpStream,
    /// Bytes read so far, up to `OPENING_BYTES`.
    read: usize,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (24 bytes) and a 9-byte frame header.
const OPENING_BYTES: usize = 24 + 9;

impl OpeningDeadline {
    fn new(inner: tokio::net::TcpStream, within: std::time::Duration) -> Self {
        OpeningDeadline {
            inner,
            read: 0,
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

impl AsyncRead for OpeningDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.read < OPENING_BYTES && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not open its HTTP/2 connection in time",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.read = this
            .read
            .saturating_add(buf.filled().len() - before)
            .min(OPENING_BYTES);
        polled
    }
}

impl AsyncWrite for OpeningDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for OpeningDeadline {
    type ConnectInfo = <tokio::net::TcpStream as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
