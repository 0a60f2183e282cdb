//! The read side of the SQLite store: events, sessions, transcripts, on the reader pool.

use std::collections::HashMap;

use diesel::prelude::*;
use uuid::Uuid;

use super::rows::{EventRow, SessionRow, TranscriptRow};
use super::schema::{agent_events, chat_transcripts, sessions};
use super::writes::INSERT_CHUNK;
use super::{SqliteStore, unavailable};
use crate::model::StoredEvent;
use crate::model::sessions::SessionSummary;
use crate::model::time::{from_micros, micros};
use crate::model::transcripts::TranscriptEntry;
use crate::store::query::{Cursor, EventPage, EventQuery, Order, SessionQuery, corrupt};
use crate::store::{DEFAULT_LIMIT, MAX_LIMIT, StoreError};

impl SqliteStore {
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
        EventPage::from_rows(rows.into_iter().map(EventRow::into_event), limit as usize)
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
            .map(EventRow::into_event)
            .collect()
    }

    pub fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionSummary>, StoreError> {
        let mut conn = self.reader()?;
        let rows: Vec<SessionRow> = session_query!(q, time = micros)
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

    pub fn transcript(
        &self,
        session: Uuid,
        agent: Option<&str>,
    ) -> Result<Vec<TranscriptEntry>, StoreError> {
        use chat_transcripts::dsl as c;
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
}
