//! Claude Code's own OTLP metrics (token usage, cost, lines of code, …) re-exposed on `/metrics` with Prometheus
//! names. Claude Code sends delta sums; Prometheus wants counters that only grow: deltas are added to running
//! totals, and cumulative points (other senders of the same names) add their increase over the last point of the
//! same stream. Labels are bounded: only the attributes a family names, each with at most [`MAX_LABEL_VALUES`]
//! values.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric, number_data_point};

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
pub struct ClaudeCodeTotals {
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
    pub fn register(&self, meter: &Meter) {
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

    /// Folds one export request's points into the totals.
    pub fn add(&self, req: &ExportMetricsServiceRequest) {
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

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as Kv};
    use opentelemetry_proto::tonic::metrics::v1::{
        Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };

    use super::*;

    fn point(value: f64, start: u64, model: &str) -> NumberDataPoint {
        let s = |v: &str| {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            })
        };
        NumberDataPoint {
            attributes: vec![
                Kv {
                    key: "model".into(),
                    value: s(model),
                    ..Default::default()
                },
                Kv {
                    key: "type".into(),
                    value: s("input"),
                    ..Default::default()
                },
                Kv {
                    key: "session.id".into(),
                    value: s(&format!("session-{start}")),
                    ..Default::default()
                },
            ],
            start_time_unix_nano: start,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        }
    }

    fn export(
        points: Vec<NumberDataPoint>,
        temporality: AggregationTemporality,
    ) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "claude_code.token.usage".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: points,
                            aggregation_temporality: temporality as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn total(t: &ClaudeCodeTotals, model: &str) -> f64 {
        let totals = t.totals.lock().unwrap();
        totals
            .get(&(0, vec![model.to_string(), "input".to_string()]))
            .copied()
            .unwrap_or(0.0)
    }

    #[test]
    fn deltas_add_up_over_sessions() {
        let t = ClaudeCodeTotals::default();
        t.add(&export(
            vec![point(10.0, 1, "opus"), point(5.0, 2, "opus")],
            AggregationTemporality::Delta,
        ));
        t.add(&export(
            vec![point(7.0, 1, "opus")],
            AggregationTemporality::Delta,
        ));
        assert_eq!(total(&t, "opus"), 22.0);
    }

    #[test]
    fn cumulative_streams_add_their_increase_and_survive_a_reset() {
        let t = ClaudeCodeTotals::default();
        let cumulative = AggregationTemporality::Cumulative;
        t.add(&export(vec![point(10.0, 1, "m")], cumulative));
        t.add(&export(vec![point(25.0, 1, "m")], cumulative));
        assert_eq!(total(&t, "m"), 25.0);
        // The sender restarted: a lower value counts whole.
        t.add(&export(vec![point(4.0, 1, "m")], cumulative));
        assert_eq!(total(&t, "m"), 29.0);
        // Another stream (another start time) is its own.
        t.add(&export(vec![point(3.0, 2, "m")], cumulative));
        assert_eq!(total(&t, "m"), 32.0);
        // Nonsense is ignored.
        t.add(&export(
            vec![point(f64::NAN, 3, "m"), point(-1.0, 4, "m")],
            AggregationTemporality::Delta,
        ));
        assert_eq!(total(&t, "m"), 32.0);
    }

    #[test]
    fn label_values_are_bounded() {
        let t = ClaudeCodeTotals::default();
        let points = (0..MAX_LABEL_VALUES + 5)
            .map(|i| point(1.0, 1, &format!("model-{i}")))
            .collect();
        t.add(&export(points, AggregationTemporality::Delta));
        assert_eq!(total(&t, "other"), 5.0);
        t.add(&export(
            vec![point(1.0, 1, &"x".repeat(MAX_LABEL_VALUE_BYTES + 1))],
            AggregationTemporality::Delta,
        ));
        assert_eq!(total(&t, "other"), 6.0);
    }
}
