//! The production store: Postgres through diesel-async (pure-Rust tokio-postgres, no libpq) with a bb8 pool.
//!
//! Every write of a group commit is one statement over arrays (`unnest`), whatever the batch size: events,
//! tool-call halves, session deltas and the outbox row, in one transaction. Rows that other replicas may touch at
//! the same time (sessions, tool calls) are written in key order, so two replicas never wait on each other in a
//! cycle; a deadlock or serialization failure is retried a few times before the batch is answered 503.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, QueryableByName,
    SelectableHelper,
};
use diesel_async::SimpleAsyncConnection;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use serde_json::Value;
use uuid::Uuid;

use super::schema_postgres::{agent_events, chat_transcripts, event_outbox, sessions};
use super::{
    CommitOutcome, Cursor, DEFAULT_LIMIT, EventPage, EventQuery, MAX_LIMIT, Order, OutboxEntry,
    RawEvent, Retained, SessionDelta, SessionQuery, SessionSummary, StoreError, ToolHalves,
    TranscriptEntry, from_micros, session_deltas,
};
use crate::model::{AgentEvent, SpanId, StoredEvent};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// Held while migrations run, so that replicas starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x6869_7665_7761_7463;
const COMMIT_ATTEMPTS: usize = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    /// `host:port/database`, for messages (never the password).
    target: String,
}

impl PgStore {
    pub async fn open(url: &str, pool_size: u32) -> Result<PgStore, StoreError> {
        let target = describe_url(url);
        let unreachable = |e: String| {
            StoreError::Unavailable(format!("cannot connect to Postgres at {target}: {e}"))
        };
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, AsyncPgConnection::establish(url))
            .await
            .map_err(|_| unreachable(format!("no answer in {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        // The harness drives diesel's synchronous migration runner on this thread (block_in_place).
        let mut harness = AsyncMigrationHarness::new(conn);
        let migrated = harness
            .run_pending_migrations(MIGRATIONS)
            .map(|_| ())
            .map_err(|e| StoreError::Internal(format!("Postgres migrations: {e}")));
        let mut conn = harness.into_inner();
        diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        migrated?;
        drop(conn);
        let mut setup = ManagerConfig::default();
        setup.custom_setup = Box::new(|url| Box::pin(connect(url.to_string())));
        let pool = Pool::builder()
            .max_size(pool_size.max(2))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .retry_connection(false)
            .build(AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, setup))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(PgStore { pool, target })
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    async fn conn(&self) -> Result<PooledConnection<'_, AsyncPgConnection>, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("Postgres at {}: {e}", self.target)))
    }

    pub async fn commit(
        &self,
        events: Vec<AgentEvent>,
        outbox_owner: Option<&str>,
    ) -> Result<CommitOutcome, (StoreError, Vec<AgentEvent>)> {
        let received_at = Utc::now();
        let columns = EventColumns::new(&events, received_at);
        let mut attempt = 0;
        let (ids, pairs, outbox_seq) = loop {
            attempt += 1;
            let mut conn = match self.conn().await {
                Ok(c) => c,
                Err(e) => return Err((e, events)),
            };
            let result = conn
                .transaction::<_, diesel::result::Error, _>(async |conn| {
                    let ids = insert_events(conn, &columns).await?;
                    // Only the stored copy of an id that occurs twice in the batch counts.
                    let stored: Vec<(i64, &AgentEvent)> = events
                        .iter()
                        .zip(&columns.event_id)
                        .enumerate()
                        .filter_map(|(i, (ev, key))| match ids.get(key) {
                            Some(&(id, at)) if at == i => Some((id, ev)),
                            _ => None,
                        })
                        .collect();
                    let inserted: Vec<&AgentEvent> = stored.iter().map(|(_, ev)| *ev).collect();
                    let halves = ToolHalves::collect(stored.iter().copied());
                    let pairs = pair_tools(conn, &halves).await?;
                    upsert_sessions(conn, session_deltas(inserted)).await?;
                    let seq = match outbox_owner {
                        Some(owner) if !ids.is_empty() => {
                            let mut committed: Vec<(usize, i64)> =
                                ids.values().copied().map(|(id, i)| (i, id)).collect();
                            committed.sort_unstable();
                            let ids: Vec<i64> = committed.into_iter().map(|(_, id)| id).collect();
                            Some(
                                diesel::insert_into(event_outbox::table)
                                    .values((
                                        event_outbox::owner.eq(owner),
                                        event_outbox::event_ids.eq(ids),
                                    ))
                                    .returning(event_outbox::seq)
                                    .get_result::<i64>(conn)
                                    .await?,
                            )
                        }
                        _ => None,
                    };
                    Ok((ids, pairs, seq))
                })
                .await;
            match result {
                Ok(done) => break done,
                Err(e) if attempt < COMMIT_ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(error = %e, attempt, "commit conflicted with another writer; retrying");
                }
                Err(e) => return Err((super::commit_error(e), events)),
            }
        };
        let mut out = CommitOutcome {
            outbox_seq,
            ..Default::default()
        };
        let mut ids = ids;
        for (mut event, key) in events.into_iter().zip(columns.event_id) {
            match ids.remove(&key) {
                Some((id, _)) => {
                    event.received_at = received_at;
                    if event.latency_ms.is_none() {
                        event.latency_ms = pairs.get(&id).copied();
                    }
                    out.inserted.push(StoredEvent { id, event });
                }
                None => out.duplicates += 1,
            }
        }
        Ok(out)
    }

