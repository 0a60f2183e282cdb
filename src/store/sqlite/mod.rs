//! The embedded store: SQLite in WAL mode through Diesel.
//!
//! One writer connection takes every group commit (SQLite allows one writer at a time anyway); a small pool of
//! reader connections serves queries concurrently with it. All calls run on tokio's blocking pool.

mod notifications;
mod queries;
mod rows;
pub(super) mod schema;
mod states;
mod volume;
mod writes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{CommitOutcome, SqliteSync, StoreError};
use crate::model::AgentEvent;
use crate::model::sessions::session_deltas;
use crate::model::time::micros;
use rows::EventRowRef;
use volume::FullVolume;
use writes::{INSERT_CHUNK, insert_events, pair_tools, upsert_sessions};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const READERS: u32 = 4;

/// SQLite's message for `SQLITE_FULL`: a write found no room on the volume.
const SQLITE_FULL: &str = "database or disk is full";
/// SQLite's message for `SQLITE_IOERR` and its extended codes (a full volume can also end up here, when the WAL
/// index must grow).
const SQLITE_IOERR: &str = "disk I/O error";

#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    sync: SqliteSync,
    writer: Arc<Mutex<SqliteConnection>>,
    readers: Pool<ConnectionManager<SqliteConnection>>,
    full: Arc<FullVolume>,
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
            let states = states::advance_states(conn, &stored)?;
            let mut outbox_seq = None;
            if let Some(owner) = outbox_owner.filter(|_| !stored.is_empty()) {
                use schema::event_outbox::dsl as o;
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
            Ok((ids, latencies, outbox_seq, states))
        });
        let (ids, latencies, outbox_seq, states) = match result {
            Ok(done) => done,
            Err(e) => return Err((e, events)),
        };
        Ok(CommitOutcome::assemble(
            events,
            ids,
            &latencies,
            received_at,
            outbox_seq,
            states,
        ))
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

/// WAL pages after which a commit checkpoints the WAL into the database (SQLite's default is 1,000). A commit
/// rewrites the pages it touched (index leaves mostly) into the WAL again and again; the checkpoint copies each
/// page once however often it was rewritten, so a longer interval copies much less per event: 8,000 pages
/// (32 MiB of WAL at most between checkpoints) took batched span ingest up by ~20 % and single events by ~25 %.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 8000;

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
             PRAGMA cache_size = -32000; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
        ))
        .map_err(unavailable)?;
    Ok(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::BigInt;
    use uuid::Uuid;

    use crate::model::AgentEvent;
    use crate::model::hook::{HookContext, normalize_hook};
    use crate::store::EventQuery;

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
