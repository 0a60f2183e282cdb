//! metrics: `/metrics` in the Prometheus text format, from hivewatch's OpenTelemetry meters exported to a Prometheus
//! registry (opentelemetry-prometheus).
//!
//! Names are a contract with `prometheus-rules/` and `grafana-provisioning/`. Labels are bounded: never a session,
//! prompt or tool-use id; event types outside the known set and tool names past the first
//! [`MAX_TOOL_NAMES`] become `other`.
//!
//! Instruments live in one process-wide [`Instruments`] set up by [`Metrics::new`]; call sites reach them through
//! [`get`] and do nothing when no exporter was set up (library use, unit tests). Work is per batch where it can be:
//! the committer aggregates counts per label set before adding them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric, number_data_point};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

use crate::model::event::{is_tool_finish, known_event_type};
use crate::model::{Source, Status, StoredEvent};
use crate::stream::StreamStatus;

/// Distinct tool names given their own label value; later ones are counted as `other`.
pub const MAX_TOOL_NAMES: usize = 200;

/// Seconds: tool calls take from milliseconds to minutes.
const TOOL_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Seconds: request handling, commits, Redis round trips, delays.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// The exporter and the registry `/metrics` renders.
#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    _provider: SdkMeterProvider,
}

/// Everything the rest of the program records into.
pub struct Instruments {
    events: Counter<u64>,
    duplicates: Counter<u64>,
    tool_calls: Counter<u64>,
    tool_duration: Histogram<f64>,
    failures: Counter<u64>,
    processing_delay: Histogram<f64>,
    ingest_requests: Counter<u64>,
    ingest_duration: Histogram<f64>,
    rejected: Counter<u64>,
    commit_duration: Histogram<f64>,
    batch_events: Histogram<f64>,
    commit_errors: Counter<u64>,
    redis_duration: Histogram<f64>,
    stream_lag: Histogram<f64>,
    tool_names: Mutex<HashSet<String>>,
    claude_code: ClaudeCodeTotals,
    /// Filled by the store's periodic count (see `app`).
    pub sessions_active: Arc<AtomicI64>,
}

static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();

/// The process's instruments, once `Metrics::new` has run.
pub fn get() -> Option<&'static Instruments> {
    INSTRUMENTS.get()
}

/// What the observable gauges read at scrape time.
#[derive(Default, Clone)]
pub struct Sources {
    pub stream: Option<Arc<StreamStatus>>,
    /// Requests waiting for a commit, and the queue's capacity.
    pub queue: Option<Arc<dyn Fn() -> (u64, u64) + Send + Sync>>,
    /// Store connections in use and idle.
    pub pool: Option<Arc<dyn Fn() -> (u64, u64) + Send + Sync>>,
    /// The live stream's counters.
    pub hub: Option<Arc<crate::live::HubStats>>,
    /// The OTLP exporter's counters.
    pub export: Option<Arc<crate::export::ExportStats>>,
}

impl Metrics {
    pub fn new(sources: Sources) -> anyhow::Result<Metrics> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .without_target_info()
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("hivewatch");
        let instruments = Instruments::new(&meter);
        register_gauges(&meter, &sources, instruments.sessions_active.clone());
        instruments.claude_code.register(&meter);
        // Series that exist before anything happened, so that rates and alerts read 0 rather than nothing.
        instruments.duplicates.add(0, &[]);
        instruments.commit_errors.add(0, &[]);
        for kind in ["tool", "stop", "api", "span"] {
            instruments.failures.add(0, &[KeyValue::new("kind", kind)]);
        }
        for signal in ["traces", "logs", "metrics", "hook", "transcripts"] {
            for reason in ["invalid", "unavailable"] {
                instruments.rejected.add(
                    0,
                    &[
                        KeyValue::new("signal", signal),
                        KeyValue::new("reason", reason),
                    ],
                );
            }
        }
        // A second exporter in one process (tests) keeps recording into the first set of instruments.
        let _ = INSTRUMENTS.set(instruments);
        Ok(Metrics {
            registry,
            _provider: provider,
        })
    }

    /// The current values in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families; a failure leaves what was written.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

