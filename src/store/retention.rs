//! Retention: what is older than `--retention` is deleted, table by table, in chunks, by a periodic task.

use super::Store;

/// What retention deletes, table by table: `(table, key columns, the time compared with the cutoff)`. Each is
/// deleted a chunk of [`RETENTION_CHUNK`] rows per statement, so that no statement holds locks (or SQLite's writer)
/// for long.
pub const RETAINED_TABLES: [(&str, &str, &str); 6] = [
    ("agent_events", "id", "created_at"),
    (
        "tool_calls",
        "session_id, tool_use_id",
        "coalesce(post_at, pre_at)",
    ),
    ("chat_transcripts", "id", "created_at"),
    ("sessions", "session_id", "last_seen"),
    ("event_outbox", "seq", "created_at"),
    ("notifications", "id", "created_at"),
];

pub const RETENTION_CHUNK: u64 = 5_000;

/// The chunked delete of one of [`RETAINED_TABLES`]; `param` is the back-end's placeholder for the cutoff.
pub fn retention_sql(table: &str, key: &str, time: &str, param: &str) -> String {
    format!(
        "DELETE FROM {table} WHERE ({key}) IN \
           (SELECT {key} FROM {table} WHERE {time} < {param} LIMIT {RETENTION_CHUNK})"
    )
}

impl Retained {
    pub(super) fn add(&mut self, table: &str, n: u64) {
        match table {
            "agent_events" => self.events += n,
            "chat_transcripts" => self.transcripts += n,
            "sessions" => self.sessions += n,
            _ => {}
        }
    }
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    pub events: u64,
    pub transcripts: u64,
    pub sessions: u64,
}

/// Deletes what is older than `age`, at start and then every `every`.
pub async fn run(store: Store, age: std::time::Duration, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // An age beyond what a date can express keeps everything.
        let Some(cutoff) = chrono::Duration::from_std(age)
            .ok()
            .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        else {
            continue;
        };
        match store.delete_older_than(cutoff).await {
            Ok(d) if d == Default::default() => {
                tracing::debug!("retention: nothing older than {cutoff}")
            }
            Ok(d) => tracing::info!(
                events = d.events,
                transcripts = d.transcripts,
                sessions = d.sessions,
                %cutoff,
                "retention: deleted what is older than the cutoff"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed; trying again at the next one")
            }
        }
    }
}
