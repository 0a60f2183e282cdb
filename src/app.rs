//! Wiring and staged shutdown. `run` sets up metrics, opens the store, binds the listeners and prints where it
//! listens; `serve` starts the sinks, the pipeline and the servers, and on the shutdown signal stops accepting,
//! lets in-flight requests finish (their events commit), drains the pipeline, lets each sink flush, and returns.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::attention::Sweeper;
use crate::attention::notify::Notifier;
use crate::config::ServeArgs;
use crate::inflight::InflightBudget;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::receiver::otlp_grpc;
use crate::sink::live::{Hub, StatesOut};
use crate::sink::prometheus::PrometheusSink;
use crate::sink::{Sinks, live, otlp_export, redis_stream};
use crate::state::{IngestState, ReadState};
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
    // First: whatever happens from here on is counted.
    let metrics = Metrics::new().context("cannot set up the metrics exporter")?;
    // Opening can wait long (another replica migrating holds the lock): a signal meanwhile stops it.
    let store_config = args.store.store_config()?;
    let store = tokio::select! {
        store = Store::open(&store_config) => store.context("cannot open the store")?,
        () = &mut shutdown => {
            tracing::info!("stopped before the store was open");
            return Ok(());
        }
    };
    let listeners = Listeners::bind(args.listen.grpc_addr, args.listen.http_addr).await?;
    let (grpc, http) = (listeners.grpc.local_addr()?, listeners.http.local_addr()?);
    // Printed on stdout for people and scripts alike (a port of 0 is resolved here).
    let mut out = std::io::stdout().lock();
    writeln!(out, "hivewatch {} ready", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, "  OTLP gRPC  grpc://{grpc}")?;
    writeln!(out, "  OTLP HTTP  http://{http}  (hook endpoint, API)")?;
    writeln!(out, "  store      {}", store.describe())?;
    if let Some(e) = args.export.config() {
        writeln!(out, "  export     {} ({:?})", e.endpoint, e.protocol)?;
    }
    if let Some(s) = args.stream.config() {
        let url = redis_stream::describe_redis_url(&s.url);
        writeln!(out, "  stream     redis://{url}  key {}", s.key)?;
    }
    out.flush()?;
    drop(out);
    serve(args, metrics, store, listeners, shutdown).await
}

/// Serves until `shutdown` resolves, then shuts down in stages. The listeners are bound and the store is open:
/// tests call this in-process with listeners on port 0.
pub async fn serve(
    args: ServeArgs,
    metrics: Metrics,
    store: Store,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let instruments = metrics.instruments();
    let meter = metrics.meter();
    store.register_gauges(meter);
    let hub = Hub::start(args.live.heartbeat(), meter);

    // The sinks, in the order each committed batch reaches them.
    let mut sinks = Sinks::default();
    let mut pipeline_config = args.pipeline_config();
    sinks.push(
        "prometheus",
        Arc::new(PrometheusSink::new(instruments.clone())),
    );
    let mut states = StatesOut::Hub(hub.clone());
    let mut background = Vec::new();
    let (stream_status, publisher, follower) = match args.stream.config() {
        Some(config) => {
            let (sink, status, task) =
                redis_stream::start(store.clone(), config.clone(), instruments.clone(), meter);
            pipeline_config.outbox_owner = Some(sink.owner().to_string());
            sinks.push("redis_stream", Arc::new(sink));
            // Every replica's clients see every replica's events and state changes: the hub reads the shared
            // stream, and the changes' channel beside it.
            let (out, state_tasks) = StatesOut::redis(hub.clone(), config.url.clone(), &config.key);
            sinks.push("live_states", Arc::new(out.clone()));
            states = out;
            background.extend(state_tasks);
            let follower = tokio::spawn(live::follow_redis(hub.clone(), config.url, config.key));
            (Some(status), Some(task), Some(follower))
        }
        None => {
            sinks.push("live", Arc::new(hub.clone()));
            (None, None, None)
        }
    };
    let exporter = match args.export.config() {
        Some(config) => {
            let (sink, task) =
                otlp_export::start(config, meter).context("cannot set up the OTLP exporter")?;
            sinks.push("otlp_export", Arc::new(sink));
            Some(task)
        }
        None => None,
    };
    tracing::debug!(sinks = ?sinks.names(), "sinks");
    let (pipeline, committer) =
        Pipeline::start(store.clone(), pipeline_config, sinks, instruments.clone());
    pipeline.register_gauges(meter);

    let retention = args.retention.age.map(|age| {
        tokio::spawn(crate::store::retention::run(
            store.clone(),
            age,
            args.retention.interval,
        ))
    });
    let wake = Arc::new(tokio::sync::Notify::new());
    let rules = args.attention.rules();
    let notifier = match &rules {
        Some(rules) => {
            let notifier = Notifier::new(
                store.clone(),
                args.attention.notify_format,
                args.attention.notify_secret.as_ref().map(|s| s.0.clone()),
                rules.targets.clone(),
                instruments.clone(),
                wake.clone(),
            )
            .context("cannot set up notifications")?;
            Some(tokio::spawn(notifier.run()))
        }
        None => None,
    };
    let sweeper = tokio::spawn(
        Sweeper {
            store: store.clone(),
            states,
            instruments: instruments.clone(),
            policy: args.attention.policy(),
            every: args.attention.sweep_interval,
            notify: rules.map(|r| (r, wake)),
        }
        .run(),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let tokens = args.auth.tokens();
    let ingest = IngestState {
        pipeline,
        store: store.clone(),
        max_body_bytes: args.limits.max_body_bytes,
        limits: args.limits.limits(),
        inflight: InflightBudget::new(args.limits.max_inflight_bytes),
        body_read_timeout: args.timeouts.body_read(),
        instruments,
        tokens: tokens.clone(),
    };
    let read = ReadState {
        store,
        hub,
        stream: stream_status,
        metrics,
        tokens,
        stopping: stop_tx.subscribe(),
    };
    let grpc = tokio::spawn(otlp_grpc::serve(
        listeners.grpc,
        ingest.clone(),
        args.grpc_bounds(),
        stopped(),
    ));
    let http = tokio::spawn(crate::http::serve(
        listeners.http,
        crate::http::router(ingest, read),
        args.timeouts.header_read(),
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
    // The servers (and their pipeline handles) are gone: the committer drains what was queued, then ends, and
    // with it the sinks' handles.
    tokio::time::timeout(deadline, committer)
        .await
        .context("the pipeline did not drain in time")?
        .context("pipeline task")?;
    for task in [retention, Some(sweeper), notifier, follower]
        .into_iter()
        .flatten()
        .chain(background)
    {
        task.abort();
    }
    if let Some(task) = exporter
        && tokio::time::timeout(deadline, task).await.is_err()
    {
        tracing::warn!("the OTLP exporter did not finish in time");
    }
    // The publisher sends what it was handed, then ends; the rest stays in the outbox.
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

/// Listens for SIGTERM and SIGINT from the moment it is called, and resolves at the first of them. Called before
/// anything is bound: a signal that arrives as soon as hivewatch answers must start the staged shutdown, never
/// meet the default action (an immediate exit that would cut requests in flight).
pub fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
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
