//! The HTTP listener (port 4318): OTLP/HTTP, the hook endpoint, the query API and health checks.

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use tower_http::decompression::RequestDecompressionLayer;

use crate::api;
use crate::receiver::{Logs, Metrics, Traces, hook_http, otlp_http, transcripts};
use crate::state::{IngestState, ReadState};

/// Every route of the HTTP listener: ingest behind the ingest token, reads behind the read token, the dashboard
/// page and health checks open.
pub fn router(ingest: IngestState, read: ReadState) -> Router {
    let ingest_routes = Router::new()
        .route("/v1/traces", post(otlp_http::handler::<Traces>))
        .route("/v1/logs", post(otlp_http::handler::<Logs>))
        .route("/v1/metrics", post(otlp_http::handler::<Metrics>))
        .route("/api/v1/observability/event", post(hook_http::handler))
        .route(
            "/api/v1/observability/transcripts",
            post(transcripts::handler),
        )
        .layer(RequestDecompressionLayer::new().gzip(true))
        .layer(axum::middleware::from_fn_with_state(
            ingest.tokens.clone(),
            crate::auth::require_ingest,
        ))
        .with_state(ingest);
    let read_routes = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/observability/metrics", get(metrics))
        .route("/api/v1/observability/events", get(api::events))
        .route("/api/v1/observability/sessions", get(api::sessions))
        .route("/api/v1/observability/sessions/{id}", get(api::session))
        .route(
            "/api/v1/observability/sessions/{id}/transcript",
            get(api::transcript),
        )
        .route(
            "/observability/dashboard/stream",
            get(api::dashboard::stream),
        )
        .route(
            "/observability/dashboard/connections",
            get(api::dashboard::connections),
        )
        .route(
            "/observability/dashboard/broadcast",
            post(api::dashboard::broadcast),
        )
        .layer(axum::middleware::from_fn_with_state(
            read.tokens.clone(),
            crate::auth::require_read,
        ))
        .with_state(read.clone());
    Router::new()
        .merge(ingest_routes)
        .merge(read_routes)
        .merge(api::web::routes())
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .with_state(read)
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<ReadState>,
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
