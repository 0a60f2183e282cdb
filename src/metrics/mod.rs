//! `/metrics` in the Prometheus text format, from hivewatch's OpenTelemetry meters exported to a Prometheus
//! registry (opentelemetry-prometheus).
//!
//! Names are a contract with `prometheus-rules/` and `grafana-provisioning/`. Labels are bounded: never a session,
//! prompt or tool-use id; event types outside the known set and tool names past the first [`MAX_TOOL_NAMES`]
//! become `other`.
//!
//! No global: [`Metrics::new`] runs first in `app`, before any listener opens, and the one [`Instruments`] set is
//! passed to whatever records (receivers, the pipeline, the sinks) as an `Arc`. Observable gauges are registered
//! by the component that owns what they read ([`Metrics::meter`]): the pipeline its queue, the store its pool, each
//! sink its own stats. Work is per batch where it can be: counts are aggregated per label set before they are
//! added. Claude Code's own metrics are re-exposed by [`claude_code`].

pub mod claude_code;

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

use crate::model::StoredEvent;
use crate::model::session_state::SessionStateChanged;
use crate::store::StateCounts;

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
/// Seconds a session waited for a person: from a few seconds to hours.
const WAIT_BUCKETS: &[f64] = &[
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// The exporter, the registry `/metrics` renders, and the instruments everything records into.
#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    _provider: SdkMeterProvider,
    meter: Meter,
    instruments: Arc<Instruments>,
}

/// Everything the rest of the program records into. The doc comment of each instrument's name is its HELP text.
pub struct Instruments {
    pub(crate) events: Counter<u64>,
    duplicates: Counter<u64>,
    pub(crate) tool_calls: Counter<u64>,
    pub(crate) tool_duration: Histogram<f64>,
    pub(crate) failures: Counter<u64>,
    pub(crate) processing_delay: Histogram<f64>,
    ingest_requests: Counter<u64>,
    ingest_duration: Histogram<f64>,
    rejected: Counter<u64>,
    commit_duration: Histogram<f64>,
    batch_events: Histogram<f64>,
    commit_errors: Counter<u64>,
    redis_duration: Histogram<f64>,
    stream_lag: Histogram<f64>,
    tool_names: Mutex<HashSet<String>>,
    claude_code: claude_code::ClaudeCodeTotals,
    /// Filled by the store's periodic count (see `app`).
    pub sessions_active: Arc<AtomicI64>,
    session_waiting: Histogram<f64>,
    /// Sessions by state, filled by the attention sweep's count of the store.
    pub session_states: Arc<Mutex<StateCounts>>,
    pub(crate) notifications_sent: Counter<u64>,
    pub(crate) notifications_failed: Counter<u64>,
    /// Notifications persisted and not yet accepted by their target, over every replica.
    pub notifications_pending: Arc<AtomicI64>,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Metrics> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .without_target_info()
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("hivewatch");
        let instruments = Instruments::new(&meter);
        register_process_gauges(&meter, instruments.sessions_active.clone());
        register_session_gauges(
            &meter,
            instruments.session_states.clone(),
            instruments.notifications_pending.clone(),
        );
        instruments.claude_code.register(&meter);
        // Series that exist before anything happened, so that rates and alerts read 0 rather than nothing.
        instruments.duplicates.add(0, &[]);
        for kind in NOTIFICATION_KINDS {
            let kind = [KeyValue::new("kind", *kind)];
            instruments.notifications_sent.add(0, &kind);
            instruments.notifications_failed.add(0, &kind);
        }
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
        Ok(Metrics {
            registry,
            _provider: provider,
            meter,
            instruments: Arc::new(instruments),
        })
    }

    /// Where components register the gauges that read their own state at scrape time.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    pub fn instruments(&self) -> Arc<Instruments> {
        self.instruments.clone()
    }

    /// The current values in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families; a failure leaves what was written.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

