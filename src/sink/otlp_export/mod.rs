//! OTLP export of the spans hivewatch assembles from hook events, through the opentelemetry-otlp exporter.
//!
//! Committed hook events are folded into spans with the design's deterministic ids (the model already computed
//! each event's `span_id` and `parent_span_id`): a tool span per PostToolUse/PostToolUseFailure (start = its
//! time minus `latency_ms`), a turn span per UserPromptSubmit → Stop, a subagent span per SubagentStart →
//! SubagentStop, a session span per SessionStart → SessionEnd, or, when no SessionEnd comes, after the session has
//! been idle for `session_idle`. Trace id = session id.
//!
//! Backpressure: export never slows ingest. The committer hands batches over without waiting (a full queue drops
//! them, counted in `hivewatch_export_spans_dropped`), spans are batched (up to `BATCH` or every `FLUSH_EVERY`) and
//! retried a few times with back-off, then dropped and counted. Folding events into spans is the pure
//! [`assembler`]; this module is the task around it and the exporter.

mod assembler;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use tokio::sync::mpsc;

use super::{Committed, Sink};
use crate::model::StoredEvent;
use assembler::Assembler;

/// Committed batches waiting for the assembler.
const QUEUE: usize = 1024;
/// Spans per export call.
const BATCH: usize = 512;
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const ATTEMPTS: u32 = 4;

#[derive(Debug, Clone)]
pub struct ExportConfig {
    pub endpoint: String,
    pub protocol: ExportProtocol,
    /// A session with no event for this long gets its session span without a SessionEnd.
    pub session_idle: Duration,
    /// Also export the spans other senders sent (OTLP traces), with their own ids, names, times and attributes.
    pub forward_spans: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportProtocol {
    /// OTLP/gRPC (the endpoint is `http://host:4317`).
    Grpc,
    /// OTLP/HTTP protobuf (the endpoint is the full `…/v1/traces` URL).
    Http,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failures: AtomicU64,
}

/// The sink: hands committed batches to the assembler without waiting; a full queue drops the batch, counted.
#[derive(Clone, Debug)]
pub struct ExportSink {
    tx: mpsc::Sender<Arc<[StoredEvent]>>,
    stats: Arc<ExportStats>,
}

impl Sink for ExportSink {
    fn deliver(&self, batch: &Committed) {
        let n = batch.events.len() as u64;
        if self.tx.try_send(batch.events.clone()).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Builds the exporter and starts the assembler; fails on a configuration the exporter refuses.
pub fn start(
    config: ExportConfig,
    meter: &Meter,
) -> anyhow::Result<(ExportSink, tokio::task::JoinHandle<()>)> {
    let exporter = match config.protocol {
        ExportProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build()?,
        ExportProtocol::Http => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(config.endpoint.clone())
            .with_timeout(Duration::from_secs(10))
            .build()?,
    };
    let mut exporter = exporter;
    exporter.set_resource(
        &Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "hivewatch"),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build(),
    );
    let (tx, rx) = mpsc::channel(QUEUE);
    let stats = Arc::new(ExportStats::default());
    #[rustfmt::skip]
    crate::metrics::observe!(meter, &stats,
        counter "hivewatch_export_spans_exported" "Assembled spans exported over OTLP" => |s: &ExportStats| s.exported.load(Ordering::Relaxed),
        counter "hivewatch_export_spans_dropped" "Spans (or committed events, when the export queue was full) given up on" => |s: &ExportStats| s.dropped.load(Ordering::Relaxed),
        counter "hivewatch_export_failures" "Failed OTLP export attempts (retried, then dropped)" => |s: &ExportStats| s.failures.load(Ordering::Relaxed),
    );
    let task = tokio::spawn(run(exporter, rx, config, stats.clone()));
    Ok((ExportSink { tx, stats }, task))
}

async fn run(
    exporter: opentelemetry_otlp::SpanExporter,
    mut rx: mpsc::Receiver<Arc<[StoredEvent]>>,
    config: ExportConfig,
    stats: Arc<ExportStats>,
) {
    let mut assembler = Assembler::new(config.forward_spans);
    let mut pending: Vec<SpanData> = Vec::new();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut sweep = tokio::time::interval(config.session_idle.min(Duration::from_secs(30)));
    loop {
        tokio::select! {
            next = rx.recv() => match next {
                Some(batch) => {
                    for ev in batch.iter() {
                        assembler.add(ev, Utc::now(), &mut pending);
                    }
                }
                None => break,
            },
            _ = flush.tick() => {}
            _ = sweep.tick() => assembler.close_idle(Utc::now(), config.session_idle, &mut pending),
        }
        while pending.len() >= BATCH || (!pending.is_empty() && rx.is_empty()) {
            let take = pending.len().min(BATCH);
            let batch: Vec<SpanData> = pending.drain(..take).collect();
            export_with_retry(&exporter, batch, &stats).await;
        }
    }
    // Shutting down: what is finished goes out; open sessions are not closed early.
    while !pending.is_empty() {
        let take = pending.len().min(BATCH);
        let batch: Vec<SpanData> = pending.drain(..take).collect();
        export_with_retry(&exporter, batch, &stats).await;
    }
}

async fn export_with_retry(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: Vec<SpanData>,
    stats: &ExportStats,
) {
    let n = batch.len() as u64;
    let mut delay = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        match exporter.export(batch.clone()).await {
            Ok(()) => {
                stats.exported.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                if attempt == ATTEMPTS {
                    tracing::warn!(error = %e, spans = n, "OTLP export failed; spans dropped");
                    stats.dropped.fetch_add(n, Ordering::Relaxed);
                    return;
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}
