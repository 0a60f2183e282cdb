//! The write side of the SQLite store beyond the group commit itself: the statements a commit runs (events,
//! tool-call halves, session deltas), the outbox, retention and transcripts, all on the one writer.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use diesel::sqlite::SqliteConnection;

use super::rows::EventRowRef;
use super::schema;
use super::{SqliteStore, unavailable};
use crate::model::AgentEvent;
use crate::model::sessions::SessionDelta;
use crate::model::time::{from_micros, micros};
use crate::model::tool_calls::{ToolHalf, ToolHalves, latencies_to_set};
use crate::model::transcripts::TranscriptEntry;
use crate::store::StoreError;
use crate::store::outbox::OutboxEntry;
use crate::store::query::corrupt;
use crate::store::retention::{self, Retained};

impl SqliteStore {
    pub fn outbox_pending(
        &self,
        owner: &str,
        orphaned_after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        use schema::event_outbox::dsl as o;
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
        use schema::event_outbox::dsl as o;
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
        use schema::event_outbox::dsl as o;
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
        for (table, key, time) in retention::RETAINED_TABLES {
            let sql = retention::retention_sql(table, key, time, "?");
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
                if n < retention::RETENTION_CHUNK {
                    break;
                }
            }
        }
        Ok(out)
    }

    pub fn add_transcript(&self, entries: &[TranscriptEntry]) -> Result<usize, StoreError> {
        use schema::chat_transcripts::dsl as c;
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
}

/// Rows per multi-row INSERT (23 parameters each, under SQLite's limit of 32,766).
pub(super) const INSERT_CHUNK: usize = 1000;

#[derive(QueryableByName)]
struct InsertedId {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
}

/// Inserts rows with one statement, skipping event ids already stored; returns `(event_id, id)` of those inserted.
/// One statement per batch, not one per row: SQLite then journals each touched page once per batch.
pub(super) fn insert_events(
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

/// Rows per tool-call statement (5 parameters each, well under SQLite's limit of 32,766).
const PAIR_CHUNK: usize = 1000;

#[derive(QueryableByName)]
struct MergedHalf {
    #[diesel(sql_type = Nullable<BigInt>)]
    pre_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    post_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    post_at: Option<i64>,
}

#[derive(QueryableByName)]
struct SetLatency {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    latency_ms: i64,
}

/// Records the batch's tool-call halves in `tool_calls` and fills `latency_ms` of every Post whose Pre is now
/// known (stored in this batch or an earlier one), by the one pairing rule of `model::tool_calls`. Returns the
/// latencies set for events of this batch, by row id. One statement per chunk for each step (Diesel prepares an
/// upsert or an UPDATE anew every time, so not one per call).
pub(super) fn pair_tools(
    conn: &mut SqliteConnection,
    stored: &[(i64, &AgentEvent)],
) -> QueryResult<HashMap<i64, i64>> {
    let halves = ToolHalves::collect(stored.iter().copied());
    let calls: Vec<_> = halves.calls.iter().collect();
    let mut merged = Vec::with_capacity(calls.len());
    for chunk in calls.chunks(PAIR_CHUNK) {
        // The stored half and this batch's, merged in the row (one key lookup each).
        let values = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO tool_calls (session_id, tool_use_id, pre_at, post_id, post_at) VALUES {values} \
             ON CONFLICT (session_id, tool_use_id) DO UPDATE SET \
               pre_at = coalesce(excluded.pre_at, tool_calls.pre_at), \
               post_id = coalesce(excluded.post_id, tool_calls.post_id), \
               post_at = coalesce(excluded.post_at, tool_calls.post_at) \
             RETURNING pre_at, post_id, post_at"
        );
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        for ((session, tool_use_id), half) in chunk {
            query = query
                .bind::<Text, _>(session.to_string())
                .bind::<Text, _>(tool_use_id.as_str())
                .bind::<Nullable<BigInt>, _>(half.pre_at.map(micros))
                .bind::<Nullable<BigInt>, _>(half.post.map(|p| p.0))
                .bind::<Nullable<BigInt>, _>(half.post.map(|p| micros(p.1)));
        }
        for m in query.load::<MergedHalf>(conn)? {
            merged.push(ToolHalf {
                pre_at: m.pre_at.map(from_micros),
                post: m.post_id.zip(m.post_at.map(from_micros)),
            });
        }
    }
    let own = |id: i64| {
        stored
            .iter()
            .any(|(i, ev)| *i == id && ev.latency_ms.is_some())
    };
    let latencies: Vec<(i64, i64)> = latencies_to_set(merged, own).into_iter().collect();
    let mut set = HashMap::new();
    for chunk in latencies.chunks(PAIR_CHUNK) {
        let values = vec!["(?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "UPDATE agent_events SET latency_ms = u.column2 FROM (VALUES {values}) AS u \
             WHERE agent_events.id = u.column1 AND agent_events.latency_ms IS NULL \
             RETURNING agent_events.id, agent_events.latency_ms"
        );
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
        for (id, ms) in chunk {
            query = query.bind::<BigInt, _>(*id).bind::<BigInt, _>(*ms);
        }
        for s in query.load::<SetLatency>(conn)? {
            set.insert(s.id, s.latency_ms);
        }
    }
    Ok(set)
}

/// Rows per session upsert statement (15 parameters each, well under SQLite's limit of 32,766).
const UPSERT_CHUNK: usize = 500;

/// Folds a batch's session deltas into `sessions` with one statement per chunk: parsed once per commit, not once
/// per session.
pub(super) fn upsert_sessions(
    conn: &mut SqliteConnection,
    deltas: &[SessionDelta],
) -> QueryResult<()> {
    for chunk in deltas.chunks(UPSERT_CHUNK) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO sessions ({}) VALUES {rows} ON CONFLICT (session_id) DO UPDATE SET {}",
            crate::store::SESSION_COLUMNS,
            crate::store::session_upsert_set(
                "min",
                "max",
                "excluded.status_at >= sessions.status_at"
            )
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
                .bind::<BigInt, _>(d.totals.event_count)
                .bind::<BigInt, _>(d.totals.tool_calls)
                .bind::<BigInt, _>(d.totals.tool_failures)
                .bind::<BigInt, _>(d.totals.error_count)
                .bind::<BigInt, _>(d.totals.input_tokens)
                .bind::<BigInt, _>(d.totals.output_tokens)
                .bind::<Double, _>(d.totals.cost_usd);
        }
        query.execute(conn)?;
    }
    Ok(())
}
