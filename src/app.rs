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
    let mut shutdown = Box::pin(shutdown_signal()?);
    // Opening can wait long (another replica migrating holds the lock): a signal meanwhile stops it.
    let store_config = args.store.store_config()?;
    let store = tokio::select! {
        store = Store::open(&store_config) => store.context("cannot open the store")?,
        () = &mut shutdown => {
            tracing::info!("stopped before the store was open");
            return Ok(());
        }
    };
    let stream = args.stream_config();
    let listeners = Listeners::bind(args.grpc_addr, args.http_addr).await?;
    let (grpc, http) = (listeners.grpc.local_addr()?, listeners.http.local_addr()?);
    // Printed on stdout for people and scripts alike (a port of 0 is resolved here).
    let mut out = std::io::stdout().lock();
    writeln!(out, "hivewatch {} ready", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  OTLP gRPC  grpc://{grpc}")?;
    writeln!(out, "  OTLP HTTP  http://{http}  (hook endpoint, API)")?;
    writeln!(out, "  store      {}", store.describe())?;
    if let Some(e) = args.export_config() {
        writeln!(out, "  export     {} ({:?})", e.endpoint, e.protocol)?;
    }
    if let Some(s) = &stream {
        let url = crate::stream::describe_redis_url(&s.url);
        writeln!(out, "  stream     redis://{url}  key {}", s.key)?;
    }
    out.flush()?;
    drop(out);
    serve(args, store, listeners, shutdown).await
}

/// Serves until `shutdown` resolves, then shuts down in stages.
pub async fn serve(
    args: ServeArgs,
    store: Store,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut pipeline_config = args.pipeline_config();
    let (stream_status, publisher) = match args.stream_config() {
        Some(config) => {
            let (feed, status, task) = crate::stream::start(store.clone(), config);
            pipeline_config.feed = Some(feed);
            (Some(status), Some(task))
        }
        None => (None, None),
    };
    let (export_stats, exporter) = match args.export_config() {
        Some(config) => {
            let (feed, stats, task) =
                crate::export::start(config).context("cannot set up the OTLP exporter")?;
            pipeline_config.export = Some(feed);
            (Some(stats), Some(task))
        }
        None => (None, None),
    };
    let hub = crate::live::Hub::start(std::time::Duration::from_secs(
        args.live_heartbeat_secs.max(1),
    ));
    let follower = match args.stream_config() {
        // Every replica's clients see every replica's events: the hub reads the shared stream.
        Some(config) => Some(tokio::spawn(crate::live::follow_redis(
            hub.clone(),
            config.url,
            config.key,
        ))),
        None => {
            pipeline_config.live = Some(hub.clone());
            None
        }
    };
    let (pipeline, committer) = Pipeline::start(store.clone(), pipeline_config);
    let retention = args.retention.map(|age| {
        tokio::spawn(crate::store::retention::run(
            store.clone(),
            age,
            args.retention_interval,
        ))
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopping = stop_rx.clone();
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let tokens = args.tokens();
    let inflight = crate::receiver::InflightBudget::new(args.max_inflight_bytes);
    let grpc = tokio::spawn(otlp_grpc::serve(
        listeners.grpc,
        pipeline.clone(),
        tokens.clone(),
        inflight.clone(),
        args.limits(),
        otlp_grpc::GrpcBounds {
            max_message_bytes: args.max_body_bytes,
            request: std::time::Duration::from_secs(args.body_read_timeout_secs.max(1)),
            max_connection_age: std::time::Duration::from_secs(
                args.grpc_max_connection_age_secs.max(1),
            ),
            opening: std::time::Duration::from_secs(args.header_read_timeout_secs.max(1)),
        },
        stopped(),
    ));
    let metrics = crate::metrics::Metrics::new(crate::metrics::Sources {
        stream: stream_status.clone(),
        queue: Some(pipeline.queue_gauge()),
        pool: Some(store.pool_gauge()),
        hub: Some(hub.stats.clone()),
        export: export_stats,
    })?;
    let sessions_count = crate::metrics::get().map(|m| {
        tokio::spawn(count_active_sessions(
            store.clone(),
            m.sessions_active.clone(),
        ))
    });
    let state = AppState {
        stopping,
        pipeline,
        store,
        stream: stream_status,
        metrics,
        hub,
        tokens,
        max_body_bytes: args.max_body_bytes,
        limits: args.limits(),
        inflight,
        body_read_timeout: std::time::Duration::from_secs(args.body_read_timeout_secs.max(1)),
    };
    let http = tokio::spawn(crate::http::serve(
        listeners.http,
        router(state),
        std::time::Duration::from_secs(args.header_read_timeout_secs.max(1)),
        stopped(),
    ));

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
    for task in [retention, sessions_count, follower].into_iter().flatten() {
        task.abort();
    }
    if let Some(task) = exporter
        && tokio::time::timeout(deadline, task).await.is_err()
    {
        tracing::warn!("the OTLP exporter did not finish in time");
    }
    // With the committer gone the publisher sends what it was handed, then ends; the rest stays in the outbox.
    if let Some(task) = publisher
        && tokio::time::timeout(deadline, task).await.is_err()
    {
        tracing::warn!(
            "the Redis stream publisher did not finish in time; the outbox keeps the rest"
        );
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Keeps `hivewatch_sessions_active` current: sessions seen in the last 30 minutes and not ended, counted in the
/// store (so every replica reports the same number) every 15 s.
async fn count_active_sessions(store: Store, gauge: std::sync::Arc<std::sync::atomic::AtomicI64>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
    loop {
        tick.tick().await;
        let since = chrono::Utc::now() - chrono::Duration::minutes(30);
        match store.active_sessions(since).await {
            Ok(n) => gauge.store(n, std::sync::atomic::Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "cannot count active sessions"),
        }
    }
}

/// Listens for SIGTERM and SIGINT from the moment it is called, and resolves at the first of them. Called before
/// anything is bound: a signal that arrives as soon as hivewatch answers must start the staged shutdown, never
/// meet the default action (an immediate exit that would cut requests in flight).
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
