//! "Which session needs me?": the periodic sweep that keeps session states honest between events, and the
//! notifier that tells people. States themselves change in the store's commit (`model::session_state`); what
//! happens without an event (a session abandoned, a telemetry-only session gone quiet, a wait that has lasted
//! long enough to notify about) is this module's sweep, which every replica may run: the store applies each
//! due change once.

pub mod notify;

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Instruments;
use crate::sink::live::StatesOut;
use crate::store::notifications::NotifyRules;
use crate::store::{Store, SweepPolicy};

/// `hivewatch_sessions_active` counts sessions seen this recently and not ended.
const ACTIVE_WINDOW_MINUTES: i64 = 30;

/// What the sweep does, and with what.
pub struct Sweeper {
    pub store: Store,
    /// Where the sweep's state changes go (the live hubs).
    pub states: StatesOut,
    pub instruments: Arc<Instruments>,
    pub policy: SweepPolicy,
    pub every: Duration,
    /// With notifications configured: which episodes to queue, and whom to wake once some are.
    pub notify: Option<(NotifyRules, Arc<tokio::sync::Notify>)>,
}

impl Sweeper {
    /// Sweeps at start and then every `every`, until aborted.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep_once(chrono::Utc::now()).await;
        }
    }

    /// One pass as of `now`: timed transitions (published live and counted), notifications queued, sessions
    /// counted (active, and by state) for `/metrics`. A failing step is logged and tried again at the next pass.
    pub async fn sweep_once(&self, now: chrono::DateTime<chrono::Utc>) {
        match self.store.sweep_states(now, self.policy).await {
            Ok(changes) if !changes.is_empty() => {
                tracing::debug!(sessions = changes.len(), "session sweep changed states");
                self.instruments.state_changes(&changes);
                self.states.publish(changes.into());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "session sweep failed; trying again at the next one")
            }
        }
        if let Some((rules, wake)) = &self.notify {
            match self.store.queue_notifications(now, rules.clone()).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(notifications = n, "notifications queued");
                    wake.notify_one();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot queue notifications; trying again at the next sweep")
                }
            }
        }
        // One query after the other, on one reader connection (an idle server opens no second one).
        let since = now - chrono::Duration::minutes(ACTIVE_WINDOW_MINUTES);
        match self.store.active_sessions(since).await {
            Ok(n) => self
                .instruments
                .sessions_active
                .store(n, std::sync::atomic::Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "cannot count active sessions"),
        }
        match self.store.state_counts(now).await {
            Ok(counts) => {
                *self
                    .instruments
                    .session_states
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = counts
            }
            Err(e) => tracing::debug!(error = %e, "cannot count sessions by state"),
        }
    }
}
