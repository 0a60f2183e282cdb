//! The system of record. Events are committed here before any ingest request is answered; everything
//! downstream (query API, live stream, Redis, metrics) reads what the store committed.
//!
//! `Store` is the one handle the rest of the program holds; the back-end behind it is chosen by the database URL.

/// Applies an `EventQuery`'s filters, cursor and order to a boxed `agent_events` query of either back-end. The
/// back-end's `agent_events` table must be in scope; `$session` turns a session UUID into the column's value,
/// `$time` a `DateTime<Utc>` and `$micros` a cursor's microseconds.
macro_rules! filter_events {
    ($query:ident, $q:expr, session = $session:expr, time = $time:expr, micros = $micros:expr) => {{
        use agent_events::dsl as e;
        let q: &EventQuery = $q;
        if let Some(s) = q.session_id {
            $query = $query.filter(e::session_id.eq($session(s)));
        }
        if let Some(v) = q.agent_id.clone() {
            $query = $query.filter(e::agent_id.eq(v));
        }
        if let Some(v) = q.event_type.clone() {
            $query = $query.filter(e::event_type.eq(v));
        }
        if let Some(v) = q.tool_name.clone() {
            $query = $query.filter(e::tool_name.eq(v));
        }
        if let Some(v) = q.source_app.clone() {
            $query = $query.filter(e::source_app.eq(v));
        }
        if let Some(v) = q.source.clone() {
            $query = $query.filter(e::source.eq(v));
        }
        if let Some(v) = q.status.clone() {
            $query = $query.filter(e::status.eq(v));
        }
        if let Some(v) = q.mcp_server.clone() {
            $query = $query.filter(e::mcp_server.eq(v));
        }
        if let Some(v) = q.model.clone() {
            $query = $query.filter(e::model.eq(v));
        }
        if let Some(t) = q.since {
            $query = $query.filter(e::created_at.ge($time(t)));
        }
        if let Some(t) = q.until {
            $query = $query.filter(e::created_at.lt($time(t)));
        }
        let order = q.order.unwrap_or_default();
        if let Some(c) = q.cursor.as_deref().map(Cursor::decode).transpose()? {
            let at = $micros(c.created_at);
            $query = match order {
                Order::Asc => $query.filter(
                    e::created_at
                        .gt(at)
                        .or(e::created_at.eq(at).and(e::id.gt(c.id))),
                ),
                Order::Desc => $query.filter(
                    e::created_at
                        .lt(at)
                        .or(e::created_at.eq(at).and(e::id.lt(c.id))),
                ),
            };
        }
        $query = match order {
            Order::Asc => $query.order((e::created_at.asc(), e::id.asc())),
            Order::Desc => $query.order((e::created_at.desc(), e::id.desc())),
        };
    }};
}

mod postgres;
mod schema_postgres;
mod schema_sqlite;
mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::event::{is_tool_finish, is_tool_start};
use crate::model::{AgentEvent, Severity, Source, SpanId, Status, StoredEvent, TraceId};

pub use postgres::{PgStore, describe_url};
pub use sqlite::SqliteStore;

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

/// One group commit's events waiting for the Redis stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    /// The process that committed the batch.
    pub owner: String,
    /// Row ids of the events, in commit order.
    pub event_ids: Vec<i64>,
}

