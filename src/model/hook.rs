//! Hook payloads (Claude Code's hook JSON, or the seed API's envelope) into `AgentEvent`s.
//!
//! Claude Code's hook input carries no time and no event id: the sender (`hivewatch hook`) stamps both and
//! passes them beside the payload (`HookContext`); a payload posted bare is stamped on arrival.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::EventType;
use super::event::{AgentEvent, Severity, Source, Status};
use super::ids::{SpanId, TraceId, session_uuid};

/// What the sender knows about a hook payload that the payload itself does not say.
#[derive(Debug, Clone, Default)]
pub struct HookContext {
    pub event_id: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
    pub source_app: Option<String>,
    pub agent_id: Option<String>,
    /// The W3C `traceparent` the hook saw in its environment: a link to Claude Code's native span.
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("hook payload must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("hook payload has no `{0}`")]
    Missing(&'static str),
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
}

/// Normalizes one hook payload. `now` stands in for the time when neither sender nor payload gives one.
pub fn normalize_hook(
    value: Value,
    ctx: &HookContext,
    now: DateTime<Utc>,
) -> Result<AgentEvent, HookError> {
    let Value::Object(mut obj) = value else {
        return Err(HookError::NotAnObject(json_kind(&value)));
    };
    // The seed envelope wraps the hook fields in `payload` and names the event `hook_event_type`.
    let envelope = !obj.contains_key("hook_event_name") && obj.contains_key("hook_event_type");
    let (source, event_type, mut payload, envelope_fields) = if envelope {
        let event_type = required_str(&obj, "hook_event_type")?;
        let payload = match obj.remove("payload") {
            Some(Value::Object(p)) => p,
            None | Some(Value::Null) => Map::new(),
            Some(_) => {
                return Err(HookError::WrongType {
                    field: "payload",
                    expected: "an object",
                });
            }
        };
        (Source::Api, event_type, payload, Some(obj))
    } else {
        let event_type = required_str(&obj, "hook_event_name")?;
        (Source::Hook, event_type, obj, None)
    };
    let event_type = EventType::from(event_type);

    // Envelope fields win over the inner payload; the sender's context wins over both.
    let field = |name: &'static str| -> Result<Option<String>, HookError> {
        if let Some(env) = &envelope_fields
            && let Some(v) = opt_str(env, name)?
        {
            return Ok(Some(v));
        }
        opt_str(&payload, name)
    };

    let raw_session = field("session_id")?.ok_or(HookError::Missing("session_id"))?;
    if raw_session.is_empty() {
        return Err(HookError::Missing("session_id"));
    }
    let session_id = session_uuid(&raw_session);
    let prompt_id = field("prompt_id")?;
    let tool_name = field("tool_name")?;
    let tool_use_id = field("tool_use_id")?;
    let agent_id = field("agent_id")?
        .filter(|s| !s.is_empty())
        .or_else(|| ctx.agent_id.clone())
        .unwrap_or_else(|| "main".into());
    let source_app = ctx
        .source_app
        .clone()
        .or(field("source_app")?)
        .or_else(|| cwd_name(&payload))
        .unwrap_or_else(|| "unknown".into());
    let envelope_time = envelope_fields
        .as_ref()
        .and_then(|env| env.get("timestamp"))
        .and_then(epoch_millis);
    let created_at = ctx.created_at.or(envelope_time).unwrap_or(now);
    let event_id = ctx
        .event_id
        .or_else(|| {
            envelope_fields
                .as_ref()
                .and_then(|env| opt_str(env, "event_id").ok().flatten()?.parse().ok())
        })
        .unwrap_or_else(Uuid::now_v7);

    let status = if event_type.is_failure() {
        Status::Error
    } else {
        Status::Ok
    };
    let severity = match event_type {
        _ if status == Status::Error => Severity::Error,
        EventType::PermissionRequest | EventType::PermissionDenied | EventType::Interrupt => {
            Severity::Warn
        }
        EventType::Notification => notification_severity(payload.get("notification_type")),
        _ => Severity::Info,
    };
    let model = match event_type {
        // A switch's new model; a PreModelSwitch names one that may still be refused.
        EventType::PostModelSwitch => payload.get("to_model"),
        EventType::PreModelSwitch => None,
        _ => payload.get("model"),
    }
    .and_then(Value::as_str)
    .filter(|m| !m.is_empty())
    .map(str::to_string);
    let mcp_server = mcp_server_of(payload.get("mcp_server"), tool_name.as_deref());
    let latency_ms = if event_type.is_tool_finish() {
        payload.get("duration_ms").and_then(Value::as_i64)
    } else {
        None
    };

    let trace_id = TraceId::from_session(session_id);
    let session_span = SpanId::derived("session", &session_id.to_string());
    let turn_span = prompt_id.as_deref().map(|p| SpanId::derived("turn", p));
    let agent_span = (agent_id != "main").then(|| SpanId::derived("agent", &agent_id));
    let (span_id, parent_span_id) = match event_type {
        EventType::SessionStart | EventType::SessionEnd => (Some(session_span), None),
        EventType::UserPromptSubmit | EventType::Stop | EventType::StopFailure
            if turn_span.is_some() =>
        {
            (turn_span, Some(session_span))
        }
        EventType::SubagentStart | EventType::SubagentStop if agent_span.is_some() => {
            (agent_span, Some(turn_span.unwrap_or(session_span)))
        }
        _ => {
            let owner = agent_span.or(turn_span).unwrap_or(session_span);
            match &tool_use_id {
                Some(t) => (Some(SpanId::derived("tool", t)), Some(owner)),
                None => (Some(owner), None),
            }
        }
    };

    if raw_session != session_id.to_string() {
        payload.insert(
            "hivewatch.original_session_id".into(),
            Value::String(raw_session),
        );
    }
    if let Some(tp) = &ctx.traceparent {
        payload.insert("hivewatch.traceparent".into(), Value::String(tp.clone()));
    }
    if let Some(mut env) = envelope_fields {
        for key in ["summary", "chat"] {
            if let Some(v) = env.remove(key) {
                payload.insert(key.into(), v);
            }
        }
    }

    Ok(AgentEvent {
        event_id,
        event_type,
        source,
        session_id,
        agent_id,
        source_app,
        prompt_id,
        tool_name,
        tool_use_id,
        trace_id,
        span_id,
        parent_span_id,
        status,
        severity,
        latency_ms,
        model,
        mcp_server,
        repo: None,
        branch: None,
        commit: None,
        created_at,
        received_at: now,
        payload: Value::Object(payload),
    })
}

/// Notification types that ask for a person (a permission, an answer, a sign-in) are warnings; the others
/// (`agent_completed`, `auth_success`, …) are information. A Notification without a type (older Claude Code) asks
/// for a person.
fn notification_severity(kind: Option<&Value>) -> Severity {
    const NEEDS_A_PERSON: &[&str] = &[
        "permission_prompt",
        "worker_permission_prompt",
        "idle_prompt",
        "agent_needs_input",
        "elicitation_dialog",
        "elicitation_url_dialog",
        "auth_storage_failure",
        "model_refusal_fallback",
    ];
    match kind.and_then(Value::as_str) {
        None => Severity::Warn,
        Some(k) if NEEDS_A_PERSON.contains(&k) => Severity::Warn,
        Some(_) => Severity::Info,
    }
}

/// The MCP server of a tool event: Claude Code's `mcp_server` (an object with a `name`, or a name), else the
/// server part of an MCP tool's name, `mcp__<server>__<tool>`.
pub fn mcp_server_of(field: Option<&Value>, tool_name: Option<&str>) -> Option<String> {
    let named = match field {
        Some(Value::Object(o)) => o.get("name").and_then(Value::as_str),
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    named
        .or_else(|| {
            tool_name?
                .strip_prefix("mcp__")?
                .split_once("__")
                .map(|(server, _)| server)
        })
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn required_str(obj: &Map<String, Value>, name: &'static str) -> Result<String, HookError> {
    opt_str(obj, name)?
        .filter(|s| !s.is_empty())
        .ok_or(HookError::Missing(name))
}

fn opt_str(obj: &Map<String, Value>, name: &'static str) -> Result<Option<String>, HookError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(HookError::WrongType {
            field: name,
            expected: "a string",
        }),
    }
}

