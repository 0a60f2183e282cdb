//! The system of record. Events are committed here before any ingest request is answered; everything
//! downstream (query API, live stream, Redis, metrics) reads what the store committed.
//!
//! `Store` is the one handle the rest of the program holds; the back-end behind it is chosen by the database URL.
//! This module dispatches to the back-end (`sqlite/`, `postgres/`, each with its schema, queries and writes);
//! what a query asks and returns is in [`query`], the outbox's rows in [`outbox`], retention in [`retention`]. The
//! folds both back-ends apply to a batch (sessions, tool-call pairing, transcripts) are domain logic, in `model`.

#[macro_use]
mod query;
pub mod notifications;
pub mod outbox;
mod postgres;
pub mod retention;
mod rows;
mod schema;
mod sqlite;
pub mod states;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::model::session_state::SessionStateChanged;
use crate::model::sessions::SessionSummary;
use crate::model::transcripts::TranscriptEntry;
use crate::model::{AgentEvent, StoredEvent};

pub use outbox::OutboxEntry;
pub use postgres::{PgStore, describe_url};
pub use query::{Cursor, DEFAULT_LIMIT, EventPage, EventQuery, MAX_LIMIT, Order, SessionQuery};
pub use retention::Retained;
pub use sqlite::SqliteStore;
pub use states::{StateCounts, SweepPolicy};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes right now (down, disk full, locked): retryable.
    #[error("{}", unavailable_message(.0))]
    Unavailable(String),
    #[error("bad query: {0}")]
    BadQuery(String),
    /// The database refused the data itself (a value it cannot hold): retrying the same data fails again.
    #[error("{0}")]
    Rejected(String),
    #[error("store error: {0}")]
    Internal(String),
}

/// `store unavailable: <reason>`, with one prefix also when the reason is itself such a message (an error passed
/// on as `Unavailable(e.to_string())`).
fn unavailable_message(reason: &str) -> String {
    const PREFIX: &str = "store unavailable: ";
    if reason.starts_with(PREFIX) {
        reason.to_string()
    } else {
        format!("{PREFIX}{reason}")
    }
}

/// Which database holds the events.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sqlite {
        path: PathBuf,
        synchronous: SqliteSync,
    },
    Postgres {
        url: String,
        pool_size: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    /// fsync at every commit: an acknowledged event survives power loss.
    Full,
    /// fsync at checkpoints only: survives a process crash (`kill -9`), not power loss.
    Normal,
}

#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// What one group commit did.
#[derive(Debug, Default)]
pub struct CommitOutcome {
    /// Events stored for the first time, with their final `latency_ms` and `received_at`, in commit order.
    pub inserted: Vec<StoredEvent>,
    /// Events whose id was already stored (a retried delivery).
    pub duplicates: usize,
    /// The outbox row written with the batch, when the commit was asked to write one.
    pub outbox_seq: Option<i64>,
    /// Sessions whose state the batch changed.
    pub states: Vec<SessionStateChanged>,
}

impl CommitOutcome {
    /// The outcome of a commit from the batch's events and, for each, its row id when it was stored (none for a
    /// duplicate): the stored ones get their commit time and, unless they carry their own, the latency their
    /// tool call was paired with.
    pub(crate) fn assemble(
        events: Vec<AgentEvent>,
        ids: impl IntoIterator<Item = Option<i64>>,
        latencies: &std::collections::HashMap<i64, i64>,
        received_at: DateTime<Utc>,
        outbox_seq: Option<i64>,
        states: Vec<SessionStateChanged>,
    ) -> CommitOutcome {
        let mut out = CommitOutcome {
            outbox_seq,
            states,
            ..Default::default()
        };
        for (mut event, id) in events.into_iter().zip(ids) {
            match id {
                Some(id) => {
                    event.received_at = received_at;
                    if event.latency_ms.is_none() {
                        event.latency_ms = latencies.get(&id).copied();
                    }
                    out.inserted.push(StoredEvent { id, event });
                }
                None => out.duplicates += 1,
            }
        }
        out
    }
}

