//! The embedded store: SQLite in WAL mode through Diesel.
//!
//! One writer connection takes every group commit (SQLite allows one writer at a time anyway); a small pool of
//! reader connections serves queries concurrently with it. All calls run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use uuid::Uuid;

use super::schema_sqlite::{agent_events, sessions};
use super::{
    CommitOutcome, Cursor, DEFAULT_LIMIT, EventPage, EventQuery, MAX_LIMIT, Order, OutboxEntry,
    RawEvent, Retained, SessionQuery, SessionSummary, SqliteSync, StoreError, TranscriptEntry,
    corrupt, from_micros, micros, session_deltas,
};
use crate::model::event::{is_tool_finish, is_tool_start};
use crate::model::{AgentEvent, SpanId, StoredEvent};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const READERS: u32 = 4;

/// SQLite's message for `SQLITE_FULL`: a write found no room on the volume.
const SQLITE_FULL: &str = "database or disk is full";
/// SQLite's message for `SQLITE_IOERR` and its extended codes (a full volume can also end up here, when the WAL
/// index must grow).
const SQLITE_IOERR: &str = "disk I/O error";
/// How long writes must go without a refusal for lack of space before a full-volume episode counts as over. While
/// the volume is full some writes still fit (into space SQLite's files already hold): they do not end it.
const FULL_EPISODE_QUIET: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    sync: SqliteSync,
    writer: Arc<Mutex<SqliteConnection>>,
    readers: Pool<ConnectionManager<SqliteConnection>>,
    full: Arc<FullVolume>,
}

/// Writes refused because the volume is full, logged once when an episode begins and once when it is over,
/// not once per refused request.
#[derive(Default)]
struct FullVolume {
    /// An episode is under way (the fast path of every successful write reads only this).
    open: AtomicBool,
    episode: Mutex<Option<FullEpisode>>,
}

struct FullEpisode {
    since: Instant,
    last_refusal: Instant,
    refused: u64,
}

impl FullVolume {
    fn refused(&self, data_dir: &Path) {
        let now = Instant::now();
        let mut episode = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        match episode.as_mut() {
            Some(e) => {
                e.last_refusal = now;
                e.refused += 1;
                tracing::debug!(
                    refused = e.refused,
                    "write refused: the SQLite volume is still full"
                );
            }
            None => {
                tracing::error!(
                    data_dir = %data_dir.display(),
                    "the SQLite volume is full: ingest is answered 503 / UNAVAILABLE until space is freed on it; \
                     nothing acknowledged is lost, and ingest resumes by itself once there is room"
                );
                *episode = Some(FullEpisode {
                    since: now,
                    last_refusal: now,
                    refused: 1,
                });
                self.open.store(true, Ordering::Release);
            }
        }
    }

    fn wrote(&self) {
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let mut episode = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = episode.as_ref()
            && e.last_refusal.elapsed() >= FULL_EPISODE_QUIET
        {
            tracing::info!(
                refused = e.refused,
                lasted_s = e.since.elapsed().as_secs(),
                "the SQLite volume has room again: writes succeed"
            );
            *episode = None;
            self.open.store(false, Ordering::Release);
        }
    }
}

/// What a full volume answers: what happened, where, and what to do.
fn volume_full_message(data_dir: &Path) -> String {
    format!(
        "the SQLite volume is full (data dir {}): free space on it; nothing acknowledged is lost, and ingest \
         resumes by itself once there is room",
        data_dir.display()
    )
}

