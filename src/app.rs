//! Wiring and staged shutdown: open the store, start the pipeline, bind the listeners, serve; on SIGTERM or
//! SIGINT stop accepting, let in-flight requests finish (their events commit), drain the pipeline, exit.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServeArgs;
use crate::http::{AppState, router};
use crate::pipeline::Pipeline;
use crate::receiver::otlp_grpc;
use crate::store::Store;

/// Listeners bound before serving, so that callers (and tests) can bind port 0 and learn the address.
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

impl Listeners {
    pub async fn bind(grpc: SocketAddr, http: SocketAddr) -> anyhow::Result<Listeners> {
        Ok(Listeners {
            grpc: TcpListener::bind(grpc)
                .await
                .with_context(|| format!("cannot listen on {grpc} (--grpc-addr)"))?,
            http: TcpListener::bind(http)
                .await
                .with_context(|| format!("cannot listen on {http} (--http-addr)"))?,
        })
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    args.validate()?;
    let store = Store::open(&args.store.store_config()?)
        .await
        .context("cannot open the store")?;
    let listeners = Listeners::bind(args.grpc_addr, args.http_addr).await?;
    let (grpc, http) = (listeners.grpc.local_addr()?, listeners.http.local_addr()?);
    // Printed on stdout for people and scripts alike (a port of 0 is resolved here).
    let mut out = std::io::stdout().lock();
    writeln!(out, "hivewatch {} ready", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  OTLP gRPC  grpc://{grpc}")?;
    writeln!(out, "  OTLP HTTP  http://{http}  (hook endpoint, API)")?;
    writeln!(out, "  store      {}", store.describe())?;
    out.flush()?;
    drop(out);
    serve(args, store, listeners, shutdown_signal()).await
}

/// Serves until `shutdown` resolves, then shuts down in stages.
pub async fn serve(
    args: ServeArgs,
    store: Store,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (pipeline, committer) = Pipeline::start(store.clone(), args.pipeline_config());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let grpc = tokio::spawn(otlp_grpc::serve(
        listeners.grpc,
        pipeline.clone(),
        args.max_body_bytes,
        stopped(),
    ));
    let state = AppState {
        pipeline,
        store,
        max_body_bytes: args.max_body_bytes,
    };
    let http = tokio::spawn(
        axum::serve(listeners.http, router(state).into_make_service())
            .with_graceful_shutdown(stopped())
            .into_future(),
    );

    shutdown.await;
    tracing::info!("shutting down: no new requests; finishing those in flight");
    let _ = stop_tx.send(true);
    let deadline = args.shutdown_timeout();
    let servers = async {
        let (g, h) = tokio::join!(grpc, http);
        g.context("gRPC server task")?.context("gRPC server")?;
        h.context("HTTP server task")?.context("HTTP server")?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(deadline, servers).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!(
            ?deadline,
            "in-flight requests did not finish in time; abandoning them"
        ),
    }
    // The servers (and their pipeline handles) are gone: the committer drains what was queued, then ends.
    tokio::time::timeout(deadline, committer)
        .await
        .context("the pipeline did not drain in time")?
        .context("pipeline task")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops hivewatch");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
