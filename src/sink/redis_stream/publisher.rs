//! The publisher's state machine. On the fast path it takes committed batches from memory (the sink's queue),
//! publishes each with one pipelined round trip and deletes the outbox rows in bulk. When Redis fails, or the
//! queue overflowed, it catches up from the outbox instead, oldest first, until nothing of its own (or orphaned)
//! is left, then goes back to the fast path. Rows of a process that is gone are taken over once older than
//! `takeover_after`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{StreamConfig, StreamStatus};
use crate::metrics::Instruments;
use crate::model::StoredEvent;
use crate::sink::Committed;
use crate::store::Store;

/// Outbox rows read per query while catching up.
const CATCH_UP_ROWS: i64 = 64;

/// Published outbox rows are deleted this often (or sooner when many have gathered).
const DELETE_EVERY: Duration = Duration::from_millis(200);

const DELETE_BATCH: usize = 512;

const RETRY_MIN: Duration = Duration::from_millis(250);

const RETRY_MAX: Duration = Duration::from_secs(5);

/// How often the fast path looks for rows that a process which is gone left behind.
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(super) enum PublishError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

pub(super) struct Publisher {
    pub(super) store: Store,
    pub(super) config: StreamConfig,
    pub(super) owner: String,
    pub(super) rx: mpsc::Receiver<Committed>,
    pub(super) overflowed: Arc<AtomicBool>,
    pub(super) status: Arc<StreamStatus>,
    pub(super) conn: Option<MultiplexedConnection>,
    /// Outbox rows published and not yet deleted.
    pub(super) published_seqs: Vec<i64>,
    pub(super) last_delete: Instant,
    /// The newest of this process's outbox rows published so far: a batch at or below it came round twice.
    pub(super) last_own_seq: i64,
    pub(super) instruments: Arc<Instruments>,
}

impl Publisher {
    pub(super) async fn run(mut self) {
        // Whatever an earlier run of this database left (and this run committed before Redis answered) first.
        let mut catching_up = true;
        let mut delay = RETRY_MIN;
        let mut outage_logged = false;
        let mut sweep = tokio::time::interval(
            ORPHAN_SWEEP_EVERY
                .min(self.config.takeover_after)
                .max(RETRY_MIN),
        );
        sweep.tick().await;
        loop {
            if catching_up {
                match self.catch_up().await {
                    Ok(published) => {
                        catching_up = false;
                        delay = RETRY_MIN;
                        self.status.behind.store(false, Ordering::Release);
                        self.status.backlog.store(0, Ordering::Release);
                        if outage_logged {
                            outage_logged = false;
                            tracing::info!(
                                published,
                                "Redis stream caught up from the outbox; publishing live again"
                            );
                        }
                    }
                    Err(e) => {
                        self.fail(&e, &mut outage_logged).await;
                        if self.wait_or_closed(delay).await {
                            return;
                        }
                        delay = (delay * 2).min(RETRY_MAX);
                    }
                }
                continue;
            }
            let next = tokio::select! {
                next = self.rx.recv() => next,
                _ = sweep.tick() => {
                    if let Err(e) = self.publish_orphans().await {
                        self.fail(&e, &mut outage_logged).await;
                        catching_up = true;
                    }
                    continue;
                }
                _ = tokio::time::sleep(DELETE_EVERY), if !self.published_seqs.is_empty() => {
                    self.delete_published().await;
                    continue;
                }
            };
            let Some(batch) = next else {
                // The committer is gone (shutdown): forget what was published, leave the rest to the outbox.
                self.delete_published().await;
                return;
            };
            if self.overflowed.swap(false, Ordering::AcqRel) {
                catching_up = true;
                continue;
            }
            if batch.outbox_seq.is_some_and(|s| s <= self.last_own_seq) {
                continue;
            }
            match self.publish(&batch.events).await {
                Ok(()) => {
                    if let Some(seq) = batch.outbox_seq {
                        self.last_own_seq = seq;
                        self.published_seqs.push(seq);
                    }
                    if self.published_seqs.len() >= DELETE_BATCH
                        || self.last_delete.elapsed() >= DELETE_EVERY
                    {
                        self.delete_published().await;
                    }
                }
                Err(e) => {
                    self.fail(&e, &mut outage_logged).await;
                    catching_up = true;
                }
            }
        }
    }