fn histogram(
    meter: &Meter,
    name: &'static str,
    help: &'static str,
    buckets: &[f64],
) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_description(help)
        .with_boundaries(buckets.to_vec())
        .build()
}

fn counter(meter: &Meter, name: &'static str, help: &'static str) -> Counter<u64> {
    meter.u64_counter(name).with_description(help).build()
}

impl Instruments {
    fn new(meter: &Meter) -> Instruments {
        Instruments {
            events: counter(
                meter,
                "hivewatch_events",
                "Events stored, by source and event type",
            ),
            duplicates: counter(
                meter,
                "hivewatch_events_duplicate",
                "Events received again (a retried delivery) and not stored twice",
            ),
            tool_calls: counter(
                meter,
                "hivewatch_tool_calls",
                "Finished hook tool calls (PostToolUse, PostToolUseFailure), by tool and status",
            ),
            tool_duration: histogram(
                meter,
                "hivewatch_tool_duration_seconds",
                "Duration of finished hook tool calls (duration_ms, else Post minus Pre), by tool and status",
                TOOL_BUCKETS,
            ),
            failures: counter(
                meter,
                "hivewatch_agent_failures",
                "Agent failures: tool (PostToolUseFailure), stop (StopFailure), api (api_error), span (error status)",
            ),
            processing_delay: histogram(
                meter,
                "hivewatch_event_processing_delay_seconds",
                "Event time to commit, by source (hook events: the hook's stamp to durable storage)",
                LATENCY_BUCKETS,
            ),
            ingest_requests: counter(
                meter,
                "hivewatch_ingest_requests",
                "Ingest requests by protocol, signal and outcome",
            ),
            ingest_duration: histogram(
                meter,
                "hivewatch_ingest_request_duration_seconds",
                "Ingest request handling time, body read to answer (includes the commit)",
                LATENCY_BUCKETS,
            ),
            rejected: counter(
                meter,
                "hivewatch_events_rejected",
                "Items not stored: invalid (refused with a message to the sender; a body that cannot be read counts as one) or unavailable (503, retryable)",
            ),
            commit_duration: histogram(
                meter,
                "hivewatch_store_commit_duration_seconds",
                "Time of one group commit",
                LATENCY_BUCKETS,
            ),
            batch_events: histogram(
                meter,
                "hivewatch_store_batch_events",
                "Events per group commit",
                BATCH_BUCKETS,
            ),
            commit_errors: counter(
                meter,
                "hivewatch_store_commit_errors",
                "Group commits that failed (their requests were answered 503)",
            ),
            redis_duration: histogram(
                meter,
                "hivewatch_redis_command_duration_seconds",
                "Round trip of one pipelined XADD batch",
                LATENCY_BUCKETS,
            ),
            stream_lag: histogram(
                meter,
                "hivewatch_stream_lag_seconds",
                "Commit to XADD acknowledged, per event",
                LATENCY_BUCKETS,
            ),
            tool_names: Mutex::new(HashSet::new()),
            claude_code: ClaudeCodeTotals::default(),
            sessions_active: Arc::new(AtomicI64::new(0)),
        }
    }

