//! What the query API asks of the store and what it gets back: event filters with cursor pagination, session
//! filters, and the row both back-ends read before it becomes an event again.

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

/// The `sessions` query of a `SessionQuery` for either back-end, most recently active first: `$time` turns a
/// `DateTime<Utc>` into the back-end's column value. The back-end's `sessions` table and `SessionRow` must be in
/// scope.
macro_rules! session_query {
    ($q:expr, time = $time:expr) => {{
        use sessions::dsl as s;
        let q: &SessionQuery = $q;
        let mut query = s::sessions.select(SessionRow::as_select()).into_boxed();
        if let Some(v) = &q.source_app {
            query = query.filter(s::source_app.eq(v.clone()));
        }
        if let Some(v) = &q.status {
            query = query.filter(s::status.eq(v.clone()));
        }
        let states = q.states()?;
        if !states.is_empty() {
            query = query
                .filter(s::state.eq_any(states.iter().map(|s| s.as_str()).collect::<Vec<_>>()));
        }
        if let Some(t) = q.since {
            query = query.filter(s::last_seen.ge($time(t)));
        }
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64;
        query.order(s::last_seen.desc()).limit(limit)
    }};
}

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StoreError;
use crate::model::StoredEvent;
use crate::model::session_state::SessionState;
use crate::model::time::micros;

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
    pub(super) fn from_rows(
        rows: impl Iterator<Item = Result<StoredEvent, StoreError>>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let mut events = Vec::with_capacity(limit);
        let mut more = false;
        for row in rows {
            if events.len() == limit {
                more = true;
                break;
            }
            events.push(row?);
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

pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Internal(format!("stored {what} {value:?} does not parse"))
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
    /// Comma-separated session states (`?state=waiting_for_permission,waiting_for_input`).
    pub state: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<u32>,
}

impl SessionQuery {
    /// The states asked for; an unknown one is a bad query that names it.
    pub fn states(&self) -> Result<Vec<SessionState>, StoreError> {
        self.state
            .as_deref()
            .map_or(Ok(Vec::new()), SessionState::parse_list)
            .map_err(StoreError::BadQuery)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
