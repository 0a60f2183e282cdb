//! The Redis stream: every committed event is XADDed to one stream (`MAXLEN ~` bounded), at least once and in
//! commit order, fed through the store's outbox so that a Redis outage never fails ingest.
//!
//! Each group commit writes an outbox row naming its events, in the same transaction. The publisher normally gets
//! the batch straight from the committer, publishes it with one pipelined round trip and deletes the outbox rows
//! in bulk. When Redis fails (or the publisher falls so far behind that its queue overflows), it stops taking
//! batches from memory and reads the outbox instead, oldest first, until it is empty; then it goes back to the
//! fast path. Rows left by a process that died are taken over once they are older than `takeover_after`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::model::StoredEvent;
use crate::pipeline::{CommitFeed, Committed};
use crate::store::Store;

/// Batches that may wait for the publisher before the committer leaves them to the outbox.
const FEED_CAPACITY: usize = 1024;
/// Outbox rows read per query while catching up.
const CATCH_UP_ROWS: i64 = 64;
/// Published outbox rows are deleted this often (or sooner when many have gathered).
const DELETE_EVERY: Duration = Duration::from_millis(200);
const DELETE_BATCH: usize = 512;
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often the fast path looks for rows that a process which is gone left behind.
const ORPHAN_SWEEP_EVERY: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct StreamConfig {
    pub url: String,
    pub key: String,
    /// Approximate length bound (`XADD … MAXLEN ~ n`).
    pub max_len: u64,
    /// Outbox rows of another process older than this are published by this one.
    pub takeover_after: Duration,
    /// This process's name as the owner of its outbox rows; stable across restarts (a pod name, say), a restart
    /// publishes what the previous run left at once instead of after `takeover_after`.
    pub instance_id: Option<String>,
}

impl std::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("StreamConfig")
            .field("url", &describe_redis_url(&self.url))
            .field("key", &self.key)
            .field("max_len", &self.max_len)
            .field("takeover_after", &self.takeover_after)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

/// `host:port/db` of a Redis URL, without credentials.
pub fn describe_redis_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, r)| r).to_string()
}

/// What the publisher is doing, for `/readyz`, the status API and metrics.
#[derive(Debug, Default)]
pub struct StreamStatus {
    /// True while Redis is failing or the outbox is being drained.
    pub behind: AtomicBool,
    /// Events committed and not yet published, as last counted (0 on the fast path).
    pub backlog: AtomicI64,
    pub published: AtomicU64,
    pub errors: AtomicU64,
}

/// Starts the publisher; returns the feed the committer writes to.
pub fn start(
    store: Store,
    config: StreamConfig,
) -> (CommitFeed, Arc<StreamStatus>, JoinHandle<()>) {
    let owner = config.instance_id.clone().unwrap_or_else(|| match store {
        // One process at a time uses an embedded database: a restart picks up its own rows at once.
        Store::Sqlite(_) => "embedded".to_string(),
        Store::Postgres(_) => format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
    });
    let (tx, rx) = mpsc::channel(FEED_CAPACITY);
    let feed = CommitFeed {
        owner: owner.clone(),
        tx,
        overflowed: Arc::new(AtomicBool::new(false)),
    };
    let status = Arc::new(StreamStatus::default());
    let publisher = Publisher {
        store,
        config,
        owner,
        rx,
        overflowed: feed.overflowed.clone(),
        status: status.clone(),
        conn: None,
        published_seqs: Vec::new(),
        last_delete: Instant::now(),
        last_own_seq: 0,
    };
    (feed, status, tokio::spawn(publisher.run()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
}

struct Publisher {
    store: Store,
    config: StreamConfig,
    owner: String,
    rx: mpsc::Receiver<Committed>,
    overflowed: Arc<AtomicBool>,
    status: Arc<StreamStatus>,
    conn: Option<MultiplexedConnection>,
    /// Outbox rows published and not yet deleted.
    published_seqs: Vec<i64>,
    last_delete: Instant,
    /// The newest of this process's outbox rows published so far: a batch at or below it came round twice.
    last_own_seq: i64,
}

impl Publisher {
    async fn run(mut self) {
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
                .arg(&ev.event.event_type)
                .arg("data")
                .arg(data)
                .ignore();
        }
        let started = std::time::Instant::now();
        pipe.query_async::<()>(&mut conn).await?;
        if let Some(m) = crate::metrics::get() {
            m.published(events, started.elapsed());
        }
        self.status
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
