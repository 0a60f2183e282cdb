//! Protocols in, `AgentEvent`s out. Receivers decode and normalize, hand the events to the pipeline, and map the
//! outcome to their protocol's answer; they never touch a sink.

mod body;
pub mod hook_http;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod transcripts;

pub use body::read_body;

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

use crate::inflight::{InflightHold, OverBudget};
use crate::metrics::Instruments;
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

impl From<OverBudget> for IngestError {
    fn from(e: OverBudget) -> Self {
        IngestError::Unavailable(e.to_string())
    }
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
    fn observe(_req: &Self::Request, _instruments: &Instruments) {}
}

/// Records one answered ingest request in the metrics.
pub fn record_request(
    instruments: &Instruments,
    protocol: &'static str,
    signal: &'static str,
    started: std::time::Instant,
    result: Result<i64, &IngestError>,
) {
    let outcome = match result {
        Ok(0) => "ok",
        Ok(_) => "partial",
        Err(e) => e.outcome(),
    };
    instruments.request(protocol, signal, outcome, started);
}

/// A signal's `rejected` and `response`: its answer, the answer's partial-success part, and the field that
/// counts refused items.
macro_rules! answer {
    ($response:ident, $partial:ident, $field:ident) => {
        fn rejected(resp: &Self::Response) -> i64 {
            resp.partial_success.as_ref().map_or(0, |p| p.$field)
        }

        fn response(rejected: i64, error_message: String) -> Self::Response {
            $response {
                partial_success: (rejected > 0).then_some($partial {
                    $field: rejected,
                    error_message,
                }),
            }
        }
    };
}

pub struct Traces;
pub struct Logs;
pub struct Metrics;

/// A signal whose items become events: traces and logs.
macro_rules! event_signal {
    ($signal:ident, $request:ident, $response:ident, $partial:ident, $field:ident,
     path = $path:literal, name = $name:literal, items = $items:literal, count = $count:path, normalize = $normalize:path) => {
        impl Signal for $signal {
            type Request = $request;
            type Response = $response;
            const PATH: &'static str = $path;
            const NAME: &'static str = $name;
            const ITEMS: &'static str = $items;
            fn count(req: &Self::Request) -> usize {
                $count(req)
            }
            fn normalize(req: &Self::Request, limits: &Limits, now: DateTime<Utc>) -> Normalized {
                $normalize(req, limits, now)
            }
            answer!($response, $partial, $field);
        }
    };
}

event_signal!(
    Traces,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    ExportTracePartialSuccess,
    rejected_spans,
    path = "/v1/traces",
    name = "traces",
    items = "spans",
    count = count_spans,
    normalize = normalize_traces
);
event_signal!(
    Logs,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    ExportLogsPartialSuccess,
    rejected_log_records,
    path = "/v1/logs",
    name = "logs",
    items = "log records",
    count = count_log_records,
    normalize = normalize_logs
);

impl Signal for Metrics {
    type Request = ExportMetricsServiceRequest;
    type Response = ExportMetricsServiceResponse;
    const PATH: &'static str = "/v1/metrics";
    const NAME: &'static str = "metrics";
    fn observe(req: &Self::Request, instruments: &Instruments) {
        instruments.otlp_metrics(req);
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
    answer!(
        ExportMetricsServiceResponse,
        ExportMetricsPartialSuccess,
        rejected_data_points
    );
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

impl crate::state::IngestState {
    /// What a receiver hands its events to.
    pub fn ingest(&self) -> Ingest<'_> {
        Ingest {
            pipeline: &self.pipeline,
            limits: &self.limits,
            instruments: &self.instruments,
        }
    }
}

/// What an ingest request needs besides itself, whichever transport it came over.
pub struct Ingest<'a> {
    pub pipeline: &'a Pipeline,
    pub limits: &'a Limits,
    pub instruments: &'a Instruments,
}

/// The protocol-independent half of an OTLP export: check, normalize, commit, build the answer.
pub async fn export<S: Signal>(
    ingest: Ingest<'_>,
    req: S::Request,
    hold: InflightHold,
) -> Result<S::Response, IngestError> {
    let normalized = normalize_request::<S>(&req, ingest.limits, Utc::now())?;
    S::observe(&req, ingest.instruments);
    drop(req);
    submit_normalized(&ingest, normalized, S::NAME, hold)
        .await
        .map(|(rejected, msg)| S::response(rejected, msg))
}

/// Commits the good items; a request whose every item is bad is refused whole with the first problem.
pub async fn submit_normalized(
    ingest: &Ingest<'_>,
    n: Normalized,
    signal: &'static str,
    hold: InflightHold,
) -> Result<(i64, String), IngestError> {
    ingest
        .instruments
        .rejected(signal, "invalid", n.rejected as u64);
    if n.rejected > 0 && n.events.is_empty() {
        return Err(IngestError::BadRequest(n.error_message()));
    }
    let message = n.error_message();
    if n.rejected > 0 {
        tracing::warn!(rejected = n.rejected, accepted = n.events.len(), first = %message, "OTLP items refused");
    }
    submit(ingest, n.events, signal, hold).await?;
    Ok((n.rejected as i64, message))
}

/// Hands events to the pipeline; those refused as unavailable are counted.
pub async fn submit(
    ingest: &Ingest<'_>,
    events: Vec<crate::model::AgentEvent>,
    signal: &'static str,
    hold: InflightHold,
) -> Result<(), IngestError> {
    let n = events.len() as u64;
    ingest
        .pipeline
        .submit(events, hold)
        .await
        .map(|_| ())
        .map_err(|e| {
            let reason = match e {
                SubmitError::Rejected(_) => "invalid",
                _ => "unavailable",
            };
            ingest.instruments.rejected(signal, reason, n);
            e.into()
        })
}
