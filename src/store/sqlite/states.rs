//! Session states on SQLite: the fold a group commit applies to its sessions' rows, the periodic sweep of timed
//! transitions, and the counts `/metrics` shows.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;
use uuid::Uuid;

use super::SqliteStore;
use super::rows::SessionRow;
use super::schema::sessions;
use crate::model::AgentEvent;
use crate::model::session_state::{
    SessionState, SessionStateChanged, StateChange, StateRow, fold_rows, sessions_touched,
};
use crate::model::time::micros;
use crate::store::StoreError;
use crate::store::states::{StateCounts, SweepPolicy};

/// Session ids per `IN (…)` list.
const ID_CHUNK: usize = 500;
/// Rows per state update (11 parameters each, well under SQLite's limit of 32,766).
const UPDATE_CHUNK: usize = 500;

/// Writes the folded state of `ids` with one statement: Diesel prepares an UPDATE anew each time it runs, so one
/// per commit rather than one per session.
fn write_rows(
    conn: &mut SqliteConnection,
    ids: &[Uuid],
    rows: &HashMap<Uuid, StateRow>,
) -> QueryResult<()> {
    use diesel::sql_types::{Bool, Nullable};
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; ids.len()].join(", ");
    let sql = format!(
        "UPDATE sessions SET state = u.column2, state_since = u.column3, state_at = u.column4, \
           waiting_on = u.column5, state_agent = u.column6, state_detail = u.column7, current_tool = u.column8, \
           subagents = u.column9, stop_pending = u.column10, hooked = u.column11 \
         FROM (VALUES {values}) AS u WHERE sessions.session_id = u.column1"
    );
    let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
    for id in ids {
        let r = &rows[id];
        query = query
            .bind::<Text, _>(id.to_string())
            .bind::<Text, _>(r.state.as_str())
            .bind::<Nullable<BigInt>, _>(r.since)
            .bind::<Nullable<BigInt>, _>(r.at)
            .bind::<Nullable<Text>, _>(r.waiting_on.clone())
            .bind::<Nullable<Text>, _>(r.agent.clone())
            .bind::<Nullable<Text>, _>(r.detail.clone())
            .bind::<Nullable<Text>, _>(r.current_tool.clone())
            .bind::<BigInt, _>(r.subagents)
            .bind::<Bool, _>(r.stop_pending)
            .bind::<Bool, _>(r.hooked);
    }
    query.execute(conn).map(|_| ())
}

type StateColumns = (
    String,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    bool,
    bool,
);

fn to_row(c: StateColumns) -> Result<(Uuid, StateRow), diesel::result::Error> {
    let bad = |what: &str, v: &str| {
        diesel::result::Error::DeserializationError(format!("bad {what} {v:?} in sessions").into())
    };
    let id = c.0.parse().map_err(|_| bad("session_id", &c.0))?;
    Ok((
        id,
        StateRow {
            state: SessionState::parse(&c.1).ok_or_else(|| bad("state", &c.1))?,
            since: c.2,
            at: c.3,
            waiting_on: c.4,
            agent: c.5,
            detail: c.6,
            current_tool: c.7,
            subagents: c.8,
            stop_pending: c.9,
            hooked: c.10,
        },
    ))
}

/// Advances the state of the sessions the batch's stored events touch, in the commit's transaction; returns the
/// sessions whose state changed, as stored after the change.
pub(super) fn advance_states(
    conn: &mut SqliteConnection,
    stored: &[(i64, &AgentEvent)],
) -> QueryResult<Vec<SessionStateChanged>> {
    use sessions::dsl as s;
    let touched = sessions_touched(stored.iter().map(|(_, ev)| *ev));
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = touched.keys().map(Uuid::to_string).collect();
    let mut rows = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let loaded: Vec<StateColumns> = s::sessions
            .filter(s::session_id.eq_any(chunk))
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
            .load(conn)?;
        for c in loaded {
            let (id, row) = to_row(c)?;
            rows.insert(id, row);
        }
    }
    let (changed_rows, changes) = fold_rows(&mut rows, touched);
    for chunk in changed_rows.chunks(UPDATE_CHUNK) {
        write_rows(conn, chunk, &rows)?;
    }
    with_summaries(conn, changes)
}