    pub async fn events(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        use agent_events::dsl as e;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64;
        let mut query = e::agent_events.select(PgEventRow::as_select()).into_boxed();
        filter_events!(
            query,
            q,
            session = |s: Uuid| s,
            time = |t: DateTime<Utc>| t,
            micros = from_micros
        );
        let mut conn = self.conn().await?;
        let rows: Vec<PgEventRow> = query
            .limit(limit + 1)
            .load(&mut conn)
            .await
            .map_err(unavailable)?;
        EventPage::from_rows(rows.into_iter().map(PgEventRow::into_raw), limit as usize)
    }

    /// Events by id, in the order of `ids` (ids no longer stored are left out).
    pub async fn events_by_id(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        use agent_events::dsl as e;
        let mut conn = self.conn().await?;
        let rows: Vec<PgEventRow> = e::agent_events
            .filter(e::id.eq_any(ids))
            .select(PgEventRow::as_select())
            .load(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut by_id: HashMap<i64, PgEventRow> = rows.into_iter().map(|r| (r.id, r)).collect();
        ids.iter()
            .filter_map(|id| by_id.remove(id))
            .map(|r| r.into_raw().into_event())
            .collect()
    }

    pub async fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionSummary>, StoreError> {
        use sessions::dsl as s;
        let mut query = s::sessions.select(PgSessionRow::as_select()).into_boxed();
        if let Some(v) = &q.source_app {
            query = query.filter(s::source_app.eq(v.clone()));
        }
        if let Some(v) = &q.status {
            query = query.filter(s::status.eq(v.clone()));
        }
        if let Some(t) = q.since {
            query = query.filter(s::last_seen.ge(t));
        }
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64;
        let mut conn = self.conn().await?;
        let rows: Vec<PgSessionRow> = query
            .order(s::last_seen.desc())
            .limit(limit)
            .load(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(PgSessionRow::into_summary).collect())
    }

    pub async fn session(&self, id: Uuid) -> Result<Option<SessionSummary>, StoreError> {
        use sessions::dsl as s;
        let mut conn = self.conn().await?;
        let row: Option<PgSessionRow> = s::sessions
            .filter(s::session_id.eq(id))
            .select(PgSessionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(unavailable)?;
        Ok(row.map(PgSessionRow::into_summary))
    }

    pub async fn add_transcript(&self, entries: &[TranscriptEntry]) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let col =
            |f: fn(&TranscriptEntry) -> Option<i64>| entries.iter().map(f).collect::<Vec<_>>();
        let mut conn = self.conn().await?;
        diesel::sql_query(
            "INSERT INTO chat_transcripts (session_id, agent_id, uuid, parent_uuid, role, content, model, \
               input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, created_at, received_at) \
             SELECT s, a, u, p, r, c::jsonb, m, it, ot, cr, cc, t, $13 \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                         $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::timestamptz[]) \
                  AS x(s, a, u, p, r, c, m, it, ot, cr, cc, t) \
             ON CONFLICT (session_id, uuid) DO NOTHING",
        )
        .bind::<Array<SqlUuid>, _>(entries.iter().map(|e| e.session_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(entries.iter().map(|e| e.agent_id.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(entries.iter().map(|e| e.uuid.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            entries.iter().map(|e| e.parent_uuid.as_deref()).collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(entries.iter().map(|e| e.role.as_str()).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(entries.iter().map(|e| e.content.to_string()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Text>>, _>(
            entries.iter().map(|e| e.model.as_deref()).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<BigInt>>, _>(col(|e| e.input_tokens))
        .bind::<Array<Nullable<BigInt>>, _>(col(|e| e.output_tokens))
        .bind::<Array<Nullable<BigInt>>, _>(col(|e| e.cache_read_tokens))
        .bind::<Array<Nullable<BigInt>>, _>(col(|e| e.cache_creation_tokens))
        .bind::<Array<Timestamptz>, _>(entries.iter().map(|e| e.created_at).collect::<Vec<_>>())
        .bind::<Timestamptz, _>(Utc::now())
        .execute(&mut conn)
        .await
        .map_err(super::commit_error)
    }

    pub async fn transcript(
        &self,
        session: Uuid,
        agent: Option<&str>,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        use chat_transcripts::dsl as c;
        let mut query = c::chat_transcripts
            .filter(c::session_id.eq(session))
            .select(PgTranscriptRow::as_select())
            .order((c::created_at.asc(), c::id.asc()))
            .into_boxed();
        if let Some(a) = agent {
            query = query.filter(c::agent_id.eq(a.to_string()));
        }
        let mut conn = self.conn().await?;
        let rows: Vec<PgTranscriptRow> = query.load(&mut conn).await.map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| TranscriptEntry {
                session_id: session,
                agent_id: r.agent_id,
                uuid: r.uuid,
                parent_uuid: r.parent_uuid,
                role: r.role,
                content: r.content,
                model: r.model,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cache_read_tokens: r.cache_read_tokens,
                cache_creation_tokens: r.cache_creation_tokens,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Outbox rows to publish, oldest first: this process's own, and those another process left behind for longer
    /// than `orphaned_after`.
    pub async fn outbox_pending(
        &self,
        owner: &str,
        orphaned_after: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        use event_outbox::dsl as o;
        let cutoff = Utc::now() - chrono::Duration::from_std(orphaned_after).unwrap_or_default();
        let mut conn = self.conn().await?;
        let rows: Vec<(i64, String, Vec<i64>)> = o::event_outbox
            .filter(o::owner.eq(owner).or(o::created_at.lt(cutoff)))
            .select((o::seq, o::owner, o::event_ids))
            .order(o::seq.asc())
            .limit(limit)
            .load(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(seq, owner, event_ids)| OutboxEntry {
                seq,
                owner,
                event_ids,
            })
            .collect())
    }

    pub async fn outbox_delete(&self, seqs: &[i64]) -> Result<(), StoreError> {
        use event_outbox::dsl as o;
        let mut conn = self.conn().await?;
        diesel::delete(o::event_outbox.filter(o::seq.eq_any(seqs)))
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Events committed but not yet published (all owners).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let mut conn = self.conn().await?;
        #[derive(QueryableByName)]
        struct Backlog {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT coalesce(sum(cardinality(event_ids)), 0)::int8 AS n FROM event_outbox",
        )
        .get_result::<Backlog>(&mut conn)
        .await
        .map(|b| b.n)
        .map_err(unavailable)
    }

    /// Deletes what is older than `cutoff`, a chunk at a time so that no statement holds locks for long.
    pub async fn delete_older_than(&self, cutoff: DateTime<Utc>) -> Result<Retained, StoreError> {
        let mut out = Retained::default();
        let mut conn = self.conn().await?;
        for (table, key, time) in super::RETAINED_TABLES {
            let sql = super::retention_sql(table, key, time, "$1");
            loop {
                let n = diesel::sql_query(&sql)
                    .bind::<Timestamptz, _>(cutoff)
                    .execute(&mut conn)
                    .await
                    .map_err(unavailable)? as u64;
                out.add(table, n);
                if n < super::RETENTION_CHUNK {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub async fn active_sessions(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        use sessions::dsl as s;
        let mut conn = self.conn().await?;
        s::sessions
            .filter(s::status.eq("active"))
            .filter(s::last_seen.ge(since))
            .count()
            .get_result(&mut conn)
            .await
            .map_err(unavailable)
    }

    pub fn pool_state(&self) -> (u64, u64) {
        let state = self.pool.state();
        let idle = state.idle_connections as u64;
        (state.connections as u64 - idle, idle)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

/// A pool connection. A commit stuck behind a lock, or a statement that never ends, fails after a bound
/// (the batch is answered 503, retryable) instead of stalling every ingest request behind it.
async fn connect(url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(&url).await?;
    conn.batch_execute("SET lock_timeout = '5s'; SET statement_timeout = '30s'")
        .await
        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// `host:port/database` of a Postgres URL, without user or password.
pub fn describe_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or_default().to_string()
}

fn unavailable(e: diesel::result::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn is_retryable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// A batch of events as one array per column: the parameters of the insert.
struct EventColumns {
    event_id: Vec<Uuid>,
    event_type: Vec<String>,
    source: Vec<&'static str>,
    session_id: Vec<Uuid>,
    agent_id: Vec<String>,
    source_app: Vec<String>,
    prompt_id: Vec<Option<String>>,
    tool_name: Vec<Option<String>>,
    tool_use_id: Vec<Option<String>>,
    trace_id: Vec<String>,
    span_id: Vec<Option<String>>,
    parent_span_id: Vec<Option<String>>,
    status: Vec<&'static str>,
    severity: Vec<&'static str>,
    latency_ms: Vec<Option<i32>>,
    created_at: Vec<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    payload: Vec<String>,
    model: Vec<Option<String>>,
    mcp_server: Vec<Option<String>>,
    repo: Vec<Option<String>>,
    branch: Vec<Option<String>>,
    commit: Vec<Option<String>>,
}

impl EventColumns {
    fn new(events: &[AgentEvent], received_at: DateTime<Utc>) -> Self {
        let col = |f: &dyn Fn(&AgentEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let opt =
            |f: &dyn Fn(&AgentEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
        EventColumns {
            event_id: events.iter().map(|e| e.event_id).collect(),
            event_type: col(&|e| e.event_type.clone()),
            source: events.iter().map(|e| e.source.as_str()).collect(),
            session_id: events.iter().map(|e| e.session_id).collect(),
            agent_id: col(&|e| e.agent_id.clone()),
            source_app: col(&|e| e.source_app.clone()),
            prompt_id: opt(&|e| e.prompt_id.clone()),
            tool_name: opt(&|e| e.tool_name.clone()),
            tool_use_id: opt(&|e| e.tool_use_id.clone()),
            trace_id: col(&|e| e.trace_id.to_hex()),
            span_id: opt(&|e| e.span_id.map(SpanId::to_hex)),
            parent_span_id: opt(&|e| e.parent_span_id.map(SpanId::to_hex)),
            status: events.iter().map(|e| e.status.as_str()).collect(),
            severity: events.iter().map(|e| e.severity.as_str()).collect(),
            latency_ms: events
                .iter()
                .map(|e| e.latency_ms.map(|l| l.clamp(0, i32::MAX as i64) as i32))
                .collect(),
            created_at: events.iter().map(|e| e.created_at).collect(),
            received_at,
            payload: col(&|e| e.payload.to_string()),
            model: opt(&|e| e.model.clone()),
            mcp_server: opt(&|e| e.mcp_server.clone()),
            repo: opt(&|e| e.repo.clone()),
            branch: opt(&|e| e.branch.clone()),
            commit: opt(&|e| e.commit.clone()),
        }
    }
}

#[derive(QueryableByName)]
struct InsertedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
}

/// Inserts the batch with one statement, skipping event ids already stored. Returns, for each inserted event id,
/// its row id and its position in the batch (the first of two events with one id is the one stored).
async fn insert_events(
    conn: &mut AsyncPgConnection,
    c: &EventColumns,
) -> diesel::QueryResult<HashMap<Uuid, (i64, usize)>> {
    let rows: Vec<InsertedId> = diesel::sql_query(
        "INSERT INTO agent_events (event_id, event_type, source, session_id, agent_id, source_app, prompt_id, \
           tool_name, tool_use_id, trace_id, span_id, parent_span_id, status, severity, latency_ms, created_at, \
           received_at, payload, model, mcp_server, repo, branch, commit_sha) \
         SELECT e, t, s, sid, a, app, p, tn, tu, tr, sp, ps, st, sv, l, c, $17, pl::jsonb, mo, ms, re, br, co \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], \
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
                     $15::int4[], $16::timestamptz[], $18::text[], $19::text[], $20::text[], $21::text[], \
                     $22::text[], $23::text[]) WITH ORDINALITY \
              AS x(e, t, s, sid, a, app, p, tn, tu, tr, sp, ps, st, sv, l, c, pl, mo, ms, re, br, co, n) \
         ORDER BY n \
         ON CONFLICT (event_id) DO NOTHING \
         RETURNING id, event_id",
    )
    .bind::<Array<SqlUuid>, _>(&c.event_id)
    .bind::<Array<Text>, _>(&c.event_type)
    .bind::<Array<Text>, _>(&c.source)
    .bind::<Array<SqlUuid>, _>(&c.session_id)
    .bind::<Array<Text>, _>(&c.agent_id)
    .bind::<Array<Text>, _>(&c.source_app)
    .bind::<Array<Nullable<Text>>, _>(&c.prompt_id)
    .bind::<Array<Nullable<Text>>, _>(&c.tool_name)
    .bind::<Array<Nullable<Text>>, _>(&c.tool_use_id)
    .bind::<Array<Text>, _>(&c.trace_id)
    .bind::<Array<Nullable<Text>>, _>(&c.span_id)
    .bind::<Array<Nullable<Text>>, _>(&c.parent_span_id)
    .bind::<Array<Text>, _>(&c.status)
    .bind::<Array<Text>, _>(&c.severity)
    .bind::<Array<Nullable<Integer>>, _>(&c.latency_ms)
    .bind::<Array<Timestamptz>, _>(&c.created_at)
    .bind::<Timestamptz, _>(c.received_at)
    .bind::<Array<Text>, _>(&c.payload)
    .bind::<Array<Nullable<Text>>, _>(&c.model)
    .bind::<Array<Nullable<Text>>, _>(&c.mcp_server)
    .bind::<Array<Nullable<Text>>, _>(&c.repo)
    .bind::<Array<Nullable<Text>>, _>(&c.branch)
    .bind::<Array<Nullable<Text>>, _>(&c.commit)
    .load(conn)
    .await?;
    let position: HashMap<Uuid, usize> = c
        .event_id
        .iter()
        .enumerate()
        .rev()
        .map(|(i, id)| (*id, i))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| (r.event_id, (r.id, position[&r.event_id])))
        .collect())
}

#[derive(QueryableByName)]
struct PairedCall {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pre_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    post_id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    post_at: Option<DateTime<Utc>>,
}

/// Records the batch's tool-call halves and fills `latency_ms` of every Post whose Pre is now known (stored in
/// this batch, an earlier one, or by another replica). Returns the latencies set, by event row id.
async fn pair_tools(
    conn: &mut AsyncPgConnection,
    halves: &ToolHalves,
) -> diesel::QueryResult<HashMap<i64, i64>> {
    if halves.calls.is_empty() {
        return Ok(HashMap::new());
    }
    let keys = &halves.calls;
    let rows: Vec<PairedCall> = diesel::sql_query(
        "INSERT INTO tool_calls (session_id, tool_use_id, pre_at, post_id, post_at) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::int8[], $5::timestamptz[]) \
         ON CONFLICT (session_id, tool_use_id) DO UPDATE SET \
           pre_at = coalesce(excluded.pre_at, tool_calls.pre_at), \
           post_id = coalesce(excluded.post_id, tool_calls.post_id), \
           post_at = coalesce(excluded.post_at, tool_calls.post_at) \
         RETURNING pre_at, post_id, post_at",
    )
    .bind::<Array<SqlUuid>, _>(keys.keys().map(|k| k.0).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(keys.keys().map(|k| k.1.as_str()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(keys.values().map(|h| h.pre_at).collect::<Vec<_>>())
    .bind::<Array<Nullable<BigInt>>, _>(keys.values().map(|h| h.post.map(|p| p.0)).collect::<Vec<_>>())
    .bind::<Array<Nullable<Timestamptz>>, _>(
        keys.values().map(|h| h.post.map(|p| p.1)).collect::<Vec<_>>(),
    )
    .load(conn)
    .await?;
    let latencies: HashMap<i64, i64> = rows
        .into_iter()
        .filter_map(|r| {
            let ms = (r.post_at? - r.pre_at?).num_milliseconds().max(0);
            Some((r.post_id?, ms))
        })
        .collect();
    if !latencies.is_empty() {
        let (ids, ms): (Vec<i64>, Vec<i32>) = latencies
            .iter()
            .map(|(id, ms)| (*id, (*ms).min(i32::MAX as i64) as i32))
            .unzip();
        diesel::sql_query(
            "UPDATE agent_events a SET latency_ms = u.ms \
             FROM unnest($1::int8[], $2::int4[]) AS u(id, ms) \
             WHERE a.id = u.id AND a.latency_ms IS NULL",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(ms)
        .execute(conn)
        .await?;
    }
    Ok(latencies)
}

/// Folds the batch's session deltas into `sessions` with one statement, in session id order.
async fn upsert_sessions(
    conn: &mut AsyncPgConnection,
    mut deltas: Vec<SessionDelta>,
) -> diesel::QueryResult<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    deltas.sort_unstable_by_key(|d| d.session_id);
    let col = |f: fn(&SessionDelta) -> i64| deltas.iter().map(f).collect::<Vec<_>>();
    let at =
        |f: fn(&SessionDelta) -> i64| deltas.iter().map(|d| from_micros(f(d))).collect::<Vec<_>>();
    diesel::sql_query(
        "INSERT INTO sessions (session_id, source_app, first_seen, last_seen, cwd, model, status, status_at, \
           event_count, tool_calls, tool_failures, error_count, input_tokens, output_tokens, cost_usd) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], \
                              $6::text[], $7::text[], $8::timestamptz[], $9::int8[], $10::int8[], $11::int8[], \
                              $12::int8[], $13::int8[], $14::int8[], $15::float8[]) \
         ON CONFLICT (session_id) DO UPDATE SET \
           first_seen = least(sessions.first_seen, excluded.first_seen), \
           last_seen = greatest(sessions.last_seen, excluded.last_seen), \
           cwd = coalesce(sessions.cwd, excluded.cwd), \
           model = coalesce(excluded.model, sessions.model), \
           status = CASE WHEN excluded.status_at IS NOT NULL \
                          AND (sessions.status_at IS NULL OR excluded.status_at >= sessions.status_at) \
                         THEN excluded.status ELSE sessions.status END, \
           status_at = greatest(sessions.status_at, excluded.status_at), \
           event_count = sessions.event_count + excluded.event_count, \
           tool_calls = sessions.tool_calls + excluded.tool_calls, \
           tool_failures = sessions.tool_failures + excluded.tool_failures, \
           error_count = sessions.error_count + excluded.error_count, \
           input_tokens = sessions.input_tokens + excluded.input_tokens, \
           output_tokens = sessions.output_tokens + excluded.output_tokens, \
           cost_usd = sessions.cost_usd + excluded.cost_usd",
    )
    .bind::<Array<SqlUuid>, _>(deltas.iter().map(|d| d.session_id).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(deltas.iter().map(|d| d.source_app.as_str()).collect::<Vec<_>>())
    .bind::<Array<Timestamptz>, _>(at(|d| d.first_seen))
    .bind::<Array<Timestamptz>, _>(at(|d| d.last_seen))
    .bind::<Array<Nullable<Text>>, _>(deltas.iter().map(|d| d.cwd.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Nullable<Text>>, _>(deltas.iter().map(|d| d.model.as_deref()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(
        deltas.iter().map(|d| d.status.map_or("active", |s| s.0)).collect::<Vec<_>>(),
    )
    .bind::<Array<Nullable<Timestamptz>>, _>(
        deltas.iter().map(|d| d.status.map(|s| from_micros(s.1))).collect::<Vec<_>>(),
    )
    .bind::<Array<BigInt>, _>(col(|d| d.event_count))
    .bind::<Array<BigInt>, _>(col(|d| d.tool_calls))
    .bind::<Array<BigInt>, _>(col(|d| d.tool_failures))
    .bind::<Array<BigInt>, _>(col(|d| d.error_count))
    .bind::<Array<BigInt>, _>(col(|d| d.input_tokens))
    .bind::<Array<BigInt>, _>(col(|d| d.output_tokens))
    .bind::<Array<Double>, _>(deltas.iter().map(|d| d.cost_usd).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = agent_events)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct PgEventRow {
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
    latency_ms: Option<i32>,
    created_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    payload: Value,
    model: Option<String>,
    mcp_server: Option<String>,
    repo: Option<String>,
    branch: Option<String>,
    commit_sha: Option<String>,
}

impl PgEventRow {
    fn into_raw(self) -> RawEvent {
        RawEvent {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type,
            source: self.source,
            session_id: self.session_id,
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
            latency_ms: self.latency_ms.map(i64::from),
            created_at: self.created_at,
            received_at: self.received_at,
            payload: self.payload,
            model: self.model,
            mcp_server: self.mcp_server,
            repo: self.repo,
            branch: self.branch,
            commit_sha: self.commit_sha,
        }
    }
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = chat_transcripts)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct PgTranscriptRow {
    agent_id: String,
    uuid: String,
    parent_uuid: Option<String>,
    role: String,
    content: Value,
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_read_tokens: Option<i64>,
    cache_creation_tokens: Option<i64>,
    created_at: DateTime<Utc>,
}

#[derive(diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = sessions)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct PgSessionRow {
    session_id: Uuid,
    source_app: String,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
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

impl PgSessionRow {
    fn into_summary(self) -> SessionSummary {
        SessionSummary {
            session_id: self.session_id,
            source_app: self.source_app,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
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
        }
    }
}
