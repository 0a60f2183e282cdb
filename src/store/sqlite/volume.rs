//! A full SQLite volume: writes are refused (503, retryable) and logged once when an episode begins and once
//! when it is over, not once per refused request.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long writes must go without a refusal for lack of space before a full-volume episode counts as over. While
/// the volume is full some writes still fit (into space SQLite's files already hold): they do not end it.
const FULL_EPISODE_QUIET: Duration = Duration::from_secs(10);

/// Writes refused because the volume is full, logged once when an episode begins and once when it is over,
/// not once per refused request.
#[derive(Default)]
pub(super) struct FullVolume {
    /// An episode is under way (the fast path of every successful write reads only this).
    open: AtomicBool,
    episode: Mutex<Option<FullEpisode>>,
}

struct FullEpisode {
    since: Instant,
    last_refusal: Instant,
    refused: u64,
}

impl FullVolume {
    pub(super) fn refused(&self, data_dir: &Path) {
        let now = Instant::now();
        let mut episode = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        match episode.as_mut() {
            Some(e) => {
                e.last_refusal = now;
                e.refused += 1;
                tracing::debug!(
                    refused = e.refused,
                    "write refused: the SQLite volume is still full"
                );
            }
            None => {
                tracing::error!(
                    data_dir = %data_dir.display(),
                    "the SQLite volume is full: ingest is answered 503 / UNAVAILABLE until space is freed on it; \
                     nothing acknowledged is lost, and ingest resumes by itself once there is room"
                );
                *episode = Some(FullEpisode {
                    since: now,
                    last_refusal: now,
                    refused: 1,
                });
                self.open.store(true, Ordering::Release);
            }
        }
    }

    pub(super) fn wrote(&self) {
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let mut episode = self.episode.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = episode.as_ref()
            && e.last_refusal.elapsed() >= FULL_EPISODE_QUIET
        {
            tracing::info!(
                refused = e.refused,
                lasted_s = e.since.elapsed().as_secs(),
                "the SQLite volume has room again: writes succeed"
            );
            *episode = None;
            self.open.store(false, Ordering::Release);
        }
    }
}
