//! A session's live state ("which session needs me?"): the state machine that folds a session's events, in the
//! order they happened, into one of [`SessionState`]. The store keeps the folded [`StateRow`] in the session's
//! row and advances it in the transaction that stores the events, so that every replica agrees; the timed
//! transitions (abandoned, a telemetry-only session going idle) are the store's periodic sweep.
//!
//! The rules, event by event (hook names, then Claude Code's native log events):
//! - a prompt (`UserPromptSubmit`, `user_prompt`), a tool call's start or end, a model request → `working`;
//! - `PermissionRequest` or a `permission_prompt` notification → `waiting_for_permission` until the tool runs,
//!   is denied or the turn ends;
//! - `Stop`, an `idle_prompt`/`agent_needs_input`/`elicitation_dialog` notification → `waiting_for_input`; a
//!   `Stop` while subagents or background tasks still run keeps the session `working` until the last one stops;
//! - `PreCompact` → `compacting`, `PostCompact` → `idle` (a manual compaction) or `working` (an automatic one);
//! - `StopFailure` → `failed` (its `error` kind kept), `Interrupt` → `interrupted`, `SessionEnd` → `ended`,
//!   `SessionStart` → `idle`.
//!
//! A subagent's own activity never ends a wait its parent (or another subagent) raised: the person is still
//! needed. An event older than the one the state was last set from changes nothing (two replicas may store a
//! session's events out of order), except for the count of running subagents, which adds up in any order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::sessions::SessionSummary;
use super::time::micros;
use super::{AgentEvent, EventType, Source};

/// The agent id of a session's main agent.
pub const MAIN_AGENT: &str = "main";
/// Characters of a notification's text kept as what a session waits on.
const WAITING_ON_MAX: usize = 200;

macro_rules! states {
    ($($variant:ident => $name:literal,)*) => {
        /// What a session is doing now.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum SessionState {
            #[default]
            $($variant,)*
        }

        impl SessionState {
            pub const ALL: &[SessionState] = &[$(SessionState::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(SessionState::$variant => $name,)*
                }
            }

            pub fn parse(name: &str) -> Option<SessionState> {
                match name {
                    $($name => Some(SessionState::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

states! {
    Idle => "idle",
    Working => "working",
    WaitingForPermission => "waiting_for_permission",
    WaitingForInput => "waiting_for_input",
    Compacting => "compacting",
    Failed => "failed",
    Interrupted => "interrupted",
    Ended => "ended",
    Abandoned => "abandoned",
}

impl SessionState {
    /// Waiting for a person: what the board calls "needs you" and notifications are about.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            SessionState::WaitingForPermission | SessionState::WaitingForInput
        )
    }

    /// No longer running: the abandon sweep leaves these alone.
    pub fn is_final(self) -> bool {
        matches!(self, SessionState::Ended | SessionState::Abandoned)
    }

    /// Parses a comma-separated list (`?state=a,b`), naming the first unknown state in the error.
    pub fn parse_list(list: &str) -> Result<Vec<SessionState>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                SessionState::parse(s).ok_or_else(|| {
                    let known: Vec<&str> = SessionState::ALL.iter().map(|s| s.as_str()).collect();
                    format!("unknown session state {s:?} (one of {})", known.join(", "))
                })
            })
            .collect()
    }
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state columns of one session's row, as the fold reads and writes them. Times are microseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateRow {
    pub state: SessionState,
    /// When the session entered `state` (none: never set).
    pub since: Option<i64>,
    /// The time of the newest event the state was set from.
    pub at: Option<i64>,
    /// What the session waits on: a tool's name or a notification's text (already redacted with the payload).
    pub waiting_on: Option<String>,
    /// The agent whose event set the state (who asked, for a wait).
    pub agent: Option<String>,
    /// The error kind of a failure, or the notification type of a wait.
    pub detail: Option<String>,
    /// The tool a `PreToolUse` started and no `PostToolUse` ended yet.
    pub current_tool: Option<String>,
    /// Subagents started and not stopped.
    pub subagents: i64,
    /// The main agent stopped while subagents or background tasks ran.
    pub stop_pending: bool,
    /// Hook events were seen (otherwise the session is known from native telemetry only).
    pub hooked: bool,
}

/// Where one event takes a session.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    state: SessionState,
    waiting_on: Option<String>,
    detail: Option<String>,
}