/// What retention deletes, table by table: `(table, key columns, the time compared with the cutoff)`. Each is
/// deleted a chunk of [`RETENTION_CHUNK`] rows per statement, so that no statement holds locks (or SQLite's writer)
/// for long.
pub const RETAINED_TABLES: [(&str, &str, &str); 5] = [
    ("agent_events", "id", "created_at"),
    (
        "tool_calls",
        "session_id, tool_use_id",
        "coalesce(post_at, pre_at)",
    ),
    ("chat_transcripts", "id", "created_at"),
    ("sessions", "session_id", "last_seen"),
    ("event_outbox", "seq", "created_at"),
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
    fn add(&mut self, table: &str, n: u64) {
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

    /// Connections in use and idle, read at scrape time.
    pub fn pool_gauge(&self) -> std::sync::Arc<dyn Fn() -> (u64, u64) + Send + Sync> {
        match self {
            Store::Sqlite(s) => {
                let s = s.clone();
                std::sync::Arc::new(move || s.pool_state())
            }
            Store::Postgres(p) => {
                let p = p.clone();
                std::sync::Arc::new(move || p.pool_state())
            }
        }
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

/// Filters of `GET /api/v1/observability/events`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventQuery {
    pub session_id: Option<Uuid>,
    pub agent_id: Option<String>,
    pub event_type: Option<String>,
    pub tool_name: Option<String>,
    pub source_app: Option<String>,
    /// `hook`, `otlp_log`, `otlp_span` or `api`.
    pub source: Option<String>,
    /// `ok` or `error`.
    pub status: Option<String>,
    /// The MCP server of MCP tool events.
    pub mcp_server: Option<String>,
    pub model: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `asc` (oldest first, the default) or `desc`.
    pub order: Option<Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub next_cursor: Option<String>,
}

impl EventPage {
    /// A page from up to `limit + 1` rows in query order: the extra row only says that there is more.
    fn from_rows(
        rows: impl Iterator<Item = RawEvent>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let mut events = Vec::with_capacity(limit);
        let mut more = false;
        for raw in rows {
            if events.len() == limit {
                more = true;
                break;
            }
            events.push(raw.into_event()?);
        }
        let next_cursor = more
            .then(|| events.last())
            .flatten()
            .map(|l: &StoredEvent| {
                Cursor {
                    created_at: micros(l.event.created_at),
                    id: l.id,
                }
                .encode()
            });
        Ok(EventPage {
            events,
            next_cursor,
        })
    }
}

/// A stored event row as either back-end reads it, before its text columns are parsed back into the model.
struct RawEvent {
    id: i64,
    event_id: Uuid,
    event_type: String,
    source: String,
    session_id: Uuid,
    agent_id: String,
    source_app: String,
    prompt_id: Option<String>,
    tool_name: Option<String>,
    tool_use_id: Option<String>,
    trace_id: String,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    status: String,
    severity: String,
    latency_ms: Option<i64>,
    created_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    payload: Value,
    model: Option<String>,
    mcp_server: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    commit_sha: Option<String>,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("stored {what} {value:?} does not parse"))
}

impl RawEvent {
    fn into_event(self) -> Result<StoredEvent, StoreError> {
        let span = |s: Option<String>, field| {
            s.map(|h| SpanId::parse_hex(field, &h).map_err(|_| corrupt(field, &h)))
                .transpose()
        };
        Ok(StoredEvent {
            id: self.id,
            event: AgentEvent {
                event_id: self.event_id,
                source: Source::parse(&self.source)
                    .ok_or_else(|| corrupt("source", &self.source))?,
                session_id: self.session_id,
                trace_id: TraceId::parse_hex("trace_id", &self.trace_id)
                    .map_err(|_| corrupt("trace_id", &self.trace_id))?,
                span_id: span(self.span_id, "span_id")?,
                parent_span_id: span(self.parent_span_id, "parent_span_id")?,
                status: Status::parse(&self.status)
                    .ok_or_else(|| corrupt("status", &self.status))?,
                severity: Severity::parse(&self.severity)
                    .ok_or_else(|| corrupt("severity", &self.severity))?,
                payload: self.payload,
                event_type: self.event_type,
                agent_id: self.agent_id,
                source_app: self.source_app,
                prompt_id: self.prompt_id,
                tool_name: self.tool_name,
                tool_use_id: self.tool_use_id,
                latency_ms: self.latency_ms,
                model: self.model,
                mcp_server: self.mcp_server,
                repo: self.repo,
                branch: self.branch,
                commit: self.commit_sha,
                created_at: self.created_at,
                received_at: self.received_at,
            },
        })
    }
}

/// The hook tool-call halves of a batch, one entry per `(session_id, tool_use_id)` in key order (the order in
/// which the rows are locked).
#[derive(Debug, Default)]
struct ToolHalves {
    calls: BTreeMap<(Uuid, String), ToolHalf>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ToolHalf {
    pre_at: Option<DateTime<Utc>>,
    /// The finishing event's row id and time.
    post: Option<(i64, DateTime<Utc>)>,
}

impl ToolHalves {
    /// From newly stored events with their row ids; a later half of the same kind replaces an earlier one.
    fn collect<'a>(inserted: impl IntoIterator<Item = (i64, &'a AgentEvent)>) -> ToolHalves {
        let mut out = ToolHalves::default();
        for (id, ev) in inserted {
            let (start, finish) = (
                is_tool_start(&ev.event_type),
                is_tool_finish(&ev.event_type),
            );
            let Some(tool_use_id) = ev.tool_use_id.as_ref().filter(|_| start || finish) else {
                continue;
            };
            let half = out
                .calls
                .entry((ev.session_id, tool_use_id.clone()))
                .or_default();
            if start {
                half.pre_at = Some(ev.created_at);
            } else {
                half.post = Some((id, ev.created_at));
            }
        }
        out
    }
}

