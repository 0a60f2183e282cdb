//! Notifications in the store, persisted before they are sent: [`Store::queue_notifications`] writes one row per
//! state episode, kind and target (a unique index: one however many replicas queue it) in the transaction that
//! marks the episode notified; senders lease due rows ([`Store::lease_notifications`], so that two replicas never
//! send one at the same time), and record each attempt's outcome. A row stays until a target accepts it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// Which episodes get notifications, and where they go.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyRules {
    /// How long a session waits for a person before it is notified.
    pub after: Duration,
    pub finished: bool,
    /// Target URLs: one row per episode and target.
    pub targets: Vec<String>,
}

impl NotifyRules {
    /// Episodes older than this when they come due are not notified any more (a first start with notifications
    /// on does not announce the whole history).
    pub const FRESH_FOR: Duration = Duration::from_secs(3600);

    /// The condition on `state` that makes an episode notifiable, in SQL.
    pub(super) fn states_sql(&self) -> &'static str {
        if self.finished {
            "state IN ('waiting_for_permission', 'waiting_for_input', 'failed', 'ended')"
        } else {
            "state IN ('waiting_for_permission', 'waiting_for_input', 'failed')"
        }
    }
}

/// A notification leased for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingNotification {
    pub id: i64,
    pub session_id: Uuid,
    pub kind: String,
    pub target: String,
    /// The `json` body.
    pub body: String,
    /// Attempts before this one.
    pub attempts: i32,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Sent,
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
}

impl Store {
    /// Queues the notifications due at `now`; returns how many rows were new.
    pub async fn queue_notifications(
        &self,
        now: DateTime<Utc>,
        rules: NotifyRules,
    ) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.queue_notifications(now, &rules))
                    .await
            }
            Store::Postgres(p) => p.queue_notifications(now, &rules).await,
        }
    }

    /// Leases up to `limit` due notifications for `lease` (another sender takes them over after it), of the
    /// `targets` this sender is configured with: a replica started with other URLs (a rolling change of
    /// configuration) leaves the others' rows alone.
    pub async fn lease_notifications(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
        targets: Vec<String>,
    ) -> Result<Vec<PendingNotification>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.lease_notifications(now, lease, limit, &targets))
                    .await
            }
            Store::Postgres(p) => p.lease_notifications(now, lease, limit, &targets).await,
        }
    }

    pub async fn record_attempt(
        &self,
        id: i64,
        now: DateTime<Utc>,
        attempt: Attempt,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.record_attempt(id, now, &attempt))
                    .await
            }
            Store::Postgres(p) => p.record_attempt(id, now, &attempt).await,
        }
    }

    /// Notifications not yet accepted by their target, over every replica.
    pub async fn notifications_pending(&self) -> Result<i64, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(|s| s.notifications_pending()).await,
            Store::Postgres(p) => p.notifications_pending().await,
        }
    }
}
