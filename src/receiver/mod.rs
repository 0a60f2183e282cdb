//! Protocols in, `AgentEvent`s out. Receivers decode and normalize, hand the events to the pipeline, and map the
//! outcome to their protocol's answer; they never touch a sink.

pub mod hook_http;
pub mod otlp_grpc;
pub mod otlp_http;

use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::model::otlp::{Normalized, count_metric_points, normalize_logs, normalize_traces};
use crate::pipeline::{Pipeline, SubmitError};

/// Why an ingest request was not (wholly) accepted; each variant maps to one HTTP status and one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Retryable: the store is down or the queue is full.
    #[error("{0}")]
    Unavailable(String),
}

impl From<SubmitError> for IngestError {
    fn from(e: SubmitError) -> Self {
        IngestError::Unavailable(e.to_string())
    }
}

impl IngestError {
    /// The gRPC code of this error (also the `code` of an OTLP/HTTP error body).
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            IngestError::BadRequest(_) | IngestError::UnsupportedMediaType(_) => {
                tonic::Code::InvalidArgument
            }
            IngestError::TooLarge(_) => tonic::Code::ResourceExhausted,
            IngestError::Unavailable(_) => tonic::Code::Unavailable,
        }
    }

    pub fn grpc_status(&self) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), self.to_string())
    }

    pub fn http_status(&self) -> http::StatusCode {
        match self {
            IngestError::BadRequest(_) => http::StatusCode::BAD_REQUEST,
            IngestError::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedMediaType(_) => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::Unavailable(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// An HTTP answer with this error's status and `body`; a retryable one says when to retry.
    pub fn http_response(
        &self,
        body: impl axum::response::IntoResponse,
    ) -> axum::response::Response {
        let mut resp = (self.http_status(), body).into_response();
        if matches!(self, IngestError::Unavailable(_)) {
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}

/// One OTLP signal: its request and response messages and how its items become events.
pub trait Signal {
    type Request: prost::Message + Default + serde::de::DeserializeOwned + Send + 'static;
    type Response: prost::Message + serde::Serialize + Send + 'static;
    /// The OTLP/HTTP path, also used in messages.
    const PATH: &'static str;
    fn normalize(req: &Self::Request, now: DateTime<Utc>) -> Normalized;
    fn response(rejected: i64, message: String) -> Self::Response;
}

pub struct Traces;
pub struct Logs;
pub struct Metrics;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const PATH: &'static str = "/v1/traces";
    fn normalize(req: &Self::Request, now: DateTime<Utc>) -> Normalized {
        normalize_traces(req, now)
    }
    fn response(rejected: i64, error_message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message,
            }),
        }
    }
}

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;
    const PATH: &'static str = "/v1/logs";
    fn normalize(req: &Self::Request, now: DateTime<Utc>) -> Normalized {
        normalize_logs(req, now)
    }
    fn response(rejected: i64, error_message: String) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }
    }
}

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const PATH: &'static str = "/v1/metrics";
    fn normalize(req: &Self::Request, _now: DateTime<Utc>) -> Normalized {
        // Metrics are not events: they are accepted and counted here; nothing is stored.
        Normalized {
            total: count_metric_points(req),
            ..Default::default()
        }
    }
    fn response(rejected: i64, error_message: String) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message,
            }),
        }
    }
}

/// The protocol-independent half of an OTLP export: normalize, commit, build the answer.
pub async fn export<S: Signal>(
    pipeline: &Pipeline,
    req: S::Request,
) -> Result<S::Response, IngestError> {
    let normalized = S::normalize(&req, Utc::now());
    drop(req);
    submit_normalized(pipeline, normalized)
        .await
        .map(|(rejected, msg)| S::response(rejected, msg))
}

/// Commits the good items; a request whose every item is bad is refused whole with the first problem.
pub async fn submit_normalized(
    pipeline: &Pipeline,
    n: Normalized,
) -> Result<(i64, String), IngestError> {
    if n.rejected > 0 && n.events.is_empty() {
        return Err(IngestError::BadRequest(n.error_message()));
    }
    let message = n.error_message();
    if n.rejected > 0 {
        tracing::warn!(rejected = n.rejected, accepted = n.events.len(), first = %message, "OTLP items refused");
    }
    pipeline.submit(n.events).await?;
    Ok((n.rejected as i64, message))
}
