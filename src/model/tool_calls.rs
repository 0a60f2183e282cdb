//! Tool-call pairing, one implementation for both back-ends, the timeline and export: a PreToolUse and its
//! PostToolUse or PostToolUseFailure share `(session_id, tool_use_id)`; a finished call's latency is the Post's
//! `duration_ms` when the hook gave one, else Post time minus Pre time.
//!
//! The stores pair across batches and replicas: each commit folds its halves with [`ToolHalves::collect`], merges
//! them into the stored halves (the `tool_calls` table) with [`ToolHalf::merge`]'s rule, and sets the latency of
//! every Post whose Pre is now known ([`latency_ms`]).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AgentEvent, SpanId, StoredEvent};

/// Which half of a tool call an event is, with its `tool_use_id`; `None` for any other event.
pub fn half_of(ev: &AgentEvent) -> Option<(Half, &str)> {
    let half = if ev.event_type.is_tool_start() {
        Half::Start
    } else if ev.event_type.is_tool_finish() {
        Half::Finish
    } else {
        return None;
    };
    Some((half, ev.tool_use_id.as_deref()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    Start,
    Finish,
}

/// Milliseconds from a Pre to its Post, never negative (clocks of two machines may disagree).
pub fn latency_ms(pre_at: DateTime<Utc>, post_at: DateTime<Utc>) -> i64 {
    (post_at - pre_at).num_milliseconds().max(0)
}

/// When a finished call started, from its end and latency.
pub fn started_at(finished_at: DateTime<Utc>, latency_ms: Option<i64>) -> DateTime<Utc> {
    latency_ms
        .and_then(|ms| finished_at.checked_sub_signed(chrono::Duration::milliseconds(ms)))
        .unwrap_or(finished_at)
}

/// The hook tool-call halves of a batch, one entry per `(session_id, tool_use_id)` in key order (the order in
/// which the stores lock the rows).
#[derive(Debug, Default)]
pub struct ToolHalves {
    pub calls: BTreeMap<(Uuid, String), ToolHalf>,
}

/// What is known of one call: when it started, and the finishing event's row id and time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ToolHalf {
    pub pre_at: Option<DateTime<Utc>>,
    pub post: Option<(i64, DateTime<Utc>)>,
}

impl ToolHalf {
    /// The stored half with a batch's half over it: what the batch knows wins, the rest is kept.
    pub fn merge(self, newer: ToolHalf) -> ToolHalf {
        ToolHalf {
            pre_at: newer.pre_at.or(self.pre_at),
            post: newer.post.or(self.post),
        }
    }

    /// The Post's row id and latency once both halves are known.
    pub fn paired(&self) -> Option<(i64, i64)> {
        let (post_id, post_at) = self.post?;
        Some((post_id, latency_ms(self.pre_at?, post_at)))
    }
}

impl ToolHalves {
    /// From newly stored events with their row ids; a later half of the same kind replaces an earlier one.
    pub fn collect<'a>(inserted: impl IntoIterator<Item = (i64, &'a AgentEvent)>) -> ToolHalves {
        let mut out = ToolHalves::default();
        for (id, ev) in inserted {
            let Some((half, tool_use_id)) = half_of(ev) else {
                continue;
            };
            let entry = out
                .calls
                .entry((ev.session_id, tool_use_id.to_string()))
                .or_default();
            match half {
                Half::Start => entry.pre_at = Some(ev.created_at),
                Half::Finish => entry.post = Some((id, ev.created_at)),
            }
        }
        out
    }
}

/// The latencies to set after a merge, by the Post's row id: those of calls now paired whose Post has none of
/// its own. `own` tells whether a Post already carries one (its `duration_ms`).
pub fn latencies_to_set(
    merged: impl IntoIterator<Item = ToolHalf>,
    own: impl Fn(i64) -> bool,
) -> HashMap<i64, i64> {
    merged
        .into_iter()
        .filter_map(|h| h.paired())
        .filter(|(id, _)| !own(*id))
        .collect()
}

/// A tool call: PreToolUse and PostToolUse/PostToolUseFailure joined by `tool_use_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool_use_id: String,
    pub tool_name: Option<String>,
    pub agent_id: String,
    pub prompt_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub latency_ms: Option<i64>,
    /// `running` (no Post yet), `ok` or `error`.
    pub status: String,
    pub span_id: Option<SpanId>,
    pub parent_span_id: Option<SpanId>,
}

