//! The embedded store: SQLite in WAL mode through Diesel.
//!
//! One writer connection takes every group commit (SQLite allows one writer at a time anyway); a small pool of
//! reader connections serves queries concurrently with it. All calls run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
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

#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<SqliteConnection>>,
    readers: Pool<ConnectionManager<SqliteConnection>>,
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
        let mut writer = SqliteConnection::establish(&url)
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
        writer
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| StoreError::Internal(format!("migrations: {e}")))?;
        let readers = Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .connection_customizer(Box::new(ReaderSetup))
            .build(ConnectionManager::<SqliteConnection>::new(url))
            .map_err(|e| StoreError::Unavailable(format!("reader pool: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            readers,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        let result = conn.immediate_transaction(|conn| {
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
            Err(e) => return Err((super::commit_error(e), events)),
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
            diesel::delete(o::event_outbox.filter(o::seq.eq_any(chunk)))
                .execute(&mut *conn)
                .map_err(unavailable)?;
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
                let n = diesel::sql_query(&sql)
                    .bind::<BigInt, _>(cutoff)
                    .execute(&mut *conn)
                    .map_err(unavailable)? as u64;
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
        conn.immediate_transaction(|conn| {
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
        .map_err(super::commit_error)
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

/// Rows per multi-row INSERT (18 parameters each, under SQLite's limit of 32,766).
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
        vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
    let sql = format!(
        "INSERT INTO agent_events (event_id, event_type, source, session_id, agent_id, source_app, prompt_id, \
           tool_name, tool_use_id, trace_id, span_id, parent_span_id, status, severity, latency_ms, created_at, \
           received_at, payload) VALUES {values} ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"
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
            .bind::<Text, _>(&r.payload);
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