/// The columns of a session row and what a batch's delta does to a stored one
/// (`INSERT INTO sessions ({SESSION_COLUMNS}) … ON CONFLICT (session_id) DO UPDATE SET {session_upsert_set(…)}`),
/// for both back-ends: `least` and `greatest` are their names for the smaller and larger of two values, `newer`
/// the condition that the batch's lifecycle change is the latest.
pub(crate) const SESSION_COLUMNS: &str = "session_id, source_app, first_seen, last_seen, cwd, model, status, \
     status_at, event_count, tool_calls, tool_failures, error_count, input_tokens, output_tokens, cost_usd";

pub(crate) fn session_upsert_set(least: &str, greatest: &str, newer: &str) -> String {
    let sums = [
        "event_count",
        "tool_calls",
        "tool_failures",
        "error_count",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    ]
    .map(|c| format!("{c} = sessions.{c} + excluded.{c}"))
    .join(", ");
    format!(
        "first_seen = {least}(sessions.first_seen, excluded.first_seen), \
         last_seen = {greatest}(sessions.last_seen, excluded.last_seen), \
         cwd = coalesce(sessions.cwd, excluded.cwd), \
         model = coalesce(excluded.model, sessions.model), \
         status = CASE WHEN {newer} THEN excluded.status ELSE sessions.status END, \
         status_at = {greatest}(sessions.status_at, excluded.status_at), {sums}"
    )
}

/// A failed commit, with the events back when they could be kept, so that the caller can commit them otherwise.
#[derive(Debug)]
pub struct CommitFailure {
    pub error: StoreError,
    pub events: Vec<AgentEvent>,
}

/// Sorts a failed transaction's error: data the database refuses is `Rejected`; anything else (connection, lock,
/// timeout, deadlock, disk) is `Unavailable`, worth retrying.
pub fn commit_error(e: diesel::result::Error) -> StoreError {
    use diesel::result::{DatabaseErrorKind as K, Error};
    let message = e.to_string();
    let lower = message.to_ascii_lowercase();
    let transient = [
        "lock",
        "timeout",
        "deadlock",
        "serializ",
        "connection",
        "terminat",
        "shut",
        "busy",
        "disk",
        "full",
        "recovery",
        "starting up",
    ];
    match &e {
        Error::DatabaseError(
            K::ClosedConnection
            | K::UnableToSendCommand
            | K::SerializationFailure
            | K::ReadOnlyTransaction,
            _,
        ) => StoreError::Unavailable(message),
        Error::DatabaseError(_, _)
        | Error::SerializationError(_)
        | Error::DeserializationError(_)
            if !transient.iter().any(|t| lower.contains(t)) =>
        {
            StoreError::Rejected(message)
        }
        _ => StoreError::Unavailable(message),
    }
}

