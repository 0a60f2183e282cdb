//! What a notification says: its kind, chosen by the state a session is in, and its body, built once when it is
//! persisted (from the session's row, whose text fields were redacted with the events they came from).
//!
//! The `json` body is hivewatch's own document (docs/NOTIFICATIONS.md); the `slack` one is the `{"text": …}`
//! Slack and Mattermost incoming webhooks take, made from it when it is sent.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::session_state::SessionState;
use super::sessions::SessionSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// Waited for a person longer than `--notify-after`.
    Waiting,
    Failed,
    /// Ended (with `--notify-finished`).
    Finished,
}

impl NotificationKind {
    pub fn of(state: SessionState) -> Option<NotificationKind> {
        match state {
            SessionState::WaitingForPermission | SessionState::WaitingForInput => {
                Some(NotificationKind::Waiting)
            }
            SessionState::Failed => Some(NotificationKind::Failed),
            SessionState::Ended => Some(NotificationKind::Finished),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Waiting => "waiting",
            NotificationKind::Failed => "failed",
            NotificationKind::Finished => "finished",
        }
    }
}

/// The `json` body of a notification about `s`, as of `now`.
pub fn body(kind: NotificationKind, s: &SessionSummary, now: DateTime<Utc>) -> Value {
    let in_state = (now - s.state_since).num_seconds().max(0);
    let project = s.cwd.as_deref().unwrap_or(&s.source_app);
    let text = match kind {
        NotificationKind::Waiting => {
            let what = match s.state {
                SessionState::WaitingForPermission => "waits for permission",
                _ => "waits for input",
            };
            match &s.waiting_on {
                Some(on) => format!("Session in {project} {what} ({on}) for {}", human(in_state)),
                None => format!("Session in {project} {what} for {}", human(in_state)),
            }
        }
        NotificationKind::Failed => format!(
            "Session in {project} failed: {}",
            s.state_detail.as_deref().unwrap_or("unknown error")
        ),
        NotificationKind::Finished => format!("Session in {project} ended"),
    };
    json!({
        "kind": kind.as_str(),
        "text": text,
        "session_id": s.session_id,
        "source_app": s.source_app,
        "cwd": s.cwd,
        "model": s.model,
        "state": s.state,
        "state_since": s.state_since,
        "seconds_in_state": in_state,
        "waiting_on": s.waiting_on,
        "state_detail": s.state_detail,
        "input_tokens": s.totals.input_tokens,
        "output_tokens": s.totals.output_tokens,
        "cost_usd": s.totals.cost_usd,
        "sent_by": "hivewatch",
    })
}

/// The body in the form Slack and Mattermost incoming webhooks take.
pub fn slack_body(body: &Value) -> Value {
    let text = body
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("hivewatch notification");
    let session = body
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or("?");
    json!({ "text": format!("{text} (session {session})") })
}

/// `2m10s`, `45s`, `1h05m`.
fn human(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(
            [human(45), human(130), human(3900)],
            ["45s", "2m10s", "1h05m"]
        );
    }
}