impl Target {
    fn to(state: SessionState) -> Target {
        Target {
            state,
            waiting_on: None,
            detail: None,
        }
    }
}

impl StateRow {
    /// Folds one event in. Returns whether anything of the row changed.
    pub fn apply(&mut self, ev: &AgentEvent) -> bool {
        let before = self.clone();
        let t = micros(ev.created_at);
        if matches!(ev.source, Source::Hook | Source::Api) {
            self.hooked = true;
        }
        match ev.event_type {
            EventType::SubagentStart => self.subagents = self.subagents.saturating_add(1),
            EventType::SubagentStop => self.subagents = (self.subagents - 1).max(0),
            _ => {}
        }
        if self.at.is_some_and(|at| t < at) {
            return *self != before;
        }
        if let Some(target) = self.target(ev) {
            match ev.event_type {
                EventType::PreToolUse => self.current_tool = ev.tool_name.clone(),
                EventType::PostToolUse
                | EventType::PostToolUseFailure
                | EventType::PermissionDenied
                | EventType::Stop
                | EventType::StopFailure
                | EventType::Interrupt
                | EventType::SessionEnd => self.current_tool = None,
                _ => {}
            }
            if ev.event_type == EventType::Stop && target.state == SessionState::Working {
                self.stop_pending = true;
            } else if target.state != SessionState::Working || is_turn_start(ev) {
                self.stop_pending = false;
            }
            if target.state != self.state || self.since.is_none() {
                self.state = target.state;
                self.since = Some(t);
                self.waiting_on = target.waiting_on;
                self.detail = target.detail;
            } else if target.waiting_on.is_some() && self.waiting_on.is_none() {
                // The same episode, told more precisely (a notification after the permission request).
                self.waiting_on = target.waiting_on;
            }
            self.agent = Some(ev.agent_id.clone());
            self.at = Some(t);
        }
        *self != before
    }

    fn target(&self, ev: &AgentEvent) -> Option<Target> {
        use EventType as E;
        use SessionState as S;
        let p = &ev.payload;
        // A wait someone else raised is not ended by this agent's own work.
        let foreign =
            self.state.is_waiting() && self.agent.as_deref() != Some(ev.agent_id.as_str());
        let work = || (!foreign).then(|| Target::to(S::Working));
        match &ev.event_type {
            E::UserPromptSubmit | E::UserPromptExpansion | E::UserPrompt | E::ElicitationResult => {
                Some(Target::to(S::Working))
            }
            E::PreToolUse
            | E::PostToolUse
            | E::PostToolUseFailure
            | E::PostToolBatch
            | E::PermissionDenied
            | E::SubagentStart
            | E::ToolResult
            | E::ToolDecision
            | E::ApiRequest
            | E::ApiError
            | E::AssistantResponse => work(),
            E::PermissionRequest => Some(Target {
                state: S::WaitingForPermission,
                waiting_on: ev.tool_name.clone(),
                detail: None,
            }),
            E::Notification => {
                let kind = str_field(p, "notification_type")?;
                let state = match kind {
                    "permission_prompt" => S::WaitingForPermission,
                    "idle_prompt" | "agent_needs_input" | "elicitation_dialog" => {
                        S::WaitingForInput
                    }
                    _ => return None,
                };
                Some(Target {
                    state,
                    waiting_on: str_field(p, "message").map(clip),
                    detail: Some(kind.to_string()),
                })
            }
            E::Elicitation => Some(Target {
                state: S::WaitingForInput,
                waiting_on: str_field(p, "message").map(clip),
                detail: Some("elicitation".into()),
            }),
            E::Stop => {
                let background = p
                    .get("background_tasks")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty());
                Some(Target::to(if self.subagents > 0 || background {
                    S::Working
                } else {
                    S::WaitingForInput
                }))
            }
            // The last subagent of a turn the main agent already ended: now the person is needed.
            E::SubagentStop if self.stop_pending && self.subagents == 0 => {
                Some(Target::to(S::WaitingForInput))
            }
            E::StopFailure => Some(Target {
                state: S::Failed,
                waiting_on: None,
                detail: Some(str_field(p, "error").unwrap_or("unknown").to_string()),
            }),
            E::ApiRetriesExhausted if !self.hooked => Some(Target {
                state: S::Failed,
                waiting_on: None,
                detail: Some("api_retries_exhausted".into()),
            }),
            E::Interrupt => Some(Target::to(S::Interrupted)),
            E::PreCompact => Some(Target::to(S::Compacting)),
            E::PostCompact => Some(Target::to(if str_field(p, "trigger") == Some("auto") {
                S::Working
            } else {
                S::Idle
            })),
            E::SessionStart => Some(Target::to(S::Idle)),
            E::SessionEnd => Some(Target::to(S::Ended)),
            _ => None,
        }
    }
}