fn with_summaries(
    conn: &mut SqliteConnection,
    changes: Vec<StateChange>,
) -> QueryResult<Vec<SessionStateChanged>> {
    use sessions::dsl as s;
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = changes.iter().map(|c| c.session_id.to_string()).collect();
    let mut summaries = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let rows: Vec<SessionRow> = s::sessions
            .filter(s::session_id.eq_any(chunk))
            .select(SessionRow::as_select())
            .load(conn)?;
        for row in rows {
            summaries.push(
                row.into_summary().map_err(|e| {
                    diesel::result::Error::DeserializationError(e.to_string().into())
                })?,
            );
        }
    }
    Ok(SessionStateChanged::assemble(changes, summaries))
}

#[derive(QueryableByName)]
struct Timed {
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    state_since: Option<i64>,
    #[diesel(sql_type = BigInt)]
    new_since: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    oldest: Option<i64>,
}

/// Sessions due to be abandoned (`?1` the delay, `?2` the cutoff), and what abandons one.
const ABANDON_DUE: &str = "SELECT session_id, state, state_since, last_seen + ? AS new_since FROM sessions \
     WHERE state NOT IN ('ended', 'abandoned') AND last_seen < ?";
const ABANDON: &str = "UPDATE sessions SET state = 'abandoned', state_since = ?1, state_at = ?1, \
     waiting_on = NULL, state_detail = NULL, current_tool = NULL, stop_pending = FALSE WHERE session_id = ?2";
/// Telemetry-only sessions whose work went quiet, and what makes one idle.
const IDLE_DUE: &str = "SELECT session_id, state, state_since, state_at + ? AS new_since FROM sessions \
     WHERE state = 'working' AND NOT hooked AND state_at < ?";
const IDLE: &str = "UPDATE sessions SET state = 'idle', state_since = ?1, state_at = ?1, waiting_on = NULL, \
     state_detail = NULL, current_tool = NULL, stop_pending = FALSE WHERE session_id = ?2";
const COUNTS: &str = "SELECT state, count(*) AS n, \
     min(CASE WHEN state IN ('waiting_for_permission', 'waiting_for_input') THEN state_since END) AS oldest \
     FROM sessions GROUP BY state";

impl SqliteStore {
    /// The timed transitions due at `now`, in one transaction on the writer.
    pub fn sweep_states(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        policy: SweepPolicy,
    ) -> Result<Vec<SessionStateChanged>, StoreError> {
        let now = micros(now);
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.write(&mut conn, |conn| {
            let mut changes = Vec::new();
            for (due, update, after, state) in [
                (
                    ABANDON_DUE,
                    ABANDON,
                    policy.abandon_after,
                    SessionState::Abandoned,
                ),
                (IDLE_DUE, IDLE, policy.idle_after, SessionState::Idle),
            ] {
                let after = after.as_micros() as i64;
                let due: Vec<Timed> = diesel::sql_query(due)
                    .bind::<BigInt, _>(after)
                    .bind::<BigInt, _>(now - after)
                    .load(conn)?;
                for d in due {
                    diesel::sql_query(update)
                        .bind::<BigInt, _>(d.new_since)
                        .bind::<Text, _>(&d.session_id)
                        .execute(conn)?;
                    if let Ok(session_id) = d.session_id.parse() {
                        changes.push(StateChange {
                            session_id,
                            previous: SessionState::parse(&d.state).unwrap_or_default(),
                            previous_since: d.state_since,
                            state,
                            since: d.new_since,
                        });
                    }
                }
            }
            with_summaries(conn, changes)
        })
    }

    pub fn state_counts(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<StateCounts, StoreError> {
        let mut conn = self.reader()?;
        let rows: Vec<Count> = diesel::sql_query(COUNTS)
            .load(&mut conn)
            .map_err(super::unavailable)?;
        Ok(StateCounts::from_rows(
            rows.into_iter().map(|r| (r.state, r.n, r.oldest)),
            micros(now),
        ))
    }
}