impl Store {
    pub async fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        match config {
            StoreConfig::Sqlite { path, synchronous } => {
                let (path, sync) = (path.clone(), *synchronous);
                let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path, sync))
                    .await
                    .map_err(|e| StoreError::Internal(e.to_string()))??;
                Ok(Store::Sqlite(store))
            }
            StoreConfig::Postgres { url, pool_size } => {
                Ok(Store::Postgres(PgStore::open(url, *pool_size).await?))
            }
        }
    }

    /// Stores a batch in one transaction: new events inserted, known ids skipped, tool calls paired,
    /// sessions updated, and (with `outbox_owner`) an outbox row naming the new events.
    pub async fn commit(
        &self,
        events: Vec<AgentEvent>,
        outbox_owner: Option<&str>,
    ) -> Result<CommitOutcome, CommitFailure> {
        let owner = outbox_owner.map(str::to_string);
        // On its own task, so that a panic fails this commit instead of the committer.
        let done = match self {
            Store::Sqlite(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.commit(events, owner.as_deref())).await
            }
            Store::Postgres(p) => {
                let p = p.clone();
                tokio::spawn(async move { p.commit(events, owner.as_deref()).await }).await
            }
        };
        match done {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err((error, events))) => Err(CommitFailure { error, events }),
            Err(e) => Err(CommitFailure {
                error: StoreError::Internal(format!("commit task failed: {e}")),
                events: Vec::new(),
            }),
        }
    }

    pub async fn events(&self, query: EventQuery) -> Result<EventPage, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.events(&query)).await,
            Store::Postgres(p) => p.events(&query).await,
        }
    }

    /// Events by row id, in the order given; ids no longer stored are left out.
    pub async fn events_by_id(&self, ids: Vec<i64>) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.events_by_id(&ids)).await,
            Store::Postgres(p) => p.events_by_id(&ids).await,
        }
    }

    pub async fn sessions(&self, query: SessionQuery) -> Result<Vec<SessionSummary>, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.sessions(&query)).await,
            Store::Postgres(p) => p.sessions(&query).await,
        }
    }

    pub async fn session(&self, id: Uuid) -> Result<Option<SessionSummary>, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.session(id)).await,
            Store::Postgres(p) => p.session(id).await,
        }
    }

    /// Stores transcript entries, skipping those already stored (by session and entry uuid); returns how many
    /// were new. Committed before it returns.
    pub async fn add_transcript(&self, entries: Vec<TranscriptEntry>) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.add_transcript(&entries))
                    .await
            }
            Store::Postgres(p) => p.add_transcript(&entries).await,
        }
    }

    pub async fn transcript(
        &self,
        session: Uuid,
        agent_id: Option<String>,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.transcript(session, agent_id.as_deref()))
                    .await
            }
            Store::Postgres(p) => p.transcript(session, agent_id.as_deref()).await,
        }
    }

    /// Outbox rows to publish, oldest first: `owner`'s own, and any left behind longer than `orphaned_after`
    /// by a process that is gone.
    pub async fn outbox_pending(
        &self,
        owner: &str,
        orphaned_after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let owner = owner.to_string();
                s.clone()
                    .blocking(move |s| s.outbox_pending(&owner, orphaned_after, limit))
                    .await
            }
            Store::Postgres(p) => p.outbox_pending(owner, orphaned_after, limit).await,
        }
    }

    /// Forgets outbox rows once their events are on the stream.
    pub async fn outbox_delete(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.outbox_delete(&seqs)).await,
            Store::Postgres(p) => p.outbox_delete(&seqs).await,
        }
    }

    /// Committed events not yet on the stream, over every owner.
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(|s| s.outbox_backlog()).await,
            Store::Postgres(p) => p.outbox_backlog().await,
        }
    }

    /// Deletes events (and transcripts, tool-call halves, sessions and outbox rows) older than `cutoff`.
    pub async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<Retained, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.delete_older_than(cutoff))
                    .await
            }
            Store::Postgres(p) => p.delete_older_than(cutoff).await,
        }
    }

    /// Sessions not ended and seen since `since`.
    pub async fn active_sessions(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.active_sessions(since)).await,
            Store::Postgres(p) => p.active_sessions(since).await,
        }
    }

    /// Connections in use and idle on `/metrics` (`hivewatch_store_pool_connections`), read at scrape time.
    pub fn register_gauges(&self, meter: &opentelemetry::metrics::Meter) {
        let store = self.clone();
        meter
            .u64_observable_gauge("hivewatch_store_pool_connections")
            .with_description("Store connections by state")
            .with_callback(move |o| {
                let (in_use, idle) = match &store {
                    Store::Sqlite(s) => s.pool_state(),
                    Store::Postgres(p) => p.pool_state(),
                };
                o.observe(in_use, &[opentelemetry::KeyValue::new("state", "in_use")]);
                o.observe(idle, &[opentelemetry::KeyValue::new("state", "idle")]);
            })
            .build();
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(|s| s.ping()).await,
            Store::Postgres(p) => p.ping().await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(s) => format!("sqlite:{}", s.path().display()),
            Store::Postgres(p) => format!("postgres://{}", p.target()),
        }
    }
}
