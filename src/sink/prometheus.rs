//! Prometheus counting of committed events: events by source and type, agent failures, finished hook tool calls
//! with their duration, and the processing delay (event time to commit). Aggregated per label set for each batch
//! before anything is added.
//!
//! Backpressure: none needed; counting a batch is in-memory work proportional to its size, done on the
//! committer's task.

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::KeyValue;

use super::{Committed, Sink};
use crate::metrics::Instruments;
use crate::model::{EventType, Source, Status};

pub struct PrometheusSink {
    instruments: Arc<Instruments>,
}

impl PrometheusSink {
    pub fn new(instruments: Arc<Instruments>) -> Self {
        PrometheusSink { instruments }
    }
}

impl Sink for PrometheusSink {
    fn deliver(&self, batch: &Committed) {
        let m = &self.instruments;
        m.state_changes(&batch.states);
        let mut by_type: HashMap<(Source, &str), u64> = HashMap::new();
        let mut failures: HashMap<&'static str, u64> = HashMap::new();
        let mut tools: HashMap<(String, Status), u64> = HashMap::new();
        for se in batch.events.iter() {
            let ev = &se.event;
            let event_type = if ev.event_type.is_known() {
                ev.event_type.as_str()
            } else {
                "other"
            };
            *by_type.entry((ev.source, event_type)).or_default() += 1;
            let delay = (ev.received_at - ev.created_at)
                .num_microseconds()
                .unwrap_or(0);
            m.processing_delay.record(
                delay.max(0) as f64 / 1e6,
                &[KeyValue::new("source", ev.source.as_str())],
            );
            let failure = match ev.event_type {
                EventType::PostToolUseFailure => Some("tool"),
                EventType::StopFailure => Some("stop"),
                EventType::ApiError => Some("api"),
                EventType::Span if ev.status == Status::Error => Some("span"),
                _ => None,
            };
            if let Some(kind) = failure {
                *failures.entry(kind).or_default() += 1;
            }
            // Native tool_result logs would count the same calls twice when both are on: hooks only.
            if ev.event_type.is_tool_finish() && matches!(ev.source, Source::Hook | Source::Api) {
                let tool = m.tool_label(ev.tool_name.as_deref());
                let status = ev.status;
                if let Some(ms) = ev.latency_ms {
                    m.tool_duration.record(
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
            m.events.add(
                n,
                &[
                    KeyValue::new("source", source.as_str()),
                    KeyValue::new("event_type", event_type.to_string()),
                ],
            );
        }
        for (kind, n) in failures {
            m.failures.add(n, &[KeyValue::new("kind", kind)]);
        }
        for ((tool, status), n) in tools {
            m.tool_calls.add(
                n,
                &[
                    KeyValue::new("tool_name", tool),
                    KeyValue::new("status", status.as_str()),
                ],
            );
        }
    }
}
