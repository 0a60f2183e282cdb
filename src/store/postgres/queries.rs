//! The read side of the Postgres store: events, sessions, transcripts, on the pool.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{
    BoolExpressionMethods, ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper,
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::rows::{EventRow, PgTranscriptRow, SessionRow};
use super::schema::{agent_events, chat_transcripts, sessions};
use super::{PgStore, unavailable};
use crate::model::StoredEvent;
use crate::model::sessions::SessionSummary;
use crate::model::time::from_micros;
use crate::model::transcripts::TranscriptEntry;
use crate::store::query::{Cursor, EventPage, EventQuery, Order, SessionQuery};
use crate::store::{DEFAULT_LIMIT, MAX_LIMIT, StoreError};

impl PgStore {
    pub async fn events(&self, q: &EventQuery) -> Result<EventPage, StoreError> {
        use agent_events::dsl as e;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64;
        let mut query = e::agent_events.select(EventRow::as_select()).into_boxed();
        filter_events!(
            query,
            q,
            session = |s: Uuid| s,
            time = |t: DateTime<Utc>| t,
            micros = from_micros
        );
        let mut conn = self.conn().await?;
        let rows: Vec<EventRow> = query
            .limit(limit + 1)
            .load(&mut conn)
            .await
            .map_err(unavailable)?;
        EventPage::from_rows(rows.into_iter().map(EventRow::into_event), limit as usize)
    }

    /// Events by id, in the order of `ids` (ids no longer stored are left out).
    pub async fn events_by_id(&self, ids: &[i64]) -> Result<Vec<StoredEvent>, StoreError> {
        use agent_events::dsl as e;
        let mut conn = self.conn().await?;
        let rows: Vec<EventRow> = e::agent_events
            .filter(e::id.eq_any(ids))
            .select(EventRow::as_select())
            .load(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut by_id: HashMap<i64, EventRow> = rows.into_iter().map(|r| (r.id, r)).collect();
        ids.iter()
            .filter_map(|id| by_id.remove(id))
            .map(EventRow::into_event)
            .collect()
    }

    pub async fn sessions(&self, q: &SessionQuery) -> Result<Vec<SessionSummary>, StoreError> {
        let query = session_query!(q, time = |t: DateTime<Utc>| t);
        let mut conn = self.conn().await?;
        let rows: Vec<SessionRow> = query.load(&mut conn).await.map_err(unavailable)?;
        rows.into_iter().map(SessionRow::into_summary).collect()
    }

    pub async fn session(&self, id: Uuid) -> Result<Option<SessionSummary>, StoreError> {
        use sessions::dsl as s;
        let mut conn = self.conn().await?;
        let row: Option<SessionRow> = s::sessions
            .filter(s::session_id.eq(id))
            .select(SessionRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(unavailable)?;
        row.map(SessionRow::into_summary).transpose()
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
}