/// Pairs the tool events of one session's timeline; a Post without a Pre is a call whose start is inferred.
pub fn pair_tool_calls(events: &[StoredEvent]) -> Vec<ToolCall> {
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for se in events {
        let ev = &se.event;
        let Some((half, id)) = half_of(ev) else {
            continue;
        };
        let i = *index.entry(id).or_insert_with(|| {
            calls.push(ToolCall {
                tool_use_id: id.to_string(),
                tool_name: ev.tool_name.clone(),
                agent_id: ev.agent_id.clone(),
                prompt_id: ev.prompt_id.clone(),
                started_at: None,
                finished_at: None,
                latency_ms: None,
                status: "running".into(),
                span_id: ev.span_id,
                parent_span_id: ev.parent_span_id,
            });
            calls.len() - 1
        });
        let call = &mut calls[i];
        match half {
            Half::Start => call.started_at = Some(ev.created_at),
            Half::Finish => {
                call.finished_at = Some(ev.created_at);
                call.latency_ms = ev.latency_ms;
                call.status = ev.status.as_str().into();
            }
        }
        if call.tool_name.is_none() {
            call.tool_name = ev.tool_name.clone();
        }
    }
    for call in &mut calls {
        if call.started_at.is_none()
            && let Some(end) = call.finished_at
            && call.latency_ms.is_some()
        {
            call.started_at = Some(started_at(end, call.latency_ms));
        }
        if call.latency_ms.is_none()
            && let (Some(s), Some(e)) = (call.started_at, call.finished_at)
        {
            call.latency_ms = Some(latency_ms(s, e));
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::json;

    use super::*;
    use crate::model::hook::{HookContext, normalize_hook};

    fn hook(v: serde_json::Value, at: DateTime<Utc>) -> AgentEvent {
        let ctx = HookContext {
            created_at: Some(at),
            ..Default::default()
        };
        normalize_hook(v, &ctx, at).unwrap()
    }

    fn tool(name: &str, id: &str, at: DateTime<Utc>, extra: serde_json::Value) -> AgentEvent {
        let mut v = json!({"session_id": "s", "hook_event_name": name, "tool_use_id": id, "tool_name": "Bash"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        hook(v, at)
    }

    #[test]
    fn tool_calls_pair_by_id_and_infer_missing_halves() {
        let t0: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        let stored = |event| StoredEvent { id: 0, event };
        let events = [
            stored(tool("PreToolUse", "a", t0, json!({}))),
            stored(tool(
                "PostToolUse",
                "a",
                t0 + Duration::milliseconds(300),
                json!({}),
            )),
            stored(tool(
                "PostToolUseFailure",
                "b",
                t0 + Duration::seconds(1),
                json!({"duration_ms": 200}),
            )),
            stored(tool(
                "PreToolUse",
                "c",
                t0 + Duration::seconds(2),
                json!({}),
            )),
        ];
        let calls = pair_tool_calls(&events);
        let by: HashMap<&str, &ToolCall> =
            calls.iter().map(|c| (c.tool_use_id.as_str(), c)).collect();
        assert_eq!(
            (by["a"].latency_ms, by["a"].status.as_str()),
            (Some(300), "ok")
        );
        assert_eq!(
            (by["b"].latency_ms, by["b"].status.as_str()),
            (Some(200), "error")
        );
        assert_eq!(by["b"].started_at, Some(t0 + Duration::milliseconds(800)));
        assert_eq!(
            (by["c"].latency_ms, by["c"].status.as_str()),
            (None, "running")
        );
    }

    #[test]
    fn halves_merge_across_batches_whichever_comes_first() {
        let t0: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        // The Post is committed first (another replica, say), its Pre in a later batch.
        let post = tool(
            "PostToolUse",
            "a",
            t0 + Duration::milliseconds(250),
            json!({}),
        );
        let first = ToolHalves::collect([(7, &post)]);
        let stored = first.calls[&(post.session_id, "a".to_string())];
        assert_eq!(stored.paired(), None);
        let pre = tool("PreToolUse", "a", t0, json!({}));
        let second = ToolHalves::collect([(8, &pre)]);
        let merged = stored.merge(second.calls[&(pre.session_id, "a".to_string())]);
        assert_eq!(merged.paired(), Some((7, 250)));
        assert_eq!(
            latencies_to_set([merged], |_| false),
            HashMap::from([(7, 250)])
        );
        // A Post with a duration of its own keeps it.
        assert!(latencies_to_set([merged], |id| id == 7).is_empty());
        // Skewed clocks never make a negative latency.
        assert_eq!(latency_ms(t0, t0 - Duration::seconds(1)), 0);
        // Other events are no half.
        let stop = hook(json!({"session_id": "s", "hook_event_name": "Stop"}), t0);
        assert!(ToolHalves::collect([(9, &stop)]).calls.is_empty());
    }
}
