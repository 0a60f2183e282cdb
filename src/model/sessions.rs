//! Sessions as the sessions list shows them, and the per-batch fold that keeps them current: each group commit
//! adds one [`SessionDelta`] per session to its row, in the same transaction as the events (both back-ends).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::session_state::SessionState;
use super::time::micros;
use super::{AgentEvent, EventType, Status};

/// One session as the sessions list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub session_id: Uuid,
    pub source_app: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub cwd: Option<String>,
    pub model: Option<String>,
    /// `active` until a SessionEnd, then `ended` (a later SessionStart makes it `active` again).
    pub status: String,
    /// What the session is doing now (see `model::session_state`), since when, and what it waits on.
    pub state: SessionState,
    pub state_since: DateTime<Utc>,
    pub waiting_on: Option<String>,
    /// The error kind of a failure, or the notification type of a wait.
    pub state_detail: Option<String>,
    pub current_tool: Option<String>,
    pub running_subagents: i64,
    #[serde(flatten)]
    pub totals: SessionTotals,
}

/// What a session adds up: in its row, and in what one batch adds to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionTotals {
    pub event_count: i64,
    /// Finished tool calls (named `tool_call_count` so that it never clashes with a timeline's `tool_calls`).
    #[serde(rename = "tool_call_count")]
    pub tool_calls: i64,
    pub tool_failures: i64,
    pub error_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

/// What one batch adds to one session's row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDelta {
    pub session_id: Uuid,
    pub source_app: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub cwd: Option<String>,
    pub model: Option<String>,
    /// The latest lifecycle change in the batch: (`active`|`ended`, time).
    pub status: Option<(&'static str, i64)>,
    pub totals: SessionTotals,
}

/// Folds newly inserted events into one delta per session: the per-batch half of keeping sessions current.
pub fn session_deltas<'a>(events: impl IntoIterator<Item = &'a AgentEvent>) -> Vec<SessionDelta> {
    let mut by_session: HashMap<Uuid, SessionDelta> = HashMap::new();
    for ev in events {
        let t = micros(ev.created_at);
        let d = by_session
            .entry(ev.session_id)
            .or_insert_with(|| SessionDelta {
                session_id: ev.session_id,
                source_app: ev.source_app.clone(),
                first_seen: t,
                last_seen: t,
                cwd: None,
                model: None,
                status: None,
                totals: SessionTotals::default(),
            });
        d.first_seen = d.first_seen.min(t);
        d.last_seen = d.last_seen.max(t);
        d.totals.event_count += 1;
        if ev.status == Status::Error {
            d.totals.error_count += 1;
        }
        if ev.event_type.is_tool_finish() {
            d.totals.tool_calls += 1;
            if ev.status == Status::Error {
                d.totals.tool_failures += 1;
            }
        }
        let p = &ev.payload;
        if d.cwd.is_none() {
            d.cwd = p.get("cwd").and_then(Value::as_str).map(str::to_string);
        }
        let attrs = p.get("attributes");
        // The latest model named in the batch: a request's, a session start's, a switch's new one.
        if let Some(m) = &ev.model {
            d.model = Some(m.clone());
        }
        if ev.event_type == EventType::ApiRequest
            && let Some(a) = attrs
        {
            let t = &mut d.totals;
            t.input_tokens = t.input_tokens.saturating_add(tokens(a.get("input_tokens")));
            t.output_tokens = t
                .output_tokens
                .saturating_add(tokens(a.get("output_tokens")));
            t.cost_usd += cost(a.get("cost_usd"));
        }
        let lifecycle = match ev.event_type {
            EventType::SessionStart => Some("active"),
            EventType::SessionEnd => Some("ended"),
            _ => None,
        };
        if let Some(state) = lifecycle
            && d.status.is_none_or(|(_, at)| at <= t)
        {
            d.status = Some((state, t));
        }
    }
    by_session.into_values().collect()
}

/// A token count as sessions add it up: whole, at least 0 and at most 10^12 per event (a sender's nonsense must
/// not overflow a session's total).
fn tokens(v: Option<&Value>) -> i64 {
    number(v)
        .filter(|n| n.is_finite())
        .map_or(0, |n| n.clamp(0.0, 1e12) as i64)
}

/// A cost in US dollars, finite, at least 0 and at most 10^6 per event.
fn cost(v: Option<&Value>) -> f64 {
    number(v)
        .filter(|n| n.is_finite())
        .map_or(0.0, |n| n.clamp(0.0, 1e6))
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::json;

    use super::*;
    use crate::model::hook::{HookContext, normalize_hook};

    fn hook(v: serde_json::Value, at: DateTime<Utc>) -> AgentEvent {
        normalize_hook(
            v,
            &HookContext {
                created_at: Some(at),
                ..Default::default()
            },
            at,
        )
        .unwrap()
    }

    #[test]
    fn session_deltas_fold_counts_times_and_lifecycle() {
        let t0: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        let s = "0fbc6975-e498-4c0d-a2a2-497077c17a19";
        let events = [
            hook(
                json!({"session_id": s, "hook_event_name": "SessionStart", "cwd": "/w/app", "model": "m1"}),
                t0,
            ),
            hook(
                json!({"session_id": s, "hook_event_name": "PostToolUseFailure", "tool_use_id": "t"}),
                t0 + Duration::seconds(5),
            ),
            hook(
                json!({"session_id": s, "hook_event_name": "SessionEnd"}),
                t0 + Duration::seconds(9),
            ),
            hook(
                json!({"session_id": s, "hook_event_name": "Notification"}),
                t0 + Duration::seconds(2),
            ),
        ];
        let deltas = session_deltas(&events);
        assert_eq!(deltas.len(), 1);
        let d = &deltas[0];
        assert_eq!(
            (d.first_seen, d.last_seen),
            (micros(t0), micros(t0 + Duration::seconds(9)))
        );
        assert_eq!(
            (
                d.totals.event_count,
                d.totals.tool_calls,
                d.totals.tool_failures,
                d.totals.error_count
            ),
            (4, 1, 1, 1)
        );
        assert_eq!(d.status, Some(("ended", micros(t0 + Duration::seconds(9)))));
        assert_eq!(
            (d.cwd.as_deref(), d.model.as_deref()),
            (Some("/w/app"), Some("m1"))
        );
    }
}
