//! The Redis stream: every committed event is XADDed to one stream (`MAXLEN ~` bounded), at least once and in
//! commit order, fed through the store's outbox so that a Redis outage never fails ingest.
//!
//! Backpressure: the sink hands batches to the publisher without waiting; when the publisher's queue is full the
//! batch is left in the outbox (where the commit already wrote it) and the publisher told to read it from there.
//!
//! Each group commit writes an outbox row naming its events, in the same transaction. The publisher normally gets
//! the batch straight from the committer, publishes it with one pipelined round trip and deletes the outbox rows
//! in bulk. When Redis fails (or the publisher falls so far behind that its queue overflows), it stops taking
//! batches from memory and reads the outbox instead, oldest first, until it is empty; then it goes back to the
//! fast path. Rows left by a process that died are taken over once they are older than `takeover_after`.

mod publisher;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::metrics::Meter;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Committed, Sink};
use crate::metrics::Instruments;
use crate::store::Store;
use publisher::Publisher;

/// Batches that may wait for the publisher before the committer leaves them to the outbox.
const FEED_CAPACITY: usize = 1024;

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

/// The sink: commits write an outbox row owned by [`RedisSink::owner`] and hand the batch to the publisher. The
/// hand-over never waits: when the publisher is behind and its queue is full, the batch is left in the outbox and
/// `overflowed` tells the publisher to read it from there.
#[derive(Debug, Clone)]
pub struct RedisSink {
    owner: String,
    tx: mpsc::Sender<Committed>,
    overflowed: Arc<AtomicBool>,
}

impl RedisSink {
    /// The owner of this process's outbox rows: the committer writes one per batch under this name.
    pub fn owner(&self) -> &str {
        &self.owner
    }
}

impl Sink for RedisSink {
    fn deliver(&self, batch: &Committed) {
        if self.tx.try_send(batch.clone()).is_err() {
            self.overflowed.store(true, Ordering::Release);
        }
    }
}

