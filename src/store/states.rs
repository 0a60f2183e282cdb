//! Session states in the store: the commit advances them (each back-end's `states` module); what is timed (a
//! session abandoned, a telemetry-only session gone quiet) is applied by [`Store::sweep_states`], which any
//! number of replicas may run at once: each due session changes once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::model::session_state::{SessionState, SessionStateChanged};

/// When the sweep moves a session on by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepPolicy {
    /// No event for this long, and no SessionEnd: `abandoned`.
    pub abandon_after: Duration,
    /// A session known from native telemetry only (no hook events, so no Stop) and working with no event for this
    /// long: `idle`.
    pub idle_after: Duration,
}

/// How many sessions are in each state, and how long the longest current wait for a person is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateCounts {
    pub by_state: Vec<(SessionState, i64)>,
    pub longest_wait_seconds: f64,
}

impl StateCounts {
    /// From `(state, count, oldest state_since among the waiting ones in µs)` rows; every state is present.
    pub(super) fn from_rows(
        rows: impl IntoIterator<Item = (String, i64, Option<i64>)>,
        now: i64,
    ) -> Self {
        let mut out = StateCounts {
            by_state: SessionState::ALL.iter().map(|s| (*s, 0)).collect(),
            longest_wait_seconds: 0.0,
        };
        for (state, n, oldest) in rows {
            let Some(state) = SessionState::parse(&state) else {
                continue;
            };
            if let Some(slot) = out.by_state.iter_mut().find(|(s, _)| *s == state) {
                slot.1 += n;
            }
            if let Some(since) = oldest {
                let waited = (now - since).max(0) as f64 / 1e6;
                out.longest_wait_seconds = out.longest_wait_seconds.max(waited);
            }
        }
        out
    }
}

impl Store {
    /// Applies the timed transitions due at `now`; returns the sessions that changed.
    pub async fn sweep_states(
        &self,
        now: DateTime<Utc>,
        policy: SweepPolicy,
    ) -> Result<Vec<SessionStateChanged>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                s.clone()
                    .blocking(move |s| s.sweep_states(now, policy))
                    .await
            }
            Store::Postgres(p) => p.sweep_states(now, policy).await,
        }
    }

    /// Sessions by state, over every replica's sessions.
    pub async fn state_counts(&self, now: DateTime<Utc>) -> Result<StateCounts, StoreError> {
        match self {
            Store::Sqlite(s) => s.clone().blocking(move |s| s.state_counts(now)).await,
            Store::Postgres(p) => p.state_counts(now).await,
        }
    }
}
