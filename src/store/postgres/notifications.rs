//! Notifications on Postgres (see `store::notifications`): queued with the episode marked notified in one
//! transaction (the sessions locked, `SKIP LOCKED`, so that two replicas queue an episode once), leased with one
//! statement (`SKIP LOCKED`: two senders never take the same row).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{ExpressionMethods, QueryDsl, QueryableByName};
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use super::rows::SessionRow;
use super::schema::{notifications, sessions};
use super::{PgStore, unavailable};
use crate::model::notification::{NotificationKind, body};
use crate::store::StoreError;
use crate::store::notifications::{Attempt, NotifyRules, PendingNotification};

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = SqlUuid)]
    session_id: Uuid,
}

#[derive(QueryableByName)]
struct Leased {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    session_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    target: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

impl PgStore {
    pub async fn queue_notifications(
        &self,
        now: DateTime<Utc>,
        rules: &NotifyRules,
    ) -> Result<usize, StoreError> {
        use notifications::dsl as n;
        use sessions::dsl as s;
        if rules.targets.is_empty() {
            return Ok(0);
        }
        let span = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let waited = now - span(rules.after);
        let fresh = waited - span(NotifyRules::FRESH_FOR);
        let sql = format!(
            "SELECT session_id FROM sessions WHERE {} \
               AND (notified_since IS NULL OR notified_since <> state_since) AND state_since >= $1 \
               AND (state NOT IN ('waiting_for_permission', 'waiting_for_input') OR state_since <= $2) \
             LIMIT 1000 FOR UPDATE SKIP LOCKED",
            rules.states_sql()
        );
        let mut conn = self.conn().await?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let due: Vec<Due> = diesel::sql_query(&sql)
                .bind::<Timestamptz, _>(fresh)
                .bind::<Timestamptz, _>(waited)
                .load(conn)
                .await?;
            if due.is_empty() {
                return Ok(0);
            }
            let ids: Vec<Uuid> = due.iter().map(|d| d.session_id).collect();
            let rows: Vec<SessionRow> = s::sessions
                .filter(s::session_id.eq_any(&ids))
                .select(<SessionRow as diesel::SelectableHelper<diesel::pg::Pg>>::as_select())
                .load(conn)
                .await?;
            let mut queued = 0;
            for row in rows {
                let summary = row.into_summary().map_err(|e| {
                    diesel::result::Error::DeserializationError(e.to_string().into())
                })?;
                let Some(kind) = NotificationKind::of(summary.state) else {
                    continue;
                };
                let text = body(kind, &summary, now).to_string();
                for target in &rules.targets {
                    queued += diesel::insert_into(n::notifications)
                        .values((
                            n::session_id.eq(summary.session_id),
                            n::kind.eq(kind.as_str()),
                            n::episode.eq(summary.state_since),
                            n::target.eq(target),
                            n::body.eq(&text),
                            n::created_at.eq(now),
                            n::next_attempt_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                diesel::update(
                    s::sessions
                        .filter(s::session_id.eq(summary.session_id))
                        .filter(s::state_since.eq(summary.state_since)),
                )
                .set(s::notified_since.eq(summary.state_since))
                .execute(conn)
                .await?;
            }
            Ok(queued)
        })
        .await
        .map_err(unavailable)
    }

    pub async fn lease_notifications(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
        targets: &[String],
    ) -> Result<Vec<PendingNotification>, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let mut conn = self.conn().await?;
        let leased: Vec<Leased> = diesel::sql_query(
            "UPDATE notifications SET lease_until = $1 WHERE id IN ( \
               SELECT id FROM notifications WHERE sent_at IS NULL AND next_attempt_at <= $2 \
               AND (lease_until IS NULL OR lease_until < $2) AND target = ANY($4) \
               ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, session_id, kind::text AS kind, target, body, attempts",
        )
        .bind::<Timestamptz, _>(until)
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(limit)
        .bind::<diesel::sql_types::Array<Text>, _>(targets)
        .load(&mut conn)
        .await
        .map_err(unavailable)?;
        Ok(leased
            .into_iter()
            .map(|l| PendingNotification {
                id: l.id,
                session_id: l.session_id,
                kind: l.kind,
                target: l.target,
                body: l.body,
                attempts: l.attempts,
            })
            .collect())
    }

    pub async fn record_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        use notifications::dsl as n;
        let mut conn = self.conn().await?;
        let row = n::notifications.filter(n::id.eq(id));
        match attempt {
            Attempt::Sent => {
                diesel::update(row)
                    .set((
                        n::sent_at.eq(now),
                        n::attempts.eq(n::attempts + 1),
                        n::lease_until.eq(None::<DateTime<Utc>>),
                        n::last_error.eq(None::<String>),
                    ))
                    .execute(&mut conn)
                    .await
            }
            Attempt::Failed { error, retry_at } => {
                diesel::update(row)
                    .set((
                        n::next_attempt_at.eq(*retry_at),
                        n::attempts.eq(n::attempts + 1),
                        n::lease_until.eq(None::<DateTime<Utc>>),
                        n::last_error.eq(error),
                    ))
                    .execute(&mut conn)
                    .await
            }
        }
        .map(|_| ())
        .map_err(unavailable)
    }

    pub async fn notifications_pending(&self) -> Result<i64, StoreError> {
        use notifications::dsl as n;
        let mut conn = self.conn().await?;
        n::notifications
            .filter(n::sent_at.is_null())
            .count()
            .get_result(&mut conn)
            .await
            .map_err(unavailable)
    }
}