fn cwd_name(payload: &Map<String, Value>) -> Option<String> {
    let cwd = payload.get("cwd")?.as_str()?;
    let name = cwd.trim_end_matches('/').rsplit('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// The seed envelope's `timestamp`: milliseconds since the epoch (a number, or RFC 3339 text).
fn epoch_millis(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => Utc.timestamp_millis_opt(n.as_i64()?).single(),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn tool_call_gets_tool_span_under_its_turn() {
        let ev = normalize_hook(
            json!({"session_id": "0fbc6975-e498-4c0d-a2a2-497077c17a19", "hook_event_name": "PostToolUse",
                   "prompt_id": "p1", "tool_name": "Bash", "tool_use_id": "toolu_1", "duration_ms": 42,
                   "cwd": "/home/dev/projects/demo"}),
            &HookContext::default(),
            now(),
        )
        .unwrap();
        assert_eq!(ev.source, Source::Hook);
        assert_eq!(ev.trace_id.to_hex(), "0fbc6975e4984c0da2a2497077c17a19");
        assert_eq!(ev.span_id, Some(SpanId::derived("tool", "toolu_1")));
        assert_eq!(ev.parent_span_id, Some(SpanId::derived("turn", "p1")));
        assert_eq!(ev.latency_ms, Some(42));
        assert_eq!(ev.source_app, "demo");
        assert_eq!(ev.agent_id, "main");
        assert_eq!(ev.created_at, now());
    }

    #[test]
    fn subagent_tool_calls_hang_under_the_subagent() {
        let ev = normalize_hook(
            json!({"session_id": "s", "hook_event_name": "PreToolUse", "prompt_id": "p1",
                   "agent_id": "a828a481a9d4da57f", "tool_use_id": "toolu_2"}),
            &HookContext::default(),
            now(),
        )
        .unwrap();
        assert_eq!(ev.agent_id, "a828a481a9d4da57f");
        assert_eq!(
            ev.parent_span_id,
            Some(SpanId::derived("agent", "a828a481a9d4da57f"))
        );
        assert_eq!(ev.payload["hivewatch.original_session_id"], "s");
        assert_eq!(ev.session_id, session_uuid("s"));
    }

    #[test]
    fn unknown_hook_names_are_kept_and_failures_are_errors() {
        let ctx = HookContext {
            source_app: Some("app".into()),
            ..Default::default()
        };
        let ev = normalize_hook(
            json!({"session_id": "s", "hook_event_name": "SomethingNew"}),
            &ctx,
            now(),
        )
        .unwrap();
        assert_eq!(ev.event_type, "SomethingNew");
        assert_eq!(ev.source_app, "app");
        assert_eq!(ev.severity, Severity::Info);
        let ev = normalize_hook(
            json!({"session_id": "s", "hook_event_name": "StopFailure"}),
            &ctx,
            now(),
        )
        .unwrap();
        assert_eq!((ev.status, ev.severity), (Status::Error, Severity::Error));
    }

    #[test]
    fn new_events_and_fields_are_lifted() {
        let ctx = HookContext::default();
        let ev = |v: serde_json::Value| normalize_hook(v, &ctx, now()).unwrap();
        let pre = ev(
            json!({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "mcp__github__search",
                            "tool_use_id": "t", "mcp_server": {"name": "github", "source": "user"}}),
        );
        assert_eq!(pre.mcp_server.as_deref(), Some("github"));
        let bare = ev(
            json!({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "mcp__linear__list"}),
        );
        assert_eq!(bare.mcp_server.as_deref(), Some("linear"));
        let bash =
            ev(json!({"session_id": "s", "hook_event_name": "PreToolUse", "tool_name": "Bash"}));
        assert_eq!(bash.mcp_server, None);
        let switch = ev(
            json!({"session_id": "s", "hook_event_name": "PostModelSwitch", "from_model": "a",
                               "to_model": "claude-sonnet-5", "source": "command"}),
        );
        assert_eq!(switch.model.as_deref(), Some("claude-sonnet-5"));
        let start = ev(
            json!({"session_id": "s", "hook_event_name": "SessionStart", "source": "fork", "model": "m"}),
        );
        assert_eq!(start.model.as_deref(), Some("m"));
        let interrupt = ev(
            json!({"session_id": "s", "hook_event_name": "Interrupt", "source": "user", "reason": "stop"}),
        );
        assert_eq!(interrupt.severity, Severity::Warn);
        let needs = ev(
            json!({"session_id": "s", "hook_event_name": "Notification", "notification_type": "agent_needs_input"}),
        );
        let done = ev(
            json!({"session_id": "s", "hook_event_name": "Notification", "notification_type": "agent_completed"}),
        );
        assert_eq!(
            (needs.severity, done.severity),
            (Severity::Warn, Severity::Info)
        );
        // A skill's shell command names a tool call that no PostToolUse finishes: its own span, no tool start.
        let skill = ev(
            json!({"session_id": "s", "hook_event_name": "PreSkillShellCommand", "tool_name": "Bash",
                              "tool_use_id": "sk1", "prompt_id": "p"}),
        );
        assert_eq!(skill.span_id, Some(SpanId::derived("tool", "sk1")));
        assert!(!skill.event_type.is_tool_start());
        let failure =
            ev(json!({"session_id": "s", "hook_event_name": "StopFailure", "error": "rate_limit"}));
        assert_eq!(failure.status, Status::Error);
    }

    #[test]
    fn seed_envelope_is_accepted() {
        let ev = normalize_hook(
            json!({"source_app": "demo-app", "session_id": "abc", "hook_event_type": "PreToolUse",
                   "payload": {"tool_name": "Read", "tool_use_id": "t9"}, "timestamp": 1_800_000_000_000i64,
                   "summary": "reads a file"}),
            &HookContext::default(),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(ev.source, Source::Api);
        assert_eq!(ev.source_app, "demo-app");
        assert_eq!(ev.tool_name.as_deref(), Some("Read"));
        assert_eq!(ev.created_at, now());
        assert_eq!(ev.payload["summary"], "reads a file");
    }

    #[test]
    fn bad_payloads_name_the_problem() {
        let ctx = HookContext::default();
        assert_eq!(
            normalize_hook(json!({"hook_event_name": "Stop"}), &ctx, now())
                .unwrap_err()
                .to_string(),
            "hook payload has no `session_id`"
        );
        assert_eq!(
            normalize_hook(json!([1]), &ctx, now()).unwrap_err(),
            HookError::NotAnObject("an array")
        );
        assert_eq!(
            normalize_hook(
                json!({"session_id": 5, "hook_event_name": "Stop"}),
                &ctx,
                now()
            )
            .unwrap_err(),
            HookError::WrongType {
                field: "session_id",
                expected: "a string"
            }
        );
    }
}
