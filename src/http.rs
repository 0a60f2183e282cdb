//! The HTTP listener (port 4318): OTLP/HTTP, the hook endpoint, the query API and health checks.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use tower_http::decompression::RequestDecompressionLayer;

use crate::api;
use crate::pipeline::Pipeline;
use crate::receiver::{
    InflightBudget, InflightHold, IngestError, Logs, Metrics, Traces, hook_http, otlp_http,
};
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Pipeline,
    pub store: Store,
    /// Largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// Items per request, attributes per item, their length and nesting.
    pub limits: crate::model::limits::Limits,
    /// Bytes of ingest requests held at once (`--max-inflight-bytes`).
    pub inflight: InflightBudget,
    /// Longest a client may take to send a request body.
    pub body_read_timeout: std::time::Duration,
    /// The Redis stream publisher's state, when a stream is configured.
    pub stream: Option<std::sync::Arc<crate::stream::StreamStatus>>,
    pub metrics: crate::metrics::Metrics,
    /// The live stream's fan-out.
    pub hub: crate::live::Hub,
    pub tokens: crate::auth::Tokens,
    /// Turns true when shutdown starts: long-lived connections (the live stream) close then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    let ingest = Router::new()
        .route("/v1/traces", post(otlp_http::handler::<Traces>))
        .route("/v1/logs", post(otlp_http::handler::<Logs>))
        .route("/v1/metrics", post(otlp_http::handler::<Metrics>))
        .route("/api/v1/observability/event", post(hook_http::handler))
        .route(
            "/api/v1/observability/transcripts",
            post(api::add_transcript),
        )
        .layer(RequestDecompressionLayer::new().gzip(true))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_ingest,
        ));
    let read = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/observability/metrics", get(metrics))
        .route("/api/v1/observability/events", get(api::events))
        .route("/api/v1/observability/sessions", get(api::sessions))
        .route("/api/v1/observability/sessions/{id}", get(api::session))
        .route(
            "/api/v1/observability/sessions/{id}/transcript",
            get(api::transcript),
        )
        .route("/observability/dashboard/stream", get(api::live::stream))
        .route(
            "/observability/dashboard/connections",
            get(api::live::connections),
        )
        .route(
            "/observability/dashboard/broadcast",
            post(api::live::broadcast),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_read,
        ));
    Router::new()
        .merge(ingest)
        .merge(read)
        .merge(api::web::routes())
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .with_state(state)
}

/// Reads a whole request body (chunked or not, decompressed), refusing more than `--max-body-bytes`. The body
/// holds its share of the in-flight budget from before it is read until the returned hold is dropped (when the
/// request is answered): its declared length, or the largest a body may be until it is read.
pub async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, InflightHold), IngestError> {
    let limit = state.max_body_bytes;
    let timeout = state.body_read_timeout;
    let too_large = || {
        IngestError::TooLarge(format!(
            "request body is larger than the limit of {limit} bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let compressed = headers.contains_key(header::CONTENT_ENCODING);
    if !compressed && declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let share = match declared {
        Some(n) if !compressed => n as usize,
        _ => limit,
    };
    let mut hold = state.inflight.hold(share)?;
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(IngestError::Timeout(format!(
            "the request body did not arrive within {timeout:?}"
        )));
    };
    let bytes = read.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = err.source();
        }
        IngestError::BadRequest(format!("could not read the request body: {e}"))
    })?;
    InflightBudget::shrink(&mut hold, bytes.len());
    Ok((bytes, hold))
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish. Like `axum::serve`,
/// plus a deadline for request headers (a client that dribbles them, one byte a second, is disconnected instead
/// of holding a connection forever) and the peer address as `ConnectInfo`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_read_timeout: std::time::Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use tower::ServiceExt;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let service = hyper_util::service::TowerToHyperService::new(service);
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