    fn tool_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return "unknown".into();
        };
        let mut known = self.tool_names.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(name) || known.len() < MAX_TOOL_NAMES && known.insert(name.to_string()) {
            name.to_string()
        } else {
            "other".into()
        }
    }

    /// A group commit: its size, time and what it stored.
    pub fn committed(&self, events: &[StoredEvent], duplicates: usize, took: std::time::Duration) {
        self.commit_duration.record(took.as_secs_f64(), &[]);
        self.batch_events
            .record((events.len() + duplicates) as f64, &[]);
        if duplicates > 0 {
            self.duplicates.add(duplicates as u64, &[]);
        }
        let mut by_type: HashMap<(Source, &str), u64> = HashMap::new();
        let mut failures: HashMap<&'static str, u64> = HashMap::new();
        let mut tools: HashMap<(String, Status), u64> = HashMap::new();
        for se in events {
            let ev = &se.event;
            let event_type = if known_event_type(&ev.event_type) {
                ev.event_type.as_str()
            } else {
                "other"
            };
            *by_type.entry((ev.source, event_type)).or_default() += 1;
            let delay = (ev.received_at - ev.created_at)
                .num_microseconds()
                .unwrap_or(0);
            self.processing_delay.record(
                delay.max(0) as f64 / 1e6,
                &[KeyValue::new("source", ev.source.as_str())],
            );
            let failure = match ev.event_type.as_str() {
                "PostToolUseFailure" => Some("tool"),
                "StopFailure" => Some("stop"),
                "api_error" => Some("api"),
                "span" if ev.status == Status::Error => Some("span"),
                _ => None,
            };
            if let Some(kind) = failure {
                *failures.entry(kind).or_default() += 1;
            }
            if is_tool_finish(&ev.event_type) && matches!(ev.source, Source::Hook | Source::Api) {
                let tool = self.tool_label(ev.tool_name.as_deref());
                let status = ev.status;
                if let Some(ms) = ev.latency_ms {
                    self.tool_duration.record(
                        ms.max(0) as f64 / 1000.0,
                        &[
                            KeyValue::new("tool_name", tool.clone()),
                            KeyValue::new("status", status.as_str()),
                        ],
                    );
                }
                *tools.entry((tool, status)).or_default() += 1;
            }
        }
        for ((source, event_type), n) in by_type {
            self.events.add(
                n,
                &[
                    KeyValue::new("source", source.as_str()),
                    KeyValue::new("event_type", event_type.to_string()),
                ],
            );
        }
        for (kind, n) in failures {
            self.failures.add(n, &[KeyValue::new("kind", kind)]);
        }
        for ((tool, status), n) in tools {
            self.tool_calls.add(
                n,
                &[
                    KeyValue::new("tool_name", tool),
                    KeyValue::new("status", status.as_str()),
                ],
            );
        }
    }

    pub fn commit_failed(&self) {
        self.commit_errors.add(1, &[]);
    }

    /// One answered ingest request.
    pub fn request(
        &self,
        protocol: &'static str,
        signal: &'static str,
        outcome: &'static str,
        started: Instant,
    ) {
        let attrs = [
            KeyValue::new("protocol", protocol),
            KeyValue::new("signal", signal),
        ];
        self.ingest_duration
            .record(started.elapsed().as_secs_f64(), &attrs);
        self.ingest_requests.add(
            1,
            &[
                attrs[0].clone(),
                attrs[1].clone(),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// Items of a request that were not stored.
    pub fn rejected(&self, signal: &'static str, reason: &'static str, items: u64) {
        if items > 0 {
            self.rejected.add(
                items,
                &[
                    KeyValue::new("signal", signal),
                    KeyValue::new("reason", reason),
                ],
            );
        }
    }

    /// One pipelined XADD batch acknowledged by Redis.
    pub fn published(&self, events: &[StoredEvent], took: std::time::Duration) {
        self.redis_duration.record(took.as_secs_f64(), &[]);
        let now = chrono::Utc::now();
        for se in events {
            let lag = (now - se.event.received_at).num_microseconds().unwrap_or(0);
            self.stream_lag.record(lag.max(0) as f64 / 1e6, &[]);
        }
    }

    /// Claude Code's own OTLP metrics (and any sender's with the same names), folded into cumulative totals.
    pub fn otlp_metrics(&self, req: &ExportMetricsServiceRequest) {
        self.claude_code.add(req);
    }
}

fn register_gauges(meter: &Meter, sources: &Sources, sessions_active: Arc<AtomicI64>) {
    meter
        .i64_observable_gauge("hivewatch_sessions_active")
        .with_description("Sessions with activity in the last 30 minutes and no SessionEnd since")
        .with_callback(move |o| o.observe(sessions_active.load(Ordering::Relaxed), &[]))
        .build();
    meter
        .u64_observable_gauge("hivewatch_build_info")
        .with_description("Always 1; the version as a label")
        .with_callback(|o| o.observe(1, &[KeyValue::new("version", env!("CARGO_PKG_VERSION"))]))
        .build();
    meter
        .f64_observable_counter("hivewatch_process_cpu_seconds")
        .with_description("CPU time used by the hivewatch process (user and system)")
        .with_callback(|o| {
            if let Some(s) = process_cpu_seconds() {
                o.observe(s, &[]);
            }
        })
        .build();
    meter
        .u64_observable_gauge("hivewatch_process_resident_memory_bytes")
        .with_description("Resident memory of the hivewatch process")
        .with_callback(|o| {
            if let Some(b) = process_rss_bytes() {
                o.observe(b, &[]);
            }
        })
        .build();
    if let Some(queue) = sources.queue.clone() {
        let capacity = queue.clone();
        meter
            .u64_observable_gauge("hivewatch_pipeline_queue_depth")
            .with_description("Ingest requests waiting for a commit")
            .with_callback(move |o| o.observe(queue().0, &[]))
            .build();
        meter
            .u64_observable_gauge("hivewatch_pipeline_queue_capacity")
            .with_description("Ingest requests that may wait before new ones get 503")
            .with_callback(move |o| o.observe(capacity().1, &[]))
            .build();
    }
    if let Some(pool) = sources.pool.clone() {
        meter
            .u64_observable_gauge("hivewatch_store_pool_connections")
            .with_description("Store connections by state")
            .with_callback(move |o| {
                let (in_use, idle) = pool();
                o.observe(in_use, &[KeyValue::new("state", "in_use")]);
                o.observe(idle, &[KeyValue::new("state", "idle")]);
            })
            .build();
    }
    if let Some(export) = sources.export.clone() {
        let stats = export.clone();
        meter
            .u64_observable_counter("hivewatch_export_spans_exported")
            .with_description("Assembled spans exported over OTLP")
            .with_callback(move |o| o.observe(stats.exported.load(Ordering::Relaxed), &[]))
            .build();
        let stats = export.clone();
        meter
            .u64_observable_counter("hivewatch_export_spans_dropped")
            .with_description(
                "Spans (or committed events, when the export queue was full) given up on",
            )
            .with_callback(move |o| o.observe(stats.dropped.load(Ordering::Relaxed), &[]))
            .build();
        let stats = export;
        meter
            .u64_observable_counter("hivewatch_export_failures")
            .with_description("Failed OTLP export attempts (retried, then dropped)")
            .with_callback(move |o| o.observe(stats.failures.load(Ordering::Relaxed), &[]))
            .build();
    }
    if let Some(hub) = sources.hub.clone() {
        let stats = hub.clone();
        meter
            .u64_observable_gauge("hivewatch_websocket_connections")
            .with_description("Open live-stream WebSocket connections")
            .with_callback(move |o| o.observe(stats.connections.load(Ordering::Relaxed), &[]))
            .build();
        let stats = hub.clone();
        meter
            .u64_observable_counter("hivewatch_websocket_messages_sent")
            .with_description("Events handed to live-stream clients")
            .with_callback(move |o| o.observe(stats.sent.load(Ordering::Relaxed), &[]))
            .build();
        let stats = hub;
        meter
            .u64_observable_counter("hivewatch_websocket_messages_dropped")
            .with_description("Events a slow live-stream client missed (its queue was full)")
            .with_callback(move |o| o.observe(stats.dropped.load(Ordering::Relaxed), &[]))
            .build();
    }
    if let Some(s) = sources.stream.clone() {
        let status = s.clone();
        meter
            .u64_observable_gauge("hivewatch_stream_behind")
            .with_description(
                "1 while the Redis stream is behind the store (Redis failing, or the outbox being drained)",
            )
            .with_callback(move |o| o.observe(status.behind.load(Ordering::Acquire) as u64, &[]))
            .build();
        let status = s.clone();
        meter
            .i64_observable_gauge("hivewatch_outbox_pending_events")
            .with_description("Committed events not yet on the Redis stream, as last counted")
            .with_callback(move |o| o.observe(status.backlog.load(Ordering::Acquire), &[]))
            .build();
        let status = s.clone();
        meter
            .u64_observable_counter("hivewatch_stream_published_events")
            .with_description("Events added to the Redis stream")
            .with_callback(move |o| o.observe(status.published.load(Ordering::Relaxed), &[]))
            .build();
        let status = s;
        meter
            .u64_observable_counter("hivewatch_stream_errors")
            .with_description("Failed attempts to publish to the Redis stream")
            .with_callback(move |o| o.observe(status.errors.load(Ordering::Relaxed), &[]))
            .build();
    }
}

/// User plus system CPU seconds of this process, from /proc (Linux; clock ticks are 1/100 s there).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// One Claude Code metric as hivewatch re-exposes it.
struct Family {
    otlp: &'static str,
    prometheus: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

/// The Claude Code metrics, with the attributes kept as labels (all bounded; `session.id`, `user.id` and the
/// like are dropped so that totals sum over sessions).
const FAMILIES: &[Family] = &[
    Family {
        otlp: "claude_code.token.usage",
        prometheus: "claude_code_token_usage_tokens",
        help: "Tokens used, by model and type (input, output, cacheRead, cacheCreation)",
        labels: &["model", "type"],
    },
    Family {
        otlp: "claude_code.cost.usage",
        prometheus: "claude_code_cost_usage_usd",
        help: "Cost in US dollars, by model",
        labels: &["model"],
    },
    Family {
        otlp: "claude_code.lines_of_code.count",
        prometheus: "claude_code_lines_of_code_count",
        help: "Lines of code added or removed, by type",
        labels: &["type"],
    },
    Family {
        otlp: "claude_code.session.count",
        prometheus: "claude_code_session_count",
        help: "Sessions started",
        labels: &[],
    },
    Family {
        otlp: "claude_code.active_time.total",
        prometheus: "claude_code_active_time_seconds",
        help: "Active time in seconds, by type (user, cli)",
        labels: &["type"],
    },
    Family {
        otlp: "claude_code.code_edit_tool.decision",
        prometheus: "claude_code_code_edit_tool_decision",
        help: "Decisions on code-editing tool permission requests, by decision and tool",
        labels: &["decision", "tool_name"],
    },
    Family {
        otlp: "claude_code.commit.count",
        prometheus: "claude_code_commit_count",
        help: "Git commits created",
        labels: &[],
    },
    Family {
        otlp: "claude_code.pull_request.count",
        prometheus: "claude_code_pull_request_count",
        help: "Pull requests created",
        labels: &[],
    },
];

type Series = (usize, Vec<String>);

/// Running totals of the Claude Code families. Delta points are added; cumulative points (other senders) add
/// their increase over the last point of the same stream, identified by its full attribute set and start time.
#[derive(Default)]
struct ClaudeCodeTotals {
    totals: Arc<Mutex<HashMap<Series, f64>>>,
    /// The last point of each cumulative stream, and when it came (streams quiet for an hour are forgotten).
    last_cumulative: Mutex<HashMap<u64, (f64, Instant)>>,
    /// Label values seen per label name; past [`MAX_LABEL_VALUES`] a new value is counted as `other`.
    label_values: Mutex<HashMap<&'static str, HashSet<String>>>,
    registered: AtomicBool,
}

/// Distinct values of one Claude Code label (model, type, …) given their own series.
const MAX_LABEL_VALUES: usize = 100;
/// Longer label values count as `other`: a label is a name, not a document.
const MAX_LABEL_VALUE_BYTES: usize = 256;
/// Cumulative streams remembered before quiet ones are forgotten.
const MAX_CUMULATIVE_STREAMS: usize = 10_000;

impl ClaudeCodeTotals {
    fn register(&self, meter: &Meter) {
        if self.registered.swap(true, Ordering::AcqRel) {
            return;
        }
        for (i, family) in FAMILIES.iter().enumerate() {
            let totals = self.totals.clone();
            meter
                .f64_observable_counter(family.prometheus)
                .with_description(family.help)
                .with_callback(move |o| {
                    let totals = totals.lock().unwrap_or_else(|p| p.into_inner());
                    for ((f, values), total) in totals.iter() {
                        if *f != i {
                            continue;
                        }
                        let attrs: Vec<KeyValue> = FAMILIES[i]
                            .labels
                            .iter()
                            .zip(values)
                            .map(|(k, v)| KeyValue::new(*k, v.clone()))
                            .collect();
                        o.observe(*total, &attrs);
                    }
                })
                .build();
        }
    }

    fn add(&self, req: &ExportMetricsServiceRequest) {
        use prost::Message;
        use std::hash::{Hash, Hasher};
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = self
            .last_cumulative
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut seen = self.label_values.lock().unwrap_or_else(|p| p.into_inner());
        if last.len() > MAX_CUMULATIVE_STREAMS {
            last.retain(|_, (_, at)| at.elapsed() < std::time::Duration::from_secs(3600));
        }
        for rm in &req.resource_metrics {
            let resource = rm
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            // The resource's part of each cumulative stream's identity, hashed once per resource (not per point).
            let resource_hash = {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                for a in resource {
                    a.encode_to_vec().hash(&mut h);
                }
                h.finish()
            };
            let mut encoded = Vec::new();
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let Some(i) = FAMILIES.iter().position(|f| f.otlp == m.name) else {
                        continue;
                    };
                    let Some(metric::Data::Sum(sum)) = &m.data else {
                        continue;
                    };
                    let cumulative =
                        sum.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                    for dp in &sum.data_points {
                        let value = match dp.value {
                            Some(number_data_point::Value::AsDouble(v)) => v,
                            Some(number_data_point::Value::AsInt(v)) => v as f64,
                            None => continue,
                        };
                        if !value.is_finite() || value < 0.0 {
                            continue;
                        }
                        let attr = |k: &str| {
                            dp.attributes
                                .iter()
                                .chain(resource)
                                .find(|a| a.key == k)
                                .and_then(|a| a.value.as_ref()?.value.as_ref())
                                .map(|v| match v {
                                    any_value::Value::StringValue(s) => s.clone(),
                                    any_value::Value::IntValue(n) => n.to_string(),
                                    any_value::Value::BoolValue(b) => b.to_string(),
                                    any_value::Value::DoubleValue(d) => d.to_string(),
                                    _ => String::new(),
                                })
                                .unwrap_or_default()
                        };
                        let values: Vec<String> = FAMILIES[i]
                            .labels
                            .iter()
                            .map(|k| {
                                let v = attr(k);
                                if v.len() > MAX_LABEL_VALUE_BYTES {
                                    return "other".to_string();
                                }
                                let known = seen.entry(*k).or_default();
                                if known.contains(&v) || known.len() < MAX_LABEL_VALUES {
                                    known.insert(v.clone());
                                    v
                                } else {
                                    "other".to_string()
                                }
                            })
                            .collect();
                        let increase = if cumulative {
                            let mut h = std::collections::hash_map::DefaultHasher::new();
                            (i, dp.start_time_unix_nano, resource_hash).hash(&mut h);
                            encoded.clear();
                            for a in &dp.attributes {
                                a.encode(&mut encoded)
                                    .expect("encoding into a Vec cannot fail");
                            }
                            encoded.hash(&mut h);
                            let previous = last.insert(h.finish(), (value, Instant::now()));
                            match previous {
                                // A lower value means the sender restarted its count.
                                Some((p, _)) if p <= value => value - p,
                                _ => value,
                            }
                        } else {
                            value
                        };
                        *totals.entry((i, values)).or_default() += increase;
                    }
                }
            }
        }
    }
}
