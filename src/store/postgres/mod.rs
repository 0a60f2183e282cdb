//! The production store: Postgres through diesel-async (pure-Rust tokio-postgres, no libpq) with a bb8 pool.
//!
//! Every write of a group commit is one statement over arrays (`unnest`), whatever the batch size: events,
//! tool-call halves, session deltas and the outbox row, in one transaction. Rows that other replicas may touch at
//! the same time (sessions, tool calls) are written in key order, so two replicas never wait on each other in a
//! cycle; a deadlock or serialization failure is retried a few times before the batch is answered 503.

mod notifications;
mod queries;
mod rows;
pub(super) mod schema;
mod states;
mod writes;

use std::time::Duration;

use chrono::Utc;
use diesel::ExpressionMethods;
use diesel_async::SimpleAsyncConnection;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{CommitOutcome, StoreError};
use crate::model::AgentEvent;
use crate::model::sessions::session_deltas;
use crate::model::tool_calls::ToolHalves;
use schema::event_outbox;
use writes::{EventColumns, insert_events, pair_tools, upsert_sessions};

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
        let (ids, pairs, outbox_seq, states) = loop {
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
                    let own_latency = stored
                        .iter()
                        .filter(|(_, ev)| ev.latency_ms.is_some())
                        .map(|(id, _)| *id)
                        .collect();
                    let pairs = pair_tools(conn, &halves, &own_latency).await?;
                    upsert_sessions(conn, session_deltas(inserted)).await?;
                    let states = states::advance_states(conn, &stored).await?;
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
                    Ok((ids, pairs, seq, states))
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
        let mut ids = ids;
        let row_ids: Vec<Option<i64>> = columns
            .event_id
            .iter()
            .map(|key| ids.remove(key).map(|(id, _)| id))
            .collect();
        Ok(CommitOutcome::assemble(
            events,
            row_ids,
            &pairs,
            received_at,
            outbox_seq,
            states,
        ))
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
