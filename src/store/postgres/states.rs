//! Session states on Postgres: the fold a group commit applies to its sessions' rows (locked by the session
//! upsert before it, so that concurrent replicas fold one after the other), the periodic sweep of timed
//! transitions (`FOR UPDATE SKIP LOCKED`: each due session changes once whichever replicas sweep), and the counts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::{ExpressionMethods, QueryDsl, QueryableByName, SelectableHelper};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::rows::SessionRow;
use super::schema::sessions;
use super::{PgStore, unavailable};
use crate::model::AgentEvent;
use crate::model::session_state::{
    SessionState, SessionStateChanged, StateChange, StateRow, fold_rows, sessions_touched,
};
use crate::model::time::{from_micros, micros};
use crate::store::StoreError;
use crate::store::states::{StateCounts, SweepPolicy};

type StateColumns = (
    Uuid,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    bool,
    bool,
);

/// Advances the state of the sessions the batch's stored events touch, in the commit's transaction; returns the
/// sessions whose state changed, as stored after the change.
pub(super) async fn advance_states(
    conn: &mut AsyncPgConnection,
    stored: &[(i64, &AgentEvent)],
) -> diesel::QueryResult<Vec<SessionStateChanged>> {
    use sessions::dsl as s;
    let touched = sessions_touched(stored.iter().map(|(_, ev)| *ev));
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = touched.keys().copied().collect();
    let loaded: Vec<StateColumns> = s::sessions
        .filter(s::session_id.eq_any(&ids))
        .select((
            s::session_id,
            s::state,
            s::state_since,
            s::state_at,
            s::waiting_on,
            s::state_agent,
            s::state_detail,
            s::current_tool,
            s::subagents,
            s::stop_pending,
            s::hooked,
        ))
        .load(conn)
        .await?;
    let mut rows = HashMap::with_capacity(loaded.len());
    for c in loaded {
        let state = SessionState::parse(&c.1).ok_or_else(|| {
            diesel::result::Error::DeserializationError(
                format!("bad state {:?} in sessions", c.1).into(),
            )
        })?;
        rows.insert(
            c.0,
            StateRow {
                state,
                since: c.2.map(micros),
                at: c.3.map(micros),
                waiting_on: c.4,
                agent: c.5,
                detail: c.6,
                current_tool: c.7,
                subagents: c.8,
                stop_pending: c.9,
                hooked: c.10,
            },
        );
    }
    let (changed_rows, changes) = fold_rows(&mut rows, touched);
    if !changed_rows.is_empty() {
        let r: Vec<&StateRow> = changed_rows.iter().map(|id| &rows[id]).collect();
        let text = |f: fn(&StateRow) -> Option<&str>| r.iter().map(|r| f(r)).collect::<Vec<_>>();
        let time = |f: fn(&StateRow) -> Option<i64>| {
            r.iter().map(|r| f(r).map(from_micros)).collect::<Vec<_>>()
        };
        diesel::sql_query(
            "UPDATE sessions s SET state = u.state, state_since = u.state_since, state_at = u.state_at, \
               waiting_on = u.waiting_on, state_agent = u.state_agent, state_detail = u.state_detail, \
               current_tool = u.current_tool, subagents = u.subagents, stop_pending = u.stop_pending, \
               hooked = u.hooked \
             FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::text[], $6::text[], \
                         $7::text[], $8::text[], $9::int8[], $10::bool[], $11::bool[]) \
                  AS u(session_id, state, state_since, state_at, waiting_on, state_agent, state_detail, \
                       current_tool, subagents, stop_pending, hooked) \
             WHERE s.session_id = u.session_id",
        )
        .bind::<Array<SqlUuid>, _>(&changed_rows)
        .bind::<Array<Text>, _>(r.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
        .bind::<Array<Nullable<Timestamptz>>, _>(time(|r| r.since))
        .bind::<Array<Nullable<Timestamptz>>, _>(time(|r| r.at))
        .bind::<Array<Nullable<Text>>, _>(text(|r| r.waiting_on.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(text(|r| r.agent.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(text(|r| r.detail.as_deref()))
        .bind::<Array<Nullable<Text>>, _>(text(|r| r.current_tool.as_deref()))
        .bind::<Array<BigInt>, _>(r.iter().map(|r| r.subagents).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(r.iter().map(|r| r.stop_pending).collect::<Vec<_>>())
        .bind::<Array<Bool>, _>(r.iter().map(|r| r.hooked).collect::<Vec<_>>())
        .execute(conn)
        .await?;
    }
    with_summaries(conn, changes).await
}

async fn with_summaries(
    conn: &mut AsyncPgConnection,
    changes: Vec<StateChange>,
) -> diesel::QueryResult<Vec<SessionStateChanged>> {
    use sessions::dsl as s;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = changes.iter().map(|c| c.session_id).collect();
    let rows: Vec<SessionRow> = s::sessions
        .filter(s::session_id.eq_any(&ids))
        .select(SessionRow::as_select())
        .load(conn)
        .await?;
    let summaries = rows
        .into_iter()
        .map(|row| {
            row.into_summary()
                .map_err(|e| diesel::result::Error::DeserializationError(e.to_string().into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SessionStateChanged::assemble(changes, summaries))
}

/// The sessions due for a timed transition (`$1` the delay in seconds, `$2` the cutoff), locked so that two
/// sweeps never take the same one, moved to `{state}` as of the due time.
fn sweep_sql(state: &str, due: &str, from: &str) -> String {
    format!(
        "WITH due AS ( \
           SELECT session_id, state, state_since, {from} + make_interval(secs => $1) AS new_since \
           FROM sessions WHERE {due} AND {from} < $2 FOR UPDATE SKIP LOCKED) \
         UPDATE sessions s SET state = '{state}', state_since = due.new_since, \
           state_at = greatest(s.state_at, due.new_since), waiting_on = NULL, state_detail = NULL, \
           current_tool = NULL, stop_pending = FALSE \
         FROM due WHERE s.session_id = due.session_id \
         RETURNING s.session_id, due.state, due.state_since, due.new_since"
    )
}

#[derive(QueryableByName)]
struct Swept {
    #[diesel(sql_type = SqlUuid)]
    session_id: Uuid,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    state_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    new_since: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<DateTime<Utc>>,
}

impl PgStore {
    pub async fn sweep_states(
        &self,
        now: DateTime<Utc>,
        policy: SweepPolicy,
    ) -> Result<Vec<SessionStateChanged>, StoreError> {
        static ABANDON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            sweep_sql(
                "abandoned",
                "state NOT IN ('ended', 'abandoned')",
                "last_seen",
            )
        });
        static IDLE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            sweep_sql("idle", "state = 'working' AND NOT hooked", "state_at")
        });
        let mut conn = self.conn().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let mut changes = Vec::new();
            for (sql, after, state) in [
                (&*ABANDON, policy.abandon_after, SessionState::Abandoned),
                (&*IDLE, policy.idle_after, SessionState::Idle),
            ] {
                let cutoff =
                    now - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
                let swept: Vec<Swept> = diesel::sql_query(sql)
                    .bind::<Double, _>(after.as_secs_f64())
                    .bind::<Timestamptz, _>(cutoff)
                    .load(conn)
                    .await?;
                changes.extend(swept.into_iter().map(|s| StateChange {
                    session_id: s.session_id,
                    previous: SessionState::parse(&s.state).unwrap_or_default(),
                    previous_since: s.state_since.map(micros),
                    state,
                    since: micros(s.new_since),
                }));
            }
            with_summaries(conn, changes).await
        })
        .await
        .map_err(unavailable)
    }

    pub async fn state_counts(&self, now: DateTime<Utc>) -> Result<StateCounts, StoreError> {
        let mut conn = self.conn().await?;
        let rows: Vec<Count> = diesel::sql_query(
            "SELECT state::text AS state, count(*) AS n, \
               min(CASE WHEN state IN ('waiting_for_permission', 'waiting_for_input') THEN state_since END) \
                 AS oldest \
             FROM sessions GROUP BY state",
        )
        .load(&mut conn)
        .await
        .map_err(unavailable)?;
        Ok(StateCounts::from_rows(
            rows.into_iter()
                .map(|r| (r.state, r.n, r.oldest.map(micros))),
            micros(now),
        ))
    }
}
