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
use prost::Message;

use crate::model::limits::Limits;
use crate::model::otlp::{
    Normalized, count_log_records, count_metric_points, count_spans, normalize_logs,
    normalize_traces,
};
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
    /// The client took too long to send its request.
    #[error("{0}")]
    Timeout(String),
}

impl From<SubmitError> for IngestError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Rejected(_) => IngestError::BadRequest(e.to_string()),
            e => IngestError::Unavailable(e.to_string()),
        }
    }
}

impl IngestError {
    /// The `outcome` label of `hivewatch_ingest_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            IngestError::BadRequest(_) => "invalid",
            IngestError::TooLarge(_) => "too_large",
            IngestError::UnsupportedMediaType(_) => "unsupported",
            IngestError::Unavailable(_) => "unavailable",
            IngestError::Timeout(_) => "timeout",
        }
    }

    /// The gRPC code of this error (also the `code` of an OTLP/HTTP error body).
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            IngestError::BadRequest(_) | IngestError::UnsupportedMediaType(_) => {
                tonic::Code::InvalidArgument
            }
            IngestError::TooLarge(_) => tonic::Code::ResourceExhausted,
            IngestError::Unavailable(_) => tonic::Code::Unavailable,
            IngestError::Timeout(_) => tonic::Code::DeadlineExceeded,
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
            IngestError::Timeout(_) => http::StatusCode::REQUEST_TIMEOUT,
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

/// Bytes of ingest requests held at once: bodies being read, decoded, and waiting for their commit. A request
/// that would go over is answered 503 / UNAVAILABLE (retry shortly), so memory stays bounded under any load.
#[derive(Clone)]
pub struct InflightBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
    total_kib: usize,
}