/// Starts the publisher; returns the sink the committer hands batches to, and the publisher's status.
pub fn start(
    store: Store,
    config: StreamConfig,
    instruments: Arc<Instruments>,
    meter: &Meter,
) -> (RedisSink, Arc<StreamStatus>, JoinHandle<()>) {
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
    let feed = RedisSink {
        owner: owner.clone(),
        tx,
        overflowed: Arc::new(AtomicBool::new(false)),
    };
    let status = Arc::new(StreamStatus::default());
    #[rustfmt::skip]
    crate::metrics::observe!(meter, &status,
        gauge "hivewatch_stream_behind" "1 while the Redis stream is behind the store (Redis failing, or the outbox being drained)" => |s: &StreamStatus| s.behind.load(Ordering::Acquire) as u64,
        counter "hivewatch_stream_published_events" "Events added to the Redis stream" => |s: &StreamStatus| s.published.load(Ordering::Relaxed),
        counter "hivewatch_stream_errors" "Failed attempts to publish to the Redis stream" => |s: &StreamStatus| s.errors.load(Ordering::Relaxed),
    );
    let backlog = status.clone();
    meter
        .i64_observable_gauge("hivewatch_outbox_pending_events")
        .with_description("Committed events not yet on the Redis stream, as last counted")
        .with_callback(move |o| o.observe(backlog.backlog.load(Ordering::Acquire), &[]))
        .build();
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
        instruments,
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

/// The publisher's state machine against a real Redis (the tests' shared one, `HIVEWATCH_TEST_REDIS_URL`, as
/// `scripts/test.sh` sets it) and a real store (SQLite in a temporary directory), each test on a stream of its own.
#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use redis::AsyncCommands;
    use serde_json::json;

    use super::*;
    use crate::model::AgentEvent;
    use crate::model::hook::{HookContext, normalize_hook};
    use crate::store::{SqliteSync, StoreConfig};

    fn redis_url() -> String {
        std::env::var("HIVEWATCH_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    async fn redis() -> redis::aio::MultiplexedConnection {
        let url = redis_url();
        let client = redis::Client::open(url.as_str()).expect("a Redis URL");
        client.get_multiplexed_async_connection().await.unwrap_or_else(|e| {
            panic!(
                "these tests need Redis at {url} ({e}): run `bash scripts/test.sh`, which starts one when none is \
                 running, or set HIVEWATCH_TEST_REDIS_URL"
            )
        })
    }

    struct Setup {
        store: Store,
        key: String,
        _dir: tempfile::TempDir,
    }

    async fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig::Sqlite {
            path: dir.path().join("hivewatch.db"),
            synchronous: SqliteSync::Normal,
        })
        .await
        .unwrap();
        Setup {
            store,
            key: format!("hivewatch:test:{}", uuid::Uuid::new_v4().simple()),
            _dir: dir,
        }
    }

    fn config(url: String, key: &str) -> StreamConfig {
        StreamConfig {
            url,
            key: key.to_string(),
            max_len: 10_000,
            takeover_after: Duration::from_millis(300),
            instance_id: None,
        }
    }

    fn events(n: usize, tag: &str) -> Vec<AgentEvent> {
        (0..n)
            .map(|i| {
                let ctx = HookContext {
                    source_app: Some(format!("{tag}-{i}")),
                    ..Default::default()
                };
                normalize_hook(
                    json!({"session_id": "s", "hook_event_name": "Stop"}),
                    &ctx,
                    chrono::Utc::now(),
                )
                .unwrap()
            })
            .collect()
    }

    /// Commits like the committer does with a stream configured, and hands the batch to `sink` when given.
    async fn commit(store: &Store, owner: &str, events: Vec<AgentEvent>, sink: Option<&RedisSink>) {
        let outcome = store.commit(events, Some(owner)).await.unwrap();
        if let Some(sink) = sink {
            sink.deliver(&Committed {
                outbox_seq: outcome.outbox_seq,
                events: outcome.inserted.into(),
                states: outcome.states.into(),
            });
        }
    }

    /// The `source_app`s on the stream, in stream order, once it holds `n` entries.
    async fn stream_apps(key: &str, n: usize) -> Vec<String> {
        let mut conn = redis().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.unwrap();
            if reply.ids.len() >= n || std::time::Instant::now() > deadline {
                let _: () = conn.del(key).await.unwrap_or(());
                return reply
                    .ids
                    .iter()
                    .map(|e| {
                        let data: String = e.get("data").unwrap();
                        let ev: crate::model::StoredEvent = serde_json::from_str(&data).unwrap();
                        ev.event.source_app
                    })
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn backlog_drains(store: &Store) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.outbox_backlog().await.unwrap() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the outbox never emptied"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn metrics() -> (Arc<Instruments>, crate::metrics::Metrics) {
        let m = crate::metrics::Metrics::new().unwrap();
        (m.instruments(), m)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn what_an_earlier_run_left_goes_first_then_batches_from_memory_in_commit_order() {
        let s = setup().await;
        let (instruments, m) = metrics();
        // Committed by an earlier run of this embedded store, never published.
        commit(&s.store, "embedded", events(3, "left"), None).await;
        let (sink, status, task) = start(
            s.store.clone(),
            config(redis_url(), &s.key),
            instruments,
            m.meter(),
        );
        assert_eq!(
            sink.owner(),
            "embedded",
            "an embedded store has one owner across restarts"
        );
        commit(&s.store, "embedded", events(2, "live"), Some(&sink)).await;
        let apps = stream_apps(&s.key, 5).await;
        assert_eq!(apps, ["left-0", "left-1", "left-2", "live-0", "live-1"]);
        backlog_drains(&s.store).await;
        assert!(!status.behind.load(Ordering::Acquire));
        drop(sink);
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn while_redis_is_down_batches_wait_in_the_outbox_and_a_burst_loses_nothing() {
        let s = setup().await;
        let (instruments, m) = metrics();
        // Nothing listens on port 1: every publish fails.
        let down = config("redis://127.0.0.1:1".into(), &s.key);
        let (sink, status, task) = start(s.store.clone(), down, instruments.clone(), m.meter());
        for i in 0..3 {
            commit(
                &s.store,
                "embedded",
                events(1, &format!("down{i}")),
                Some(&sink),
            )
            .await;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !status.behind.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "never noticed that Redis is down"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(status.errors.load(Ordering::Relaxed) > 0);
        assert_eq!(s.store.outbox_backlog().await.unwrap(), 3);
        drop(sink);
        task.await.unwrap();

        // Redis is back (a restart of the process): the outbox is published, in commit order; then batches
        // beyond the publisher's queue (more than it holds) are read from the outbox too.
        let (sink, _status, task) = start(
            s.store.clone(),
            config(redis_url(), &s.key),
            instruments,
            m.meter(),
        );
        let burst = FEED_CAPACITY + 50;
        for i in 0..burst {
            commit(
                &s.store,
                "embedded",
                events(1, &format!("burst{i}")),
                Some(&sink),
            )
            .await;
        }
        let apps = stream_apps(&s.key, 3 + burst).await;
        assert_eq!(&apps[..3], ["down0-0", "down1-0", "down2-0"]);
        let unique: HashSet<&String> = apps.iter().collect();
        assert_eq!(
            unique.len(),
            3 + burst,
            "every event once, none lost: {} entries",
            apps.len()
        );
        let bursts: Vec<&String> = apps.iter().skip(3).collect();
        let mut sorted = bursts.clone();
        sorted.sort_by_key(|a| {
            a.trim_start_matches("burst")
                .trim_end_matches("-0")
                .parse::<usize>()
                .unwrap()
        });
        assert_eq!(bursts, sorted, "first occurrences in commit order");
        backlog_drains(&s.store).await;
        drop(sink);
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_a_process_that_is_gone_left_are_taken_over() {
        let s = setup().await;
        let (instruments, m) = metrics();
        let mut cfg = config(redis_url(), &s.key);
        cfg.instance_id = Some("replica-b".into());
        let (sink, _status, task) = start(s.store.clone(), cfg, instruments, m.meter());
        // Another replica committed and died before publishing.
        commit(&s.store, "replica-a", events(2, "orphan"), None).await;
        commit(&s.store, "replica-b", events(1, "mine"), Some(&sink)).await;
        let apps = stream_apps(&s.key, 3).await;
        let unique: HashSet<&str> = apps.iter().map(String::as_str).collect();
        assert_eq!(unique, HashSet::from(["orphan-0", "orphan-1", "mine-0"]));
        backlog_drains(&s.store).await;
        drop(sink);
        task.await.unwrap();
    }
}