fn is_turn_start(ev: &AgentEvent) -> bool {
    matches!(
        ev.event_type,
        EventType::UserPromptSubmit | EventType::UserPrompt
    )
}

fn str_field<'a>(p: &'a Value, key: &str) -> Option<&'a str> {
    p.get(key)
        .or_else(|| p.get("attributes").and_then(|a| a.get(key)))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn clip(s: &str) -> String {
    match s.char_indices().nth(WAITING_ON_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A session whose state a commit or a sweep changed: what the live stream sends and metrics count.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub session_id: Uuid,
    pub previous: SessionState,
    /// When the previous state began (none for a new session).
    pub previous_since: Option<i64>,
    pub state: SessionState,
    pub since: i64,
}

/// Folds one session's newly stored events (any order) into its row; returns the change of state, if any.
pub fn fold_session<'a>(
    session_id: Uuid,
    row: &mut StateRow,
    events: impl IntoIterator<Item = &'a AgentEvent>,
) -> Option<StateChange> {
    let (previous, previous_since) = (row.state, row.since);
    let mut events: Vec<&AgentEvent> = events.into_iter().collect();
    events.sort_by_key(|ev| ev.created_at);
    for ev in events {
        row.apply(ev);
    }
    let since = row.since?;
    (row.state != previous || previous_since.is_none()).then_some(StateChange {
        session_id,
        previous,
        previous_since,
        state: row.state,
        since,
    })
}

/// The sessions of a batch whose state rows its events can change, each with those events.
pub fn sessions_touched<'a>(
    events: impl IntoIterator<Item = &'a AgentEvent>,
) -> HashMap<Uuid, Vec<&'a AgentEvent>> {
    let mut out: HashMap<Uuid, Vec<&AgentEvent>> = HashMap::new();
    for ev in events {
        // What changes a fresh row can change any row; a SubagentStop only counts down.
        if ev.event_type == EventType::SubagentStop || StateRow::default().apply(ev) {
            out.entry(ev.session_id).or_default().push(ev);
        }
    }
    out
}

/// Folds the touched sessions' events into their rows (a missing row starts fresh). Returns the sessions whose
/// row changed, sorted (the order they are written in), and the changes of state.
pub fn fold_rows(
    rows: &mut HashMap<Uuid, StateRow>,
    touched: HashMap<Uuid, Vec<&AgentEvent>>,
) -> (Vec<Uuid>, Vec<StateChange>) {
    let mut changed_rows = Vec::new();
    let mut changes = Vec::new();
    for (session, events) in touched {
        let row = rows.entry(session).or_default();
        let before = row.clone();
        if let Some(change) = fold_session(session, row, events) {
            changes.push(change);
        }
        if *row != before {
            changed_rows.push(session);
        }
    }
    changed_rows.sort_unstable();
    changes.sort_unstable_by_key(|c| c.session_id);
    (changed_rows, changes)
}

/// A session whose state changed, as the live stream sends it (`{"type":"session_state",…}`) and as metrics and
/// the board read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStateChanged {
    pub session: SessionSummary,
    pub previous: PreviousState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousState {
    pub state: SessionState,
    /// None for a session seen for the first time.
    pub since: Option<DateTime<Utc>>,
}

