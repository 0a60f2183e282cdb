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
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::{Logs, Metrics, Signal, Traces, export};
use crate::model::limits::Limits;
use crate::pipeline::Pipeline;

#[derive(Clone)]
pub struct OtlpGrpc {
    pipeline: Pipeline,
    tokens: crate::auth::Tokens,
    limits: Limits,
}

impl OtlpGrpc {
    async fn handle<S: Signal>(
        &self,
        request: Request<S::Request>,
    ) -> Result<Response<S::Response>, Status> {
        crate::auth::check_grpc(&self.tokens, request.metadata())?;
        handle::<S>(&self.pipeline, &self.limits, request.into_inner()).await
    }
}

async fn handle<S: Signal>(
    pipeline: &Pipeline,
    limits: &Limits,
    req: S::Request,
) -> Result<Response<S::Response>, Status> {
    let started = std::time::Instant::now();
    let result = export::<S>(pipeline, limits, req).await;
    super::record_request("grpc", S::NAME, started, result.as_ref().map(S::rejected));
    result.map(Response::new).map_err(|e| e.grpc_status())
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.handle::<Traces>(request).await
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.handle::<Logs>(request).await
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.handle::<Metrics>(request).await
    }
}

/// Serves the three OTLP services on `listener` until `shutdown` resolves, then finishes in-flight calls.
pub async fn serve(
    listener: TcpListener,
    pipeline: Pipeline,
    tokens: crate::auth::Tokens,
    limits: Limits,
    max_message_bytes: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let svc = OtlpGrpc {
        pipeline,
        tokens,
        limits,
    };
    macro_rules! configure {
        ($server:ident) => {
            $server::new(svc.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(max_message_bytes)
        };
    }
    tonic::transport::Server::builder()
        .add_service(configure!(TraceServiceServer))
        .add_service(configure!(LogsServiceServer))
        .add_service(configure!(MetricsServiceServer))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
}
