//! The statements of a Postgres group commit, one over arrays (`unnest`) each whatever the batch size: events,
//! tool-call halves, session deltas; and the outbox, retention and transcripts.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{BoolExpressionMethods, ExpressionMethods, QueryDsl, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::schema::event_outbox;
use super::{PgStore, unavailable};
use crate::model::sessions::SessionDelta;
use crate::model::time::from_micros;
use crate::model::tool_calls::{ToolHalf, ToolHalves, latencies_to_set};
use crate::model::transcripts::TranscriptEntry;
use crate::model::{AgentEvent, SpanId};
use crate::store::StoreError;
use crate::store::outbox::OutboxEntry;
use crate::store::retention::{self, Retained};

impl PgStore {
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
        .map_err(crate::store::commit_error)
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
        for (table, key, time) in retention::RETAINED_TABLES {
            let sql = retention::retention_sql(table, key, time, "$1");
            loop {
                let n = diesel::sql_query(&sql)
                    .bind::<Timestamptz, _>(cutoff)
                    .execute(&mut conn)
                    .await
                    .map_err(unavailable)? as u64;
                out.add(table, n);
                if n < retention::RETENTION_CHUNK {
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// A batch of events as one array per column: the parameters of the insert.
pub(super) struct EventColumns {
    pub(super) event_id: Vec<Uuid>,
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
    pub(super) fn new(events: &[AgentEvent], received_at: DateTime<Utc>) -> Self {
        let col = |f: &dyn Fn(&AgentEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let opt =
            |f: &dyn Fn(&AgentEvent) -> Option<String>| events.iter().map(f).collect::<Vec<_>>();
        EventColumns {
            event_id: events.iter().map(|e| e.event_id).collect(),
            event_type: col(&|e| e.event_type.as_str().to_string()),
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
pub(super) async fn insert_events(
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
pub(super) async fn pair_tools(
    conn: &mut AsyncPgConnection,
    halves: &ToolHalves,
    own_latency: &std::collections::HashSet<i64>,
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
    // This batch's Posts that carry a duration of their own keep it; Posts of earlier batches are guarded by
    // `latency_ms IS NULL` below.
    let merged = rows.into_iter().map(|r| ToolHalf {
        pre_at: r.pre_at,
        post: r.post_id.zip(r.post_at),
    });
    let latencies = latencies_to_set(merged, |id| own_latency.contains(&id));
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
pub(super) async fn upsert_sessions(
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
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO sessions ({}) \
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], \
                                  $6::text[], $7::text[], $8::timestamptz[], $9::int8[], $10::int8[], $11::int8[], \
                                  $12::int8[], $13::int8[], $14::int8[], $15::float8[]) \
             ON CONFLICT (session_id) DO UPDATE SET {}",
            crate::store::SESSION_COLUMNS,
            crate::store::session_upsert_set(
                "least",
                "greatest",
                "excluded.status_at IS NOT NULL \
                 AND (sessions.status_at IS NULL OR excluded.status_at >= sessions.status_at)"
            )
        )
    });
    diesel::sql_query(SQL.as_str())
        .bind::<Array<SqlUuid>, _>(deltas.iter().map(|d| d.session_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            deltas
                .iter()
                .map(|d| d.source_app.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Timestamptz>, _>(at(|d| d.first_seen))
        .bind::<Array<Timestamptz>, _>(at(|d| d.last_seen))
        .bind::<Array<Nullable<Text>>, _>(
            deltas.iter().map(|d| d.cwd.as_deref()).collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Text>>, _>(
            deltas
                .iter()
                .map(|d| d.model.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Text>, _>(
            deltas
                .iter()
                .map(|d| d.status.map_or("active", |s| s.0))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<Nullable<Timestamptz>>, _>(
            deltas
                .iter()
                .map(|d| d.status.map(|s| from_micros(s.1)))
                .collect::<Vec<_>>(),
        )
        .bind::<Array<BigInt>, _>(col(|d| d.totals.event_count))
        .bind::<Array<BigInt>, _>(col(|d| d.totals.tool_calls))
        .bind::<Array<BigInt>, _>(col(|d| d.totals.tool_failures))
        .bind::<Array<BigInt>, _>(col(|d| d.totals.error_count))
        .bind::<Array<BigInt>, _>(col(|d| d.totals.input_tokens))
        .bind::<Array<BigInt>, _>(col(|d| d.totals.output_tokens))
        .bind::<Array<Double>, _>(deltas.iter().map(|d| d.totals.cost_usd).collect::<Vec<_>>())
        .execute(conn)
        .await
        .map(|_| ())
}
