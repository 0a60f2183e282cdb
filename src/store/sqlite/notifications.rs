//! Notifications on SQLite (see `store::notifications`): queued with the episode marked notified in one
//! transaction, leased with one statement.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Text};

use super::SqliteStore;
use super::rows::SessionRow;
use super::schema::{notifications, sessions};
use crate::model::notification::{NotificationKind, body};
use crate::model::time::micros;
use crate::store::StoreError;
use crate::store::notifications::{Attempt, NotifyRules, PendingNotification};

#[derive(QueryableByName)]
struct Leased {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

impl SqliteStore {
    pub fn queue_notifications(
        &self,
        now: DateTime<Utc>,
        rules: &NotifyRules,
    ) -> Result<usize, StoreError> {
        use notifications::dsl as n;
        use sessions::dsl as s;
        if rules.targets.is_empty() {
            return Ok(0);
        }
        let waited = micros(now) - rules.after.as_micros() as i64;
        let fresh = waited - NotifyRules::FRESH_FOR.as_micros() as i64;
        let due = diesel::dsl::sql::<Bool>(rules.states_sql())
            .sql(" AND (notified_since IS NULL OR notified_since <> state_since) AND state_since >= ")
            .bind::<BigInt, _>(fresh)
            .sql(" AND (state NOT IN ('waiting_for_permission', 'waiting_for_input') OR state_since <= ")
            .bind::<BigInt, _>(waited)
            .sql(")");
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.write(&mut conn, |conn| {
            let rows: Vec<SessionRow> = s::sessions
                .filter(due)
                .select(SessionRow::as_select())
                .limit(1000)
                .load(conn)?;
            let mut queued = 0;
            for row in rows {
                let summary = row.into_summary().map_err(|e| {
                    diesel::result::Error::DeserializationError(e.to_string().into())
                })?;
                let Some(kind) = NotificationKind::of(summary.state) else {
                    continue;
                };
                let episode = micros(summary.state_since);
                let text = body(kind, &summary, now).to_string();
                let id = summary.session_id.to_string();
                for target in &rules.targets {
                    queued += diesel::insert_into(n::notifications)
                        .values((
                            n::session_id.eq(&id),
                            n::kind.eq(kind.as_str()),
                            n::episode.eq(episode),
                            n::target.eq(target),
                            n::body.eq(&text),
                            n::created_at.eq(micros(now)),
                            n::next_attempt_at.eq(micros(now)),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)?;
                }
                diesel::update(
                    s::sessions
                        .filter(s::session_id.eq(&id))
                        .filter(s::state_since.eq(episode)),
                )
                .set(s::notified_since.eq(episode))
                .execute(conn)?;
            }
            Ok(queued)
        })
    }

    pub fn lease_notifications(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
        targets: &[String],
    ) -> Result<Vec<PendingNotification>, StoreError> {
        let now = micros(now);
        let targets = serde_json::to_string(targets).unwrap_or_else(|_| "[]".into());
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let leased: Vec<Leased> = self.write(&mut conn, |conn| {
            diesel::sql_query(
                "UPDATE notifications SET lease_until = ?1 WHERE id IN ( \
                   SELECT id FROM notifications WHERE sent_at IS NULL AND next_attempt_at <= ?2 \
                   AND (lease_until IS NULL OR lease_until < ?2) \
                   AND target IN (SELECT value FROM json_each(?4)) ORDER BY id LIMIT ?3) \
                 RETURNING id, session_id, kind, target, body, attempts",
            )
            .bind::<BigInt, _>(now + lease.as_micros() as i64)
            .bind::<BigInt, _>(now)
            .bind::<BigInt, _>(limit)
            .bind::<Text, _>(&targets)
            .load(conn)
        })?;
        Ok(leased
            .into_iter()
            .filter_map(|l| {
                Some(PendingNotification {
                    id: l.id,
                    session_id: l.session_id.parse().ok()?,
                    kind: l.kind,
                    target: l.target,
                    body: l.body,
                    attempts: l.attempts,
                })
            })
            .collect())
    }

    pub fn record_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        use notifications::dsl as n;
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let row = n::notifications.filter(n::id.eq(id));
        self.write(&mut conn, |conn| match attempt {
            Attempt::Sent => diesel::update(row)
                .set((
                    n::sent_at.eq(micros(now)),
                    n::attempts.eq(n::attempts + 1),
                    n::lease_until.eq(None::<i64>),
                    n::last_error.eq(None::<String>),
                ))
                .execute(conn),
            Attempt::Failed { error, retry_at } => diesel::update(row)
                .set((
                    n::next_attempt_at.eq(micros(*retry_at)),
                    n::attempts.eq(n::attempts + 1),
                    n::lease_until.eq(None::<i64>),
                    n::last_error.eq(error),
                ))
                .execute(conn),
        })
        .map(|_| ())
    }

    pub fn notifications_pending(&self) -> Result<i64, StoreError> {
        use notifications::dsl as n;
        let mut conn = self.reader()?;
        n::notifications
            .filter(n::sent_at.is_null())
            .count()
            .get_result(&mut conn)
            .map_err(super::unavailable)
    }
}