#[derive(Debug)]
struct ReaderSetup;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ReaderSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl SqliteStore {
    pub fn open(path: &Path, sync: SqliteSync) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let url = path.to_string_lossy().to_string();
        let mut writer = open_writer(path, sync)?;
        writer.run_pending_migrations(MIGRATIONS).map_err(|e| {
            let message = e.to_string();
            if message.contains(SQLITE_FULL) {
                StoreError::Unavailable(volume_full_message(data_dir(path)))
            } else {
                StoreError::Internal(format!("migrations: {message}"))
            }
        })?;
        let readers = Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .connection_customizer(Box::new(ReaderSetup))
            .build(ConnectionManager::<SqliteConnection>::new(url))
            .map_err(|e| StoreError::Unavailable(format!("reader pool: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            sync,
            writer: Arc::new(Mutex::new(writer)),
            readers,
            full: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction on the writer `conn`. When it fails nothing of it is
    /// committed, the error is the one that made it fail (not that of the rollback after it), and the writer is
    /// ready for the next transaction.
    fn write<T>(
        &self,
        conn: &mut SqliteConnection,
        body: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
    ) -> Result<T, StoreError> {
        // A panic in the middle of the last transaction left it open.
        self.repair_writer(conn);
        let mut cause = None;
        let result = conn.immediate_transaction(|conn| {
            body(conn).map_err(|e| {
                // On SQLITE_FULL (or an I/O error) in the middle of a transaction SQLite may roll all of it back
                // at once; diesel's ROLLBACK then fails with "no transaction is active", and that error would hide
                // this one.
                cause = Some(e);
                diesel::result::Error::RollbackTransaction
            })
        });
        match result {
            Ok(value) => {
                self.full.wrote();
                Ok(value)
            }
            Err(e) => {
                let error = match cause {
                    Some(cause) => {
                        if !matches!(e, diesel::result::Error::RollbackTransaction) {
                            tracing::debug!(error = %e, "rollback after a failed write");
                        }
                        cause
                    }
                    // BEGIN or COMMIT failed.
                    None => e,
                };
                Err(self.write_failed(conn, error))
            }
        }
    }

    /// Replaces the writer connection if it is left unusable (a transaction still open, or one that could not be
    /// rolled back): dropping it closes it, and SQLite rolls back whatever it still had open.
    fn repair_writer(&self, conn: &mut SqliteConnection) {
        if !conn.is_broken() {
            return;
        }
        match open_writer(&self.path, self.sync) {
            Ok(fresh) => {
                *conn = fresh;
                tracing::warn!("reopened the SQLite writer connection after a failed transaction");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reopen the SQLite writer connection; trying again at the next write");
            }
        }
    }

    /// Sorts a failed write and leaves the writer ready for the next one.
    fn write_failed(&self, conn: &mut SqliteConnection, e: diesel::result::Error) -> StoreError {
        self.repair_writer(conn);
        let dir = data_dir(&self.path);
        let message = e.to_string();
        if message.contains(SQLITE_FULL) {
            self.full.refused(dir);
            StoreError::Unavailable(volume_full_message(dir))
        } else if message.contains(SQLITE_IOERR) {
            StoreError::Unavailable(format!(
                "the SQLite database in {} could not be written ({message}): check that volume, it may be full \
                 or failing",
                dir.display()
            ))
        } else {
            super::commit_error(e)
        }
    }

    /// Runs `f` on tokio's blocking pool.
    pub async fn blocking<T, F>(self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteStore) -> Result<T, StoreError> + Send + 'static,
    {
        tokio::task::spawn_blocking(move || f(&self))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// Commits the batch; on failure the events come back with the error, so that the caller can retry them or
    /// commit its requests one by one.
    pub fn commit(
        &self,
        events: Vec<AgentEvent>,
        outbox_owner: Option<&str>,
    ) -> Result<CommitOutcome, (StoreError, Vec<AgentEvent>)> {
        // A panic while holding the lock leaves the connection usable: SQLite rolls back the open transaction.
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let received_at = chrono::Utc::now();
        let received_us = micros(received_at);
        let result = self.write(&mut conn, |conn| {
            // Row id of each event stored, by position in the batch; the first of two events with one id is the
            // one stored, the second a duplicate.
            let mut ids: Vec<Option<i64>> = vec![None; events.len()];
            for (c, chunk) in events.chunks(INSERT_CHUNK).enumerate() {
                let rows: Vec<EventRowRef> = chunk
                    .iter()
                    .map(|ev| EventRowRef::new(ev, received_us))
                    .collect();
                let mut inserted: HashMap<String, i64> =
                    insert_events(conn, &rows)?.into_iter().collect();
                for (j, row) in rows.iter().enumerate() {
                    ids[c * INSERT_CHUNK + j] = inserted.remove(&row.event_id);
                }
            }
            let stored: Vec<(i64, &AgentEvent)> = ids
                .iter()
                .zip(&events)
                .filter_map(|(id, ev)| id.map(|id| (id, ev)))
                .collect();
            let latencies = pair_tools(conn, &stored)?;
            upsert_sessions(conn, &session_deltas(stored.iter().map(|(_, ev)| *ev)))?;
            let mut outbox_seq = None;
            if let Some(owner) = outbox_owner.filter(|_| !stored.is_empty()) {
                use super::schema_sqlite::event_outbox::dsl as o;
                let row_ids: Vec<i64> = stored.iter().map(|(id, _)| *id).collect();
                outbox_seq = Some(
                    diesel::insert_into(o::event_outbox)
                        .values((
                            o::owner.eq(owner),
                            o::event_ids.eq(serde_json::to_string(&row_ids).unwrap_or_default()),
                            o::created_at.eq(received_us),
                        ))
                        .returning(o::seq)
                        .get_result(conn)?,
                );
            }
            Ok((ids, latencies, outbox_seq))
        });
        let (ids, latencies, outbox_seq) = match result {
            Ok(done) => done,
            Err(e) => return Err((e, events)),
        };
        let mut out = CommitOutcome {
            outbox_seq,
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
        Ok(out)
    }

    pub fn events(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        use agent_events::dsl as e;
        let mut conn = self.reader()?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64;
        let mut query = e::agent_events.select(EventRow::as_select()).into_boxed();
        filter_events!(
            query,
            q,
            session = |s: Uuid| s.to_string(),
            time = micros,
            micros = |us: i64| us
        );
        let rows: Vec<EventRow> = query
            .limit(limit + 1)
            .load(&mut conn)
            .map_err(unavailable)?;
        let rows = rows
            .into_iter()
            .map(EventRow::into_raw)
            .collect::<Result<Vec<_>, _>>()?;
        EventPage::from_rows(rows.into_iter(), limit as usize)
    }

    pub fn events_by_id(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        use agent_events::dsl as e;
        let mut conn = self.reader()?;
        let mut by_id: HashMap<i64, EventRow> = HashMap::new();
        for chunk in ids.chunks(INSERT_CHUNK) {
            let rows: Vec<EventRow> = e::agent_events
                .filter(e::id.eq_any(chunk))
                .select(EventRow::as_select())
                .load(&mut conn)
                .map_err(unavailable)?;
            by_id.extend(rows.into_iter().map(|r| (r.id, r)));
        }
        ids.iter()
            .filter_map(|id| by_id.remove(id))
            .map(|r| r.into_raw()?.into_event())
            .collect()
    }

    pub fn outbox_pending(
        &self,
        owner: &str,
        orphaned_after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        use super::schema_sqlite::event_outbox::dsl as o;
        let cutoff = micros(chrono::Utc::now()) - orphaned_after.as_micros() as i64;
        let mut conn = self.reader()?;
        let rows: Vec<(i64, String, String)> = o::event_outbox
            .filter(o::owner.eq(owner).or(o::created_at.lt(cutoff)))
            .select((o::seq, o::owner, o::event_ids))
            .order(o::seq.asc())
            .limit(limit)
            .load(&mut conn)
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(seq, owner, ids)| {
                Ok(OutboxEntry {
                    seq,
                    owner,
                    event_ids: serde_json::from_str(&ids)
                        .map_err(|_| corrupt("event_ids", &ids))?,
                })
            })
            .collect()
    }

    pub fn outbox_delete(&self, seqs: &[i64]) -> Result<(), StoreError> {
        use super::schema_sqlite::event_outbox::dsl as o;
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for chunk in seqs.chunks(INSERT_CHUNK) {
            if let Err(e) =
                diesel::delete(o::event_outbox.filter(o::seq.eq_any(chunk))).execute(&mut *conn)
            {
                return Err(self.write_failed(&mut conn, e));
            }
        }
        Ok(())
    }

    pub fn outbox_backlog(&self) -> Result<i64, StoreError> {
        use super::schema_sqlite::event_outbox::dsl as o;
        let mut conn = self.reader()?;
        let lists: Vec<String> = o::event_outbox
            .select(o::event_ids)
            .load(&mut conn)
            .map_err(unavailable)?;
        // `[1,2,3]`: one comma fewer than ids, none for `[]`.
        Ok(lists
            .iter()
            .map(|l| {
                if l.len() > 2 {
                    l.matches(',').count() as i64 + 1
                } else {
                    0
                }
            })
            .sum())
    }

    /// Deletes what is older than `cutoff`, a chunk per transaction so that writers are never held up for long.
    pub fn delete_older_than(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> Result<Retained, StoreError> {
        let cutoff = micros(cutoff);
        let mut out = Retained::default();
        for (table, key, time) in super::RETAINED_TABLES {
            let sql = super::retention_sql(table, key, time, "?");
            loop {
                // The writer is taken per chunk: group commits go on between chunks.
                let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
                let n = match diesel::sql_query(&sql)
                    .bind::<BigInt, _>(cutoff)
                    .execute(&mut *conn)
                {
                    Ok(n) => n as u64,
                    Err(e) => return Err(self.write_failed(&mut conn, e)),
                };
                drop(conn);
                out.add(table, n);
                if n < super::RETENTION_CHUNK {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionSummary>, StoreError> {
        use sessions::dsl as s;
        let mut conn = self.reader()?;
        let mut query = s::sessions.select(SessionRow::as_select()).into_boxed();
        if let Some(v) = &q.source_app {
            query = query.filter(s::source_app.eq(v.clone()));
        }
        if let Some(v) = &q.status {
            query = query.filter(s::status.eq(v.clone()));
        }
        if let Some(t) = q.since {
            query = query.filter(s::last_seen.ge(micros(t)));
        }
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64;
        let rows: Vec<SessionRow> = query
            .order(s::last_seen.desc())
            .limit(limit)
            .load(&mut conn)
            .map_err(unavailable)?;
        rows.into_iter().map(SessionRow::into_summary).collect()
    }

    pub fn session(&self, id: Uuid) -> Result<Option<SessionSummary>, StoreError> {
        use sessions::dsl as s;
        let mut conn = self.reader()?;
        let row: Option<SessionRow> = s::sessions
            .filter(s::session_id.eq(id.to_string()))
            .select(SessionRow::as_select())
            .first(&mut conn)
            .optional()
            .map_err(unavailable)?;
        row.map(SessionRow::into_summary).transpose()
    }

    pub fn add_transcript(&self, entries: &[TranscriptEntry]) -> Result<usize, StoreError> {
        use super::schema_sqlite::chat_transcripts::dsl as c;
        let received = micros(chrono::Utc::now());
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.write(&mut conn, |conn| {
            let mut stored = 0;
            for e in entries {
                stored += diesel::insert_into(c::chat_transcripts)
                    .values((
                        c::session_id.eq(e.session_id.to_string()),
                        c::agent_id.eq(&e.agent_id),
                        c::uuid.eq(&e.uuid),
                        c::parent_uuid.eq(e.parent_uuid.as_deref()),
                        c::role.eq(&e.role),
                        c::content.eq(e.content.to_string()),
                        c::model.eq(e.model.as_deref()),
                        c::input_tokens.eq(e.input_tokens),
                        c::output_tokens.eq(e.output_tokens),
                        c::cache_read_tokens.eq(e.cache_read_tokens),
                        c::cache_creation_tokens.eq(e.cache_creation_tokens),
                        c::created_at.eq(micros(e.created_at)),
                        c::received_at.eq(received),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
            }
            Ok(stored)
        })
    }

    pub fn transcript(
        &self,
        session: Uuid,
        agent: Option<&str>,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        use super::schema_sqlite::chat_transcripts::dsl as c;
        let mut conn = self.reader()?;
        let mut query = c::chat_transcripts
            .filter(c::session_id.eq(session.to_string()))
            .select(TranscriptRow::as_select())
            .order((c::created_at.asc(), c::id.asc()))
            .into_boxed();
        if let Some(a) = agent {
            query = query.filter(c::agent_id.eq(a.to_string()));
        }
        let rows: Vec<TranscriptRow> = query.load(&mut conn).map_err(unavailable)?;
        rows.into_iter()
            .map(|r| {
                Ok(TranscriptEntry {
                    session_id: session,
                    content: serde_json::from_str(&r.content)
                        .map_err(|_| corrupt("content", "…"))?,
                    agent_id: r.agent_id,
                    uuid: r.uuid,
                    parent_uuid: r.parent_uuid,
                    role: r.role,
                    model: r.model,
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                    cache_read_tokens: r.cache_read_tokens,
                    cache_creation_tokens: r.cache_creation_tokens,
                    created_at: from_micros(r.created_at),
                })
            })
            .collect()
    }

    pub fn active_sessions(&self, since: chrono::DateTime<chrono::Utc>) -> Result<i64, StoreError> {
        use sessions::dsl as s;
        let mut conn = self.reader()?;
        s::sessions
            .filter(s::status.eq("active"))
            .filter(s::last_seen.ge(micros(since)))
            .count()
            .get_result(&mut conn)
            .map_err(unavailable)
    }

    /// Reader connections in use and idle; the writer counts as in use.
    pub fn pool_state(&self) -> (u64, u64) {
        let state = self.readers.state();
        let idle = state.idle_connections as u64;
        (state.connections as u64 - idle + 1, idle)
    }

    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader()?;
        conn.batch_execute("SELECT 1").map_err(unavailable)
    }

    fn reader(
        &self,
    ) -> Result<diesel::r2d2::PooledConnection<ConnectionManager<SqliteConnection>>, StoreError>
    {
        self.readers
            .get()
            .map_err(|e| StoreError::Unavailable(format!("no reader connection: {e}")))
    }
}

fn unavailable(e: diesel::result::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The directory that holds the database: the data directory.
fn data_dir(db: &Path) -> &Path {
    db.parent().unwrap_or(Path::new("."))
}

/// The writer connection, set up: WAL, the durability asked for, a lock timeout, a large page cache.
fn open_writer(path: &Path, sync: SqliteSync) -> Result<SqliteConnection, StoreError> {
    let mut writer = SqliteConnection::establish(&path.to_string_lossy())
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    let sync = match sync {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
    };
    writer
        .batch_execute(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA busy_timeout = 5000; \
             PRAGMA cache_size = -32000; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(unavailable)?;
    Ok(writer)
}

/// Rows per multi-row INSERT (23 parameters each, under SQLite's limit of 32,766).
const INSERT_CHUNK: usize = 1000;

#[derive(QueryableByName)]
struct InsertedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// Inserts rows with one statement, skipping event ids already stored; returns `(event_id, id)` of those inserted.
/// One statement per batch, not one per row: SQLite then journals each touched page once per batch.
fn insert_events(
    conn: &mut SqliteConnection,
    rows: &[EventRowRef<'_>],
) -> QueryResult<Vec<(String, i64)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let values =
        vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()]
            .join(", ");
    let sql = format!(
        "INSERT INTO agent_events (event_id, event_type, source, session_id, agent_id, source_app, prompt_id, \
           tool_name, tool_use_id, trace_id, span_id, parent_span_id, status, severity, latency_ms, created_at, \
           received_at, payload, model, mcp_server, repo, branch, commit_sha) VALUES {values} ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"
    );
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    for r in rows {
        query = query
            .bind::<Text, _>(&r.event_id)
            .bind::<Text, _>(r.event_type)
            .bind::<Text, _>(r.source)
            .bind::<Text, _>(&r.session_id)
            .bind::<Text, _>(r.agent_id)
            .bind::<Text, _>(r.source_app)
            .bind::<Nullable<Text>, _>(r.prompt_id)
            .bind::<Nullable<Text>, _>(r.tool_name)
            .bind::<Nullable<Text>, _>(r.tool_use_id)
            .bind::<Text, _>(&r.trace_id)
            .bind::<Nullable<Text>, _>(&r.span_id)
            .bind::<Nullable<Text>, _>(&r.parent_span_id)
            .bind::<Text, _>(r.status)
            .bind::<Text, _>(r.severity)
            .bind::<Nullable<BigInt>, _>(r.latency_ms)
            .bind::<BigInt, _>(r.created_at)
            .bind::<BigInt, _>(r.received_at)
            .bind::<Text, _>(&r.payload)
            .bind::<Nullable<Text>, _>(r.model)
            .bind::<Nullable<Text>, _>(r.mcp_server)
            .bind::<Nullable<Text>, _>(r.repo)
            .bind::<Nullable<Text>, _>(r.branch)
            .bind::<Nullable<Text>, _>(r.commit);
    }
    Ok(query
        .load::<InsertedId>(conn)?
        .into_iter()
        .map(|r| (r.event_id, r.id))
        .collect())
}

/// Fills `latency_ms` of finished tool calls from their PreToolUse, whichever half was stored first. The halves
/// meet in `tool_calls`, keyed by `(session_id, tool_use_id)`: two key lookups per hook tool event, none for
/// anything else.
fn pair_tools(
    conn: &mut SqliteConnection,
    stored: &[(i64, &AgentEvent)],
) -> QueryResult<HashMap<i64, i64>> {
    use diesel::upsert::excluded;

    use super::schema_sqlite::agent_events::dsl as e;
    use super::schema_sqlite::tool_calls::dsl as t;
    // Latencies set here, by the Post's row id.
    let mut set: HashMap<i64, i64> = HashMap::new();
    let has_latency = |id: i64, set: &HashMap<i64, i64>| {
        set.contains_key(&id)
            || stored
                .iter()
                .any(|(i, ev)| *i == id && ev.latency_ms.is_some())
    };
    for &(id, ev) in stored {
        let (start, finish) = (
            is_tool_start(&ev.event_type),
            is_tool_finish(&ev.event_type),
        );
        let Some(tool_use_id) = ev.tool_use_id.as_deref().filter(|_| start || finish) else {
            continue;
        };
        let session = ev.session_id.to_string();
        let at = micros(ev.created_at);
        if start {
            let (post_id, post_at): (Option<i64>, Option<i64>) = diesel::insert_into(t::tool_calls)
                .values((
                    t::session_id.eq(&session),
                    t::tool_use_id.eq(tool_use_id),
                    t::pre_at.eq(at),
                ))
                .on_conflict((t::session_id, t::tool_use_id))
                .do_update()
                .set(t::pre_at.eq(excluded(t::pre_at)))
                .returning((t::post_id, t::post_at))
                .get_result(conn)?;
            if let (Some(post_id), Some(post_at)) = (post_id, post_at) {
                let ms = (post_at.saturating_sub(at) / 1000).max(0);
                let updated = diesel::update(
                    e::agent_events
                        .filter(e::id.eq(post_id))
                        .filter(e::latency_ms.is_null()),
                )
                .set(e::latency_ms.eq(ms))
                .execute(conn)?;
                if updated > 0 && !has_latency(post_id, &set) {
                    set.insert(post_id, ms);
                }
            }
        } else {
            let pre_at: Option<i64> = diesel::insert_into(t::tool_calls)
                .values((
                    t::session_id.eq(&session),
                    t::tool_use_id.eq(tool_use_id),
                    t::post_id.eq(id),
                    t::post_at.eq(at),
                ))
                .on_conflict((t::session_id, t::tool_use_id))
                .do_update()
                .set((
                    t::post_id.eq(excluded(t::post_id)),
                    t::post_at.eq(excluded(t::post_at)),
                ))
                .returning(t::pre_at)
                .get_result(conn)?;
            if let Some(pre_at) = pre_at
                && !has_latency(id, &set)
            {
                let ms = (at.saturating_sub(pre_at) / 1000).max(0);
                diesel::update(e::agent_events.filter(e::id.eq(id)))
                    .set(e::latency_ms.eq(ms))
                    .execute(conn)?;
                set.insert(id, ms);
            }
        }
    }
    Ok(set)
}

/// Rows per session upsert statement (15 parameters each, well under SQLite's limit of 32,766).
const UPSERT_CHUNK: usize = 500;

/// Folds a batch's session deltas into `sessions` with one statement per chunk: parsed once per commit, not once
/// per session.
fn upsert_sessions(conn: &mut SqliteConnection, deltas: &[super::SessionDelta]) -> QueryResult<()> {
    for chunk in deltas.chunks(UPSERT_CHUNK) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO sessions (session_id, source_app, first_seen, last_seen, cwd, model, status, status_at, \
               event_count, tool_calls, tool_failures, error_count, input_tokens, output_tokens, cost_usd) \
             VALUES {rows} \
             ON CONFLICT (session_id) DO UPDATE SET \
               first_seen = min(sessions.first_seen, excluded.first_seen), \
               last_seen = max(sessions.last_seen, excluded.last_seen), \
               cwd = coalesce(sessions.cwd, excluded.cwd), \
               model = coalesce(excluded.model, sessions.model), \
               status = CASE WHEN excluded.status_at >= sessions.status_at THEN excluded.status ELSE sessions.status END, \
               status_at = max(sessions.status_at, excluded.status_at), \
               event_count = sessions.event_count + excluded.event_count, \
               tool_calls = sessions.tool_calls + excluded.tool_calls, \
               tool_failures = sessions.tool_failures + excluded.tool_failures, \
               error_count = sessions.error_count + excluded.error_count, \
               input_tokens = sessions.input_tokens + excluded.input_tokens, \
               output_tokens = sessions.output_tokens + excluded.output_tokens, \
               cost_usd = sessions.cost_usd + excluded.cost_usd"
        );
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        for d in chunk {
            let (status, status_at) = d.status.unwrap_or(("active", i64::MIN));
            query = query
                .bind::<Text, _>(d.session_id.to_string())
                .bind::<Text, _>(d.source_app.clone())
                .bind::<BigInt, _>(d.first_seen)
                .bind::<BigInt, _>(d.last_seen)
                .bind::<Nullable<Text>, _>(d.cwd.clone())
                .bind::<Nullable<Text>, _>(d.model.clone())
                .bind::<Text, _>(status)
                .bind::<BigInt, _>(status_at)
                .bind::<BigInt, _>(d.event_count)
                .bind::<BigInt, _>(d.tool_calls)
                .bind::<BigInt, _>(d.tool_failures)
                .bind::<BigInt, _>(d.error_count)
                .bind::<BigInt, _>(d.input_tokens)
                .bind::<BigInt, _>(d.output_tokens)
                .bind::<Double, _>(d.cost_usd);
        }
        query.execute(conn)?;
    }
    Ok(())
}

struct EventRowRef<'a> {
    event_id: String,
    event_type: &'a str,
    source: &'static str,
    session_id: String,
    agent_id: &'a str,
    source_app: &'a str,
    prompt_id: Option<&'a str>,
    tool_name: Option<&'a str>,
    tool_use_id: Option<&'a str>,
    trace_id: String,
    span_id: Option<String>,
    parent_span_id: Option<String>,
    status: &'static str,
    severity: &'static str,
    latency_ms: Option<i64>,
    created_at: i64,
    received_at: i64,
    payload: String,
    model: Option<&'a str>,
    mcp_server: Option<&'a str>,
    repo: Option<&'a str>,
    branch: Option<&'a str>,
    commit: Option<&'a str>,
}

impl<'a> EventRowRef<'a> {
    fn new(ev: &'a AgentEvent, received_at: i64) -> Self {
        EventRowRef {
            event_id: ev.event_id.to_string(),
            event_type: &ev.event_type,
            source: ev.source.as_str(),
            session_id: ev.session_id.to_string(),
            agent_id: &ev.agent_id,
            source_app: &ev.source_app,
            prompt_id: ev.prompt_id.as_deref(),
            tool_name: ev.tool_name.as_deref(),
            tool_use_id: ev.tool_use_id.as_deref(),
            trace_id: ev.trace_id.to_hex(),
            span_id: ev.span_id.map(SpanId::to_hex),
            parent_span_id: ev.parent_span_id.map(SpanId::to_hex),
            status: ev.status.as_str(),
            severity: ev.severity.as_str(),
            latency_ms: ev.latency_ms,
            created_at: micros(ev.created_at),
            received_at,
            payload: ev.payload.to_string(),
            model: ev.model.as_deref(),
            mcp_server: ev.mcp_server.as_deref(),
            repo: ev.repo.as_deref(),
            branch: ev.branch.as_deref(),
            commit: ev.commit.as_deref(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = agent_events)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct EventRow {
    id: i64,
    event_id: String,
    event_type: String,
    source: String,
    session_id: String,
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
    created_at: i64,
    received_at: i64,
    payload: String,
    model: Option<String>,
    mcp_server: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    commit_sha: Option<String>,
}

impl EventRow {
    fn into_raw(self) -> Result<RawEvent, StoreError> {
        Ok(RawEvent {
            id: self.id,
            event_id: self
                .event_id
                .parse()
                .map_err(|_| corrupt("event_id", &self.event_id))?,
            session_id: self
                .session_id
                .parse()
                .map_err(|_| corrupt("session_id", &self.session_id))?,
            payload: serde_json::from_str(&self.payload).map_err(|_| corrupt("payload", "…"))?,
            event_type: self.event_type,
            source: self.source,
            agent_id: self.agent_id,
            source_app: self.source_app,
            prompt_id: self.prompt_id,
            tool_name: self.tool_name,
            tool_use_id: self.tool_use_id,
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            status: self.status,
            severity: self.severity,
            latency_ms: self.latency_ms,
            created_at: from_micros(self.created_at),
            received_at: from_micros(self.received_at),
            model: self.model,
            mcp_server: self.mcp_server,
            repo: self.repo,
            branch: self.branch,
            commit_sha: self.commit_sha,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema_sqlite::chat_transcripts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct TranscriptRow {
    agent_id: String,
    uuid: String,
    parent_uuid: Option<String>,
    role: String,
    content: String,
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_creation_tokens: Option<i64>,
    created_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite))]
struct SessionRow {
    session_id: String,
    source_app: String,
    first_seen: i64,
    last_seen: i64,
    cwd: Option<String>,
    model: Option<String>,
    status: String,
    event_count: i64,
    tool_calls: i64,
    tool_failures: i64,
    error_count: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

impl SessionRow {
    fn into_summary(self) -> Result<SessionSummary, StoreError> {
        Ok(SessionSummary {
            session_id: self
                .session_id
                .parse()
                .map_err(|_| corrupt("session_id", &self.session_id))?,
            source_app: self.source_app,
            first_seen: from_micros(self.first_seen),
            last_seen: from_micros(self.last_seen),
            cwd: self.cwd,
            model: self.model,
            status: self.status,
            event_count: self.event_count,
            tool_calls: self.tool_calls,
            tool_failures: self.tool_failures,
            error_count: self.error_count,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cost_usd: self.cost_usd,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hook::{HookContext, normalize_hook};

    fn event(n: usize) -> AgentEvent {
        let v = serde_json::json!({
            "session_id": Uuid::new_v4().to_string(),
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_use_id": format!("toolu_{n}"),
            "tool_input": {"command": "x".repeat(2000)},
        });
        normalize_hook(v, &HookContext::default(), chrono::Utc::now()).unwrap()
    }

    fn events(from: usize, count: usize) -> Vec<AgentEvent> {
        (from..from + count).map(event).collect()
    }

    fn pragma(store: &SqliteStore, sql: &str) {
        let mut conn = store.writer.lock().unwrap();
        conn.batch_execute(sql).unwrap();
    }

    fn page_count(store: &SqliteStore) -> i64 {
        #[derive(QueryableByName)]
        struct Pages {
            #[diesel(sql_type = BigInt)]
            page_count: i64,
        }
        let mut conn = store.writer.lock().unwrap();
        let pages: Vec<Pages> = diesel::sql_query("PRAGMA page_count")
            .load(&mut *conn)
            .unwrap();
        pages[0].page_count
    }

    fn assert_volume_full(error: &StoreError, dir: &Path) {
        let StoreError::Unavailable(message) = error else {
            panic!("a full volume is retryable (Unavailable): {error:?}");
        };
        assert!(
            message.contains("SQLite volume is full")
                && message.contains(&dir.display().to_string())
                && message.contains("free space"),
            "{message}"
        );
        assert_eq!(
            error.to_string(),
            format!("store unavailable: {message}"),
            "one prefix"
        );
    }

    /// `max_page_count` makes SQLite answer SQLITE_FULL as a full volume does: the commit is refused whole, the
    /// events come back, and once there is room the same writer commits them.
    #[test]
    fn a_full_database_refuses_the_commit_and_the_writer_recovers() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("hivewatch.db"), SqliteSync::Full).unwrap();
        store.commit(events(0, 5), None).unwrap();
        let pages = page_count(&store);
        pragma(&store, &format!("PRAGMA max_page_count = {pages}"));

        let (error, back) = store.commit(events(5, 50), None).unwrap_err();
        assert_volume_full(&error, tmp.path());
        assert_eq!(back.len(), 50, "the events come back to be retried");
        assert!(!store.writer.lock().unwrap().is_broken());

        pragma(&store, "PRAGMA max_page_count = 1073741823");
        let done = store.commit(back, None).unwrap();
        assert_eq!(done.inserted.len(), 50);
        assert_eq!(
            store
                .events(&EventQuery {
                    limit: Some(100),
                    ..Default::default()
                })
                .unwrap()
                .events
                .len(),
            55
        );
    }

    /// On SQLITE_FULL in the middle of a transaction SQLite may roll the whole of it back itself; the ROLLBACK
    /// after it then fails ("no transaction is active"). The write still fails as a full volume (not as refused
    /// data, which would answer 400 and lose the events), and the writer takes the next transaction.
    #[test]
    fn a_transaction_sqlite_rolled_back_itself_fails_with_its_cause() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("hivewatch.db"), SqliteSync::Full).unwrap();
        let mut conn = store.writer.lock().unwrap();
        let error = store
            .write(&mut conn, |conn| {
                conn.batch_execute("ROLLBACK")?;
                Err::<(), _>(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::Unknown,
                    Box::new(SQLITE_FULL.to_string()),
                ))
            })
            .unwrap_err();
        assert_volume_full(&error, tmp.path());
        assert!(!conn.is_broken());
        drop(conn);
        assert_eq!(store.commit(events(0, 3), None).unwrap().inserted.len(), 3);
    }

    /// A transaction a panic left open (the committer survives panics) does not block the writer: the next write
    /// starts on a fresh connection, and what the open transaction held is rolled back.
    #[test]
    fn a_transaction_left_open_by_a_panic_does_not_block_the_next_write() {
        let tmp = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&tmp.path().join("hivewatch.db"), SqliteSync::Full).unwrap();
        let mut conn = store.writer.lock().unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write::<()>(&mut conn, |conn| {
                insert_events(conn, &[EventRowRef::new(&event(0), 0)])?;
                panic!("in the middle of a transaction")
            })
        }));
        assert!(panicked.is_err());
        assert!(conn.is_broken(), "the transaction is still open");
        drop(conn);
        let done = store.commit(events(1, 3), None).unwrap();
        assert_eq!(done.inserted.len(), 3);
        let stored = store
            .events(&EventQuery {
                limit: Some(10),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            stored.events.len(),
            3,
            "the panicked transaction rolled back"
        );
    }
}
