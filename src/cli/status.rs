//! `hivewatch status`: the sessions board in the terminal, grouped as the dashboard groups it (needs you,
//! working, idle, done), read from a running hivewatch's API; `--watch` redraws it every two seconds.

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::Value;

use super::query::{encode, get};
use crate::model::session_state::SessionState;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The hivewatch HTTP address.
    #[arg(
        long,
        env = "HIVEWATCH_ENDPOINT",
        default_value = "http://127.0.0.1:4318"
    )]
    pub endpoint: String,
    /// The server's read token, when it has one.
    #[arg(long, env = "HIVEWATCH_READ_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Redraw every two seconds until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Sessions read at most (most recently active first).
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
}

/// The board's groups, in the order shown, with the states each holds.
pub const GROUPS: &[(&str, &[SessionState])] = &[
    (
        "NEEDS YOU",
        &[
            SessionState::WaitingForPermission,
            SessionState::WaitingForInput,
        ],
    ),
    (
        "WORKING",
        &[SessionState::Working, SessionState::Compacting],
    ),
    ("IDLE", &[SessionState::Idle]),
    (
        "DONE / FAILED",
        &[
            SessionState::Failed,
            SessionState::Interrupted,
            SessionState::Ended,
            SessionState::Abandoned,
        ],
    ),
];

/// Finished sessions the board lists at most.
const DONE_SHOWN: usize = 10;

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let base = args.endpoint.trim_end_matches('/');
    let url = format!(
        "{base}/api/v1/observability/sessions?{}",
        encode(&[("limit", args.limit.to_string())])
    );
    loop {
        let body = get(&url, args.token.as_deref()).await?;
        let sessions = body["sessions"].as_array().cloned().unwrap_or_default();
        let board = render(&sessions, Utc::now());
        if args.watch {
            // Clear the screen and go home, then draw.
            print!("\x1b[2J\x1b[H{board}");
        } else {
            print!("{board}");
        }
        if !args.watch {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// The board as text: a heading per group with its count, one line per session.
pub fn render(sessions: &[Value], now: DateTime<Utc>) -> String {
    let mut out = String::new();
    for (title, states) in GROUPS {
        let mut members: Vec<&Value> = sessions
            .iter()
            .filter(|s| {
                let st = s["state"].as_str().and_then(SessionState::parse);
                st.is_some_and(|st| states.contains(&st))
            })
            .collect();
        // Longest in its state first: who has waited longest is at the top.
        members.sort_by_key(|s| text(s, "state_since").to_string());
        let done = title.starts_with("DONE");
        if done {
            members.reverse();
        }
        out.push_str(&format!("{title} ({})\n", members.len()));
        for s in members
            .iter()
            .take(if done { DONE_SHOWN } else { usize::MAX })
        {
            out.push_str(&line(s, now));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn line(s: &Value, now: DateTime<Utc>) -> String {
    let since = text(s, "state_since")
        .parse::<DateTime<Utc>>()
        .map(|t| elapsed((now - t).num_seconds()))
        .unwrap_or_else(|_| "-".into());
    let project = s["cwd"]
        .as_str()
        .or_else(|| s["source_app"].as_str())
        .unwrap_or("-");
    let what = s["waiting_on"]
        .as_str()
        .or_else(|| s["state_detail"].as_str())
        .or_else(|| s["current_tool"].as_str())
        .unwrap_or("");
    let session = text(s, "session_id");
    format!(
        "  {:<22} {:>7}  {:<36} {:<24} {:<20} {:>9} tok  ${:<7.2} {}",
        text(s, "state"),
        since,
        clip(project, 36),
        clip(what, 24),
        clip(text(s, "model"), 20),
        s["input_tokens"].as_i64().unwrap_or(0) + s["output_tokens"].as_i64().unwrap_or(0),
        s["cost_usd"].as_f64().unwrap_or(0.0),
        &session[..session.len().min(8)],
    )
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let kept: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{kept}")
    }
}

/// `45s`, `12m`, `3h05m`, `2d`.
fn elapsed(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_board_puts_waiting_sessions_first_with_what_they_wait_on() {
        let now: DateTime<Utc> = "2026-12-07T10:10:00Z".parse().unwrap();
        let sessions = [
            json!({"session_id": "11111111-aaaa", "state": "working", "state_since": "2026-12-07T10:09:00Z",
                   "cwd": "/w/api", "current_tool": "Bash", "model": "claude-sonnet", "input_tokens": 10,
                   "output_tokens": 5, "cost_usd": 0.5}),
            json!({"session_id": "22222222-bbbb", "state": "waiting_for_permission",
                   "state_since": "2026-12-07T10:00:00Z", "cwd": "/w/web", "waiting_on": "Write"}),
            json!({"session_id": "33333333-cccc", "state": "failed", "state_since": "2026-12-07T09:00:00Z",
                   "source_app": "batch", "state_detail": "rate_limit"}),
        ];
        let board = render(&sessions, now);
        let needs = board.find("NEEDS YOU (1)").unwrap();
        let working = board.find("WORKING (1)").unwrap();
        let waiting_line = board.find("waiting_for_permission").unwrap();
        assert!(needs < waiting_line && waiting_line < working, "{board}");
        assert!(
            board.contains("10m") && board.contains("Write") && board.contains("/w/web"),
            "{board}"
        );
        assert!(
            board.contains("DONE / FAILED (1)") && board.contains("rate_limit"),
            "{board}"
        );
        assert!(board.contains("IDLE (0)"), "{board}");
    }
}