/// Position after the last event of a page: `(created_at µs, id)`, written as `"{µs}_{id}"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(self) -> String {
        format!("{}_{}", self.created_at, self.id)
    }

    pub fn decode(s: &str) -> Result<Cursor, StoreError> {
        let bad = || StoreError::BadQuery(format!("cursor {s:?} is not one this API returned"));
        let (t, id) = s.split_once('_').ok_or_else(bad)?;
        Ok(Cursor {
            created_at: t.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SessionQuery {
    pub source_app: Option<String>,
    pub status: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

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
    pub event_count: i64,
    pub tool_calls: i64,
    pub tool_failures: i64,
    pub error_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
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
                event_count: 0,
                tool_calls: 0,
                tool_failures: 0,
                error_count: 0,
                input_tokens: 0,
                output_tokens: 0,
                cost_usd: 0.0,
            });
        d.first_seen = d.first_seen.min(t);
        d.last_seen = d.last_seen.max(t);
        d.event_count += 1;
        if ev.status == Status::Error {
            d.error_count += 1;
        }
        if is_tool_finish(&ev.event_type) {
            d.tool_calls += 1;
            if ev.status == Status::Error {
                d.tool_failures += 1;
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
        if ev.event_type == "api_request"
            && let Some(a) = attrs
        {
            d.input_tokens = d.input_tokens.saturating_add(tokens(a.get("input_tokens")));
            d.output_tokens = d
                .output_tokens
                .saturating_add(tokens(a.get("output_tokens")));
            d.cost_usd += cost(a.get("cost_usd"));
        }
        let lifecycle = match ev.event_type.as_str() {
            "SessionStart" => Some("active"),
            "SessionEnd" => Some("ended"),
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

/// One entry of a chat transcript (a line of Claude Code's session JSONL that has a `uuid`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    pub session_id: Uuid,
    pub agent_id: String,
    pub uuid: String,
    pub parent_uuid: Option<String>,
    /// `message.role`, else the entry's `type` (`attachment`, `system`, …).
    pub role: String,
    /// `message.content`, else the whole entry; redacted.
    pub content: Value,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub created_at: DateTime<Utc>,
}

impl TranscriptEntry {
    /// Reads one transcript line; `None` for lines without a `uuid` (queue operations and the like).
    pub fn from_line(
        session_id: Uuid,
        agent_id: &str,
        mut line: Value,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let uuid = line.get("uuid")?.as_str()?.to_string();
        crate::model::redact::redact_json(&mut line);
        crate::model::event::strip_nul_json(&mut line);
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let message = line.get("message");
        let usage = message.and_then(|m| m.get("usage"));
        let count = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_i64);
        let role = message
            .and_then(|m| text(m, "role"))
            .or_else(|| text(&line, "type"))
            .unwrap_or_else(|| "unknown".into());
        let created_at = text(&line, "timestamp")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now);
        Some(TranscriptEntry {
            session_id,
            agent_id: agent_id.to_string(),
            parent_uuid: text(&line, "parentUuid"),
            model: message.and_then(|m| text(m, "model")),
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
            cache_read_tokens: count("cache_read_input_tokens"),
            cache_creation_tokens: count("cache_creation_input_tokens"),
            content: match message.and_then(|m| m.get("content")) {
                Some(c) => c.clone(),
                None => line,
            },
            uuid,
            role,
            created_at,
        })
    }
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
    pub span_id: Option<crate::model::SpanId>,
    pub parent_span_id: Option<crate::model::SpanId>,
}

/// Pairs the tool events of one session's timeline; a Post without a Pre is a call whose start is inferred.
pub fn pair_tool_calls(events: &[StoredEvent]) -> Vec<ToolCall> {
    let mut calls: Vec<ToolCall> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for se in events {
        let ev = &se.event;
        let (start, finish) = (
            is_tool_start(&ev.event_type),
            is_tool_finish(&ev.event_type),
        );
        let Some(id) = ev.tool_use_id.as_deref().filter(|_| start || finish) else {
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
        if start {
            call.started_at = Some(ev.created_at);
        } else {
            call.finished_at = Some(ev.created_at);
            call.latency_ms = ev.latency_ms;
            call.status = ev.status.as_str().into();
        }
        if call.tool_name.is_none() {
            call.tool_name = ev.tool_name.clone();
        }
    }
    for call in &mut calls {
        if call.started_at.is_none()
            && let (Some(end), Some(ms)) = (call.finished_at, call.latency_ms)
        {
            call.started_at = end.checked_sub_signed(chrono::Duration::milliseconds(ms));
        }
        if call.latency_ms.is_none()
            && let (Some(s), Some(e)) = (call.started_at, call.finished_at)
        {
            call.latency_ms = Some((e - s).num_milliseconds());
        }
    }
    calls
}

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
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
            (d.event_count, d.tool_calls, d.tool_failures, d.error_count),
            (4, 1, 1, 1)
        );
        assert_eq!(d.status, Some(("ended", micros(t0 + Duration::seconds(9)))));
        assert_eq!(
            (d.cwd.as_deref(), d.model.as_deref()),
            (Some("/w/app"), Some("m1"))
        );
    }

    #[test]
    fn tool_calls_pair_by_id_and_infer_missing_halves() {
        let t0: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        let ev = |name: &str, id: &str, at: DateTime<Utc>, extra: serde_json::Value| {
            let mut v = json!({"session_id": "s", "hook_event_name": name, "tool_use_id": id, "tool_name": "Bash"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            StoredEvent {
                id: 0,
                event: hook(v, at),
            }
        };
        let events = [
            ev("PreToolUse", "a", t0, json!({})),
            ev(
                "PostToolUse",
                "a",
                t0 + Duration::milliseconds(300),
                json!({}),
            ),
            ev(
                "PostToolUseFailure",
                "b",
                t0 + Duration::seconds(1),
                json!({"duration_ms": 200}),
            ),
            ev("PreToolUse", "c", t0 + Duration::seconds(2), json!({})),
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
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            created_at: 1_795_625_730_687_000,
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(matches!(Cursor::decode("42"), Err(StoreError::BadQuery(_))));
    }
}