/// A request's share of the budget, given back when dropped (when the request is answered).
#[must_use]
pub struct InflightHold(#[allow(dead_code)] Option<tokio::sync::OwnedSemaphorePermit>);

impl InflightHold {
    /// No share (events that did not come in over the wire).
    pub fn none() -> Self {
        InflightHold(None)
    }
}

impl InflightBudget {
    pub fn new(bytes: usize) -> Self {
        let total_kib = bytes
            .div_ceil(1024)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        InflightBudget {
            kib: std::sync::Arc::new(tokio::sync::Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// Takes `bytes` of the budget, or says that hivewatch holds too much already.
    pub fn hold(&self, bytes: usize) -> Result<InflightHold, IngestError> {
        let kib = bytes.div_ceil(1024).clamp(1, self.total_kib);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX);
        match self.kib.clone().try_acquire_many_owned(kib) {
            Ok(permit) => Ok(InflightHold(Some(permit))),
            Err(_) => Err(IngestError::Unavailable(format!(
                "hivewatch already holds {} MiB of ingest requests (--max-inflight-bytes); retry shortly",
                self.total_kib / 1024
            ))),
        }
    }

    /// Gives back all of `hold` beyond `bytes` (a body turned out smaller than the share taken for it).
    pub fn shrink(hold: &mut InflightHold, bytes: usize) {
        let keep = bytes.div_ceil(1024).max(1);
        if let Some(permit) = hold.0.as_mut()
            && permit.num_permits() > keep
        {
            drop(permit.split(permit.num_permits() - keep));
        }
    }
}

/// One OTLP signal: its request and response messages and how its items become events.
pub trait Signal {
    type Request: prost::Message + Default + serde::de::DeserializeOwned + Send + 'static;
    type Response: prost::Message + serde::Serialize + Send + 'static;
    /// The OTLP/HTTP path, also used in messages.
    const PATH: &'static str;
    /// The `signal` label of the ingest metrics.
    const NAME: &'static str;
    /// Items in a request (`ITEMS` names them), counted before anything else is done with it.
    const ITEMS: &'static str;
    fn count(req: &Self::Request) -> usize;
    fn normalize(req: &Self::Request, limits: &Limits, now: DateTime<Utc>) -> Normalized;
    fn response(rejected: i64, message: String) -> Self::Response;
    /// Items of an answered request refused through `partial_success`.
    fn rejected(resp: &Self::Response) -> i64;
    /// Anything the request feeds besides events (metrics feed `/metrics`).
    fn observe(_req: &Self::Request) {}
}

/// Records one answered ingest request in the metrics.
pub fn record_request(
    protocol: &'static str,
    signal: &'static str,
    started: std::time::Instant,
    result: Result<i64, &IngestError>,
) {
    if let Some(m) = crate::metrics::get() {
        let outcome = match result {
            Ok(0) => "ok",
            Ok(_) => "partial",
            Err(e) => e.outcome(),
        };
        m.request(protocol, signal, outcome, started);
    }
}

pub struct Traces;
pub struct Logs;
pub struct Metrics;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;
    const PATH: &'static str = "/v1/traces";
    const NAME: &'static str = "traces";
    fn rejected(resp: &Self::Response) -> i64 {
        resp.partial_success
            .as_ref()
            .map_or(0, |p| p.rejected_spans)
    }
    const ITEMS: &'static str = "spans";
    fn count(req: &Self::Request) -> usize {
        count_spans(req)
    }
    fn normalize(req: &Self::Request, limits: &Limits, now: DateTime<Utc>) -> Normalized {
        normalize_traces(req, limits, now)
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
    const NAME: &'static str = "logs";
    fn rejected(resp: &Self::Response) -> i64 {
        resp.partial_success
            .as_ref()
            .map_or(0, |p| p.rejected_log_records)
    }
    const ITEMS: &'static str = "log records";
    fn count(req: &Self::Request) -> usize {
        count_log_records(req)
    }
    fn normalize(req: &Self::Request, limits: &Limits, now: DateTime<Utc>) -> Normalized {
        normalize_logs(req, limits, now)
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
    const NAME: &'static str = "metrics";
    fn rejected(resp: &Self::Response) -> i64 {
        resp.partial_success
            .as_ref()
            .map_or(0, |p| p.rejected_data_points)
    }
    fn observe(req: &Self::Request) {
        if let Some(m) = crate::metrics::get() {
            m.otlp_metrics(req);
        }
    }
    const ITEMS: &'static str = "metric data points";
    fn count(req: &Self::Request) -> usize {
        count_metric_points(req)
    }
    fn normalize(req: &Self::Request, _limits: &Limits, _now: DateTime<Utc>) -> Normalized {
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

/// Decodes an OTLP/HTTP body, protobuf or JSON.
pub fn decode<S: Signal>(bytes: &[u8], json: bool) -> Result<S::Request, IngestError> {
    if !json {
        return S::Request::decode(bytes).map_err(|e| {
            IngestError::BadRequest(format!(
                "{}: body is not a valid OTLP protobuf message: {e}",
                S::PATH
            ))
        });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(IngestError::BadRequest(format!(
            "{}: body is not valid UTF-8 (at byte {})",
            S::PATH,
            e.valid_up_to()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        IngestError::BadRequest(format!("{}: body is not valid OTLP/JSON: {e}", S::PATH))
    })
}

/// Checks a decoded request against the limits and normalizes what passes: too many items refuse the request,
/// an item over a limit is refused alone.
pub fn normalize_request<S: Signal>(
    req: &S::Request,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Normalized, IngestError> {
    limits
        .check_items(S::count(req), S::ITEMS)
        .map_err(|e| IngestError::TooLarge(format!("{}: {e}", S::PATH)))?;
    Ok(S::normalize(req, limits, now))
}

/// The protocol-independent half of an OTLP export: check, normalize, commit, build the answer.
pub async fn export<S: Signal>(
    pipeline: &Pipeline,
    limits: &Limits,
    req: S::Request,
    hold: InflightHold,
) -> Result<S::Response, IngestError> {
    let normalized = normalize_request::<S>(&req, limits, Utc::now())?;
    S::observe(&req);
    drop(req);
    submit_normalized(pipeline, normalized, S::NAME, hold)
        .await
        .map(|(rejected, msg)| S::response(rejected, msg))
}

/// Commits the good items; a request whose every item is bad is refused whole with the first problem.
pub async fn submit_normalized(
    pipeline: &Pipeline,
    n: Normalized,
    signal: &'static str,
    hold: InflightHold,
) -> Result<(i64, String), IngestError> {
    let metrics = crate::metrics::get();
    if let Some(m) = metrics {
        m.rejected(signal, "invalid", n.rejected as u64);
    }
    if n.rejected > 0 && n.events.is_empty() {
        return Err(IngestError::BadRequest(n.error_message()));
    }
    let message = n.error_message();
    if n.rejected > 0 {
        tracing::warn!(rejected = n.rejected, accepted = n.events.len(), first = %message, "OTLP items refused");
    }
    submit(pipeline, n.events, signal, hold).await?;
    Ok((n.rejected as i64, message))
}

/// Hands events to the pipeline; those refused as unavailable are counted.
pub async fn submit(
    pipeline: &Pipeline,
    events: Vec<crate::model::AgentEvent>,
    signal: &'static str,
    hold: InflightHold,
) -> Result<(), IngestError> {
    let n = events.len() as u64;
    pipeline
        .submit(events, hold)
        .await
        .map(|_| ())
        .map_err(|e| {
            if let Some(m) = crate::metrics::get() {
                let reason = match e {
                    SubmitError::Rejected(_) => "invalid",
                    _ => "unavailable",
                };
                m.rejected(signal, reason, n);
            }
            e.into()
        })
}