impl SessionStateChanged {
    /// Pairs changes with the sessions' rows as stored after them; a change whose row is gone is left out.
    pub fn assemble(changes: Vec<StateChange>, sessions: Vec<SessionSummary>) -> Vec<Self> {
        let mut by_id: HashMap<Uuid, SessionSummary> =
            sessions.into_iter().map(|s| (s.session_id, s)).collect();
        changes
            .into_iter()
            .filter_map(|c| {
                Some(SessionStateChanged {
                    session: by_id.remove(&c.session_id)?,
                    previous: PreviousState {
                        state: c.previous,
                        since: c.previous_since.map(super::time::from_micros),
                    },
                })
            })
            .collect()
    }

    /// How long a person was waited for, when this change ends a wait.
    pub fn waited_seconds(&self) -> Option<f64> {
        let from = self.previous.since?;
        (self.previous.state.is_waiting() && self.session.state != self.previous.state).then(|| {
            (self.session.state_since - from)
                .num_microseconds()
                .unwrap_or(0)
                .max(0) as f64
                / 1e6
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use serde_json::json;

    use super::*;
    use crate::model::hook::{HookContext, normalize_hook};

    const S: &str = "c42c2735-2546-40ad-914a-44a809ac14ab";

    fn hook(mut v: Value, secs: i64) -> AgentEvent {
        let at: DateTime<Utc> =
            "2026-12-07T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::seconds(secs);
        v["session_id"] = json!(S);
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

    fn states(events: &[AgentEvent]) -> Vec<&'static str> {
        let mut row = StateRow::default();
        events
            .iter()
            .map(|ev| {
                row.apply(ev);
                row.state.as_str()
            })
            .collect()
    }

    #[test]
    fn a_denied_permission_returns_to_work_and_the_stop_waits_for_input() {
        let events = [
            hook(
                json!({"hook_event_name": "UserPromptSubmit", "prompt": "x"}),
                0,
            ),
            hook(
                json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "t1"}),
                1,
            ),
            hook(
                json!({"hook_event_name": "PermissionRequest", "tool_name": "Bash"}),
                2,
            ),
            hook(
                json!({"hook_event_name": "Notification", "notification_type": "permission_prompt",
                        "message": "Claude needs your permission to use Bash"}),
                3,
            ),
            hook(
                json!({"hook_event_name": "PermissionDenied", "tool_name": "Bash", "tool_use_id": "t1"}),
                9,
            ),
            hook(json!({"hook_event_name": "Stop"}), 10),
        ];
        assert_eq!(
            states(&events),
            [
                "working",
                "working",
                "waiting_for_permission",
                "waiting_for_permission",
                "working",
                "waiting_for_input"
            ]
        );
        let mut row = StateRow::default();
        for ev in &events[..4] {
            row.apply(ev);
        }
        // The notification does not start a new episode: the wait began with the request.
        assert_eq!(row.since, Some(micros(events[2].created_at)));
        assert_eq!(row.waiting_on.as_deref(), Some("Bash"));
        assert_eq!(row.current_tool.as_deref(), Some("Bash"));
    }

    #[test]
    fn a_subagent_neither_ends_its_parents_wait_nor_lets_a_stop_look_finished() {
        let sub = "a828a481a9d4da57f";
        let events = [
            hook(
                json!({"hook_event_name": "SubagentStart", "agent_id": sub}),
                0,
            ),
            hook(
                json!({"hook_event_name": "PermissionRequest", "tool_name": "Write"}),
                1,
            ),
            hook(
                json!({"hook_event_name": "PreToolUse", "agent_id": sub, "tool_name": "Read", "tool_use_id": "s1"}),
                2,
            ),
            hook(
                json!({"hook_event_name": "PostToolUse", "tool_name": "Write", "tool_use_id": "m1"}),
                3,
            ),
            hook(json!({"hook_event_name": "Stop"}), 4),
            hook(
                json!({"hook_event_name": "SubagentStop", "agent_id": sub}),
                5,
            ),
        ];
        assert_eq!(
            states(&events),
            [
                "working",
                "waiting_for_permission",
                "waiting_for_permission",
                "working",
                "working",
                "waiting_for_input"
            ]
        );
    }

    #[test]
    fn events_stored_out_of_order_give_the_state_of_the_newest() {
        let events = [
            hook(
                json!({"hook_event_name": "UserPromptSubmit", "prompt": "x"}),
                0,
            ),
            hook(json!({"hook_event_name": "Stop"}), 5),
            hook(
                json!({"hook_event_name": "SubagentStart", "agent_id": "a1"}),
                1,
            ),
            hook(
                json!({"hook_event_name": "SubagentStop", "agent_id": "a1"}),
                2,
            ),
        ];
        // Two replicas: the first stores the prompt and the Stop, the second the subagent later.
        let mut row = StateRow::default();
        fold_session(uuid::Uuid::nil(), &mut row, &events[..2]);
        let change = fold_session(uuid::Uuid::nil(), &mut row, &events[2..]);
        assert_eq!(change, None);
        assert_eq!(
            (row.state, row.subagents),
            (SessionState::WaitingForInput, 0)
        );
    }

    #[test]
    fn failures_interrupts_compaction_and_the_end() {
        let events = [
            hook(
                json!({"hook_event_name": "SessionStart", "source": "startup"}),
                0,
            ),
            hook(
                json!({"hook_event_name": "UserPromptSubmit", "prompt": "x"}),
                1,
            ),
            hook(
                json!({"hook_event_name": "StopFailure", "error": "rate_limit"}),
                2,
            ),
            hook(
                json!({"hook_event_name": "UserPromptSubmit", "prompt": "y"}),
                3,
            ),
            hook(json!({"hook_event_name": "Interrupt", "source": "user"}), 4),
            hook(
                json!({"hook_event_name": "PreCompact", "trigger": "auto"}),
                5,
            ),
            hook(
                json!({"hook_event_name": "PostCompact", "trigger": "auto"}),
                6,
            ),
            hook(
                json!({"hook_event_name": "SessionEnd", "reason": "exit"}),
                7,
            ),
        ];
        assert_eq!(
            states(&events),
            [
                "idle",
                "working",
                "failed",
                "working",
                "interrupted",
                "compacting",
                "working",
                "ended"
            ]
        );
        let mut row = StateRow::default();
        for ev in &events[..3] {
            row.apply(ev);
        }
        assert_eq!(row.detail.as_deref(), Some("rate_limit"));
    }

    #[test]
    fn a_change_that_ends_a_wait_says_how_long_it_was() {
        let events = [
            hook(
                json!({"hook_event_name": "PermissionRequest", "tool_name": "Bash"}),
                0,
            ),
            hook(
                json!({"hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "t"}),
                42,
            ),
        ];
        let mut row = StateRow::default();
        let first = fold_session(uuid::Uuid::nil(), &mut row, &events[..1]).unwrap();
        assert_eq!(
            (first.previous_since, first.state),
            (None, SessionState::WaitingForPermission)
        );
        let change = fold_session(uuid::Uuid::nil(), &mut row, &events[1..]).unwrap();
        let summary = |state, since| SessionSummary {
            state,
            state_since: crate::model::time::from_micros(since),
            ..test_summary()
        };
        let changed = SessionStateChanged::assemble(
            vec![change.clone()],
            vec![summary(change.state, change.since)],
        );
        assert_eq!(changed[0].waited_seconds(), Some(42.0));
    }

    fn test_summary() -> SessionSummary {
        SessionSummary {
            session_id: uuid::Uuid::nil(),
            source_app: "app".into(),
            first_seen: Utc::now(),
            last_seen: Utc::now(),
            cwd: None,
            model: None,
            status: "active".into(),
            state: SessionState::Idle,
            state_since: Utc::now(),
            waiting_on: None,
            state_detail: None,
            current_tool: None,
            running_subagents: 0,
            totals: Default::default(),
        }
    }

    #[test]
    fn unknown_states_are_named_in_the_error() {
        assert_eq!(
            SessionState::parse_list("working, waiting_for_input"),
            Ok(vec![SessionState::Working, SessionState::WaitingForInput])
        );
        let e = SessionState::parse_list("working,blocked").unwrap_err();
        assert!(
            e.contains("\"blocked\"") && e.contains("waiting_for_permission"),
            "{e}"
        );
    }
}