pub(crate) fn histogram(
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

pub(crate) fn counter(meter: &Meter, name: &'static str, help: &'static str) -> Counter<u64> {
    meter.u64_counter(name).with_description(help).build()
}

/// Registers values a component keeps in its own stats, read at scrape time:
/// `observe!(meter, stats, counter "name" "help" => |s| …, gauge "name" "help" => |s| …)`.
macro_rules! observe {
    ($meter:expr, $stats:expr, $($kind:ident $name:literal $help:literal => $read:expr),* $(,)?) => {{
        $($crate::metrics::observe_one($meter, $stats, $name, $help, stringify!($kind) == "counter", $read);)*
    }};
}

pub(crate) use observe;

/// One value of [`observe!`]: a counter (only grows) or a gauge reading `stats` at scrape time.
pub(crate) fn observe_one<S: Send + Sync + 'static>(
    meter: &Meter,
    stats: &Arc<S>,
    name: &'static str,
    help: &'static str,
    counter: bool,
    read: fn(&S) -> u64,
) {
    let stats = stats.clone();
    let callback = move |o: &dyn opentelemetry::metrics::AsyncInstrument<u64>| {
        o.observe(read(&stats), &[]);
    };
    if counter {
        let c = meter.u64_observable_counter(name).with_description(help);
        c.with_callback(callback).build();
    } else {
        let g = meter.u64_observable_gauge(name).with_description(help);
        g.with_callback(callback).build();
    }
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
            claude_code: claude_code::ClaudeCodeTotals::default(),
            sessions_active: Arc::new(AtomicI64::new(0)),
            session_waiting: histogram(
                meter,
                "hivewatch_session_waiting_seconds",
                "How long sessions waited for a person (waiting_for_permission or waiting_for_input), observed when the wait ends, by the state waited in",
                WAIT_BUCKETS,
            ),
            session_states: Arc::default(),
            notifications_sent: counter(
                meter,
                "hivewatch_notifications_sent",
                "Notifications a target accepted (2xx), by kind",
            ),
            notifications_failed: counter(
                meter,
                "hivewatch_notifications_failed",
                "Notification attempts that failed (error, timeout or non-2xx answer; retried with backoff), by kind",
            ),
            notifications_pending: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Records what a commit or a sweep changed of session states: the waits that ended.
    pub fn state_changes(&self, changes: &[SessionStateChanged]) {
        for c in changes {
            if let Some(waited) = c.waited_seconds() {
                self.session_waiting
                    .record(waited, &[KeyValue::new("state", c.previous.state.as_str())]);
            }
        }
    }

    /// A tool's label value: its name while fewer than [`MAX_TOOL_NAMES`] are known, else `other`.
    pub(crate) fn tool_label(&self, name: Option<&str>) -> String {
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

    /// A group commit: its time, its size, and how many of its events were stored before.
    pub fn committed(&self, stored: usize, duplicates: usize, took: std::time::Duration) {
        self.commit_duration.record(took.as_secs_f64(), &[]);
        self.batch_events.record((stored + duplicates) as f64, &[]);
        if duplicates > 0 {
            self.duplicates.add(duplicates as u64, &[]);
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

/// Kinds of notification (`kind` label of the notification counters).
pub const NOTIFICATION_KINDS: &[&str] = &["waiting", "failed", "finished"];

fn register_session_gauges(
    meter: &Meter,
    states: Arc<Mutex<StateCounts>>,
    pending: Arc<AtomicI64>,
) {
    let counts = states.clone();
    meter
        .i64_observable_gauge("hivewatch_sessions")
        .with_description("Sessions by state, over every replica (counted in the store)")
        .with_callback(move |o| {
            let counts = counts.lock().unwrap_or_else(|p| p.into_inner());
            for (state, n) in &counts.by_state {
                o.observe(*n, &[KeyValue::new("state", state.as_str())]);
            }
        })
        .build();
    meter
        .f64_observable_gauge("hivewatch_session_longest_wait_seconds")
        .with_description(
            "How long the session waiting longest for a person has waited so far (0: none waits)",
        )
        .with_callback(move |o| {
            let counts = states.lock().unwrap_or_else(|p| p.into_inner());
            o.observe(counts.longest_wait_seconds, &[]);
        })
        .build();
    meter
        .i64_observable_gauge("hivewatch_notifications_pending")
        .with_description("Notifications persisted and not yet accepted by their target")
        .with_callback(move |o| o.observe(pending.load(Ordering::Relaxed), &[]))
        .build();
}

fn register_process_gauges(meter: &Meter, sessions_active: Arc<AtomicI64>) {
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