    /// Records a failure: one warning when an outage starts, a counter always.
    async fn fail(&mut self, e: &PublishError, logged: &mut bool) {
        self.conn = None;
        self.status.errors.fetch_add(1, Ordering::Relaxed);
        self.status.behind.store(true, Ordering::Release);
        if let Ok(n) = self.store.outbox_backlog().await {
            self.status.backlog.store(n, Ordering::Release);
        }
        if !std::mem::replace(logged, true) {
            tracing::warn!(
                error = %e,
                stream = %self.config.key,
                "Redis stream is behind: ingest goes on, committed events wait in the outbox and are published when Redis is back"
            );
        } else {
            tracing::debug!(error = %e, "Redis stream still behind");
        }
    }

    /// Sleeps `delay` while discarding batches from memory (they are in the outbox); true when the committer is
    /// gone.
    async fn wait_or_closed(&mut self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return false,
                next = self.rx.recv() => if next.is_none() { return true },
            }
        }
    }

    /// Publishes the outbox until it holds nothing of ours (nor anything orphaned); returns the events published.
    async fn catch_up(&mut self) -> Result<u64, PublishError> {
        self.connection().await?;
        let mut published = 0;
        loop {
            // Batches queued in memory are also in the outbox, and read from there below: drop them first, so
            // that anything still in memory after the outbox reads empty was committed after that read.
            while self.rx.try_recv().is_ok() {}
            self.overflowed.store(false, Ordering::Release);
            self.delete_published().await;
            if !self.published_seqs.is_empty() {
                return Err(PublishError::Store(crate::store::StoreError::Unavailable(
                    "cannot delete published outbox rows".into(),
                )));
            }
            let rows = self
                .store
                .outbox_pending(&self.owner, self.config.takeover_after, CATCH_UP_ROWS)
                .await?;
            if rows.is_empty() {
                return Ok(published);
            }
            for row in rows {
                let events = self.store.events_by_id(row.event_ids).await?;
                self.publish(&events).await?;
                published += events.len() as u64;
                if row.owner == self.owner {
                    self.last_own_seq = self.last_own_seq.max(row.seq);
                }
                self.published_seqs.push(row.seq);
            }
        }
    }

    /// On the fast path: rows that a process which is gone left behind, and rows of this one that never came
    /// through memory (a commit whose answer was lost after it succeeded).
    async fn publish_orphans(&mut self) -> Result<(), PublishError> {
        let rows = self
            .store
            .outbox_pending(&self.owner, self.config.takeover_after, CATCH_UP_ROWS)
            .await?;
        // Own batches arrive in seq order: an own row below the newest published one, not waiting for its
        // delete, was skipped.
        let orphans: Vec<_> = rows
            .into_iter()
            .filter(|r| {
                r.owner != self.owner
                    || (r.seq < self.last_own_seq && !self.published_seqs.contains(&r.seq))
            })
            .collect();
        for row in orphans {
            tracing::info!(
                seq = row.seq,
                events = row.event_ids.len(),
                "publishing outbox rows another hivewatch left behind"
            );
            let events = self.store.events_by_id(row.event_ids).await?;
            self.publish(&events).await?;
            self.published_seqs.push(row.seq);
        }
        Ok(())
    }

    async fn delete_published(&mut self) {
        if self.published_seqs.is_empty() {
            return;
        }
        match self.store.outbox_delete(self.published_seqs.clone()).await {
            Ok(()) => {
                self.published_seqs.clear();
                self.last_delete = Instant::now();
            }
            // Kept for the next try; publishing them again would only repeat them on the stream.
            Err(e) => tracing::debug!(error = %e, "cannot delete published outbox rows yet"),
        }
    }

    async fn connection(&mut self) -> Result<MultiplexedConnection, redis::RedisError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let client = redis::Client::open(self.config.url.as_str())?;
        let conn = client
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(5))),
            )
            .await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// XADDs the events in order with one pipelined round trip.
    async fn publish(&mut self, events: &[StoredEvent]) -> Result<(), PublishError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for ev in events {
            let data = serde_json::to_string(ev).unwrap_or_default();
            pipe.cmd("XADD")
                .arg(&self.config.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.max_len)
                .arg("*")
                .arg("event_id")
                .arg(ev.event.event_id.to_string())
                .arg("session_id")
                .arg(ev.event.session_id.to_string())
                .arg("event_type")
                .arg(ev.event.event_type.as_str())
                .arg("data")
                .arg(data)
                .ignore();
        }
        let started = std::time::Instant::now();
        pipe.query_async::<()>(&mut conn).await?;
        self.instruments.published(events, started.elapsed());
        self.status
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
