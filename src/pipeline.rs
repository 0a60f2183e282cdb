//! Group commit: the events of many concurrent ingest requests are committed in one transaction, and each
//! request is answered once the transaction that holds its events has committed.
//!
//! Requests queue in a bounded channel. The committer takes everything queued (up to a batch limit), commits it,
//! and answers every request of the batch; while it commits, the next batch queues up. A full queue answers
//! `Overloaded` after a short wait, which the receivers turn into 503 / `UNAVAILABLE`, retryable by any OTLP
//! exporter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::model::redact::{RedactSettings, redact_json};
use crate::model::{AgentEvent, StoredEvent};
use crate::receiver::InflightHold;
use crate::store::{CommitFailure, CommitOutcome, Store, StoreError};

/// Longest a commit waits for the rest of a concurrent wave of requests (only when the last batch was large).
const LINGER: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Requests that may wait for a commit.
    pub queue_capacity: usize,
    /// Events in one transaction, at most (a larger request still commits whole).
    pub max_batch_events: usize,
    /// How long a request waits for room in a full queue before it is refused.
    pub enqueue_timeout: Duration,
    /// Where committed batches go next (the Redis stream publisher), when anything is configured.
    pub feed: Option<CommitFeed>,
    /// The live stream, fed straight from commits (without Redis; with Redis it reads the stream instead).
    pub live: Option<crate::live::Hub>,
    /// OTLP export of assembled spans.
    pub export: Option<crate::export::ExportFeed>,
    /// Redaction beyond the built-in rules (`--redact-pattern`, `--drop-prompts`, `--drop-tool-output`).
    pub redact: Arc<RedactSettings>,
}

/// One committed batch, as the sinks downstream of the store see it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The outbox row that names these events until they are published.
    pub outbox_seq: Option<i64>,
    /// Newly stored events, in commit order.
    pub events: Arc<[StoredEvent]>,
}

/// The committer's side of the outbox: commits write an outbox row owned by `owner` and hand the batch to the
/// publisher. The hand-over never waits: when the publisher is behind and its queue is full, the batch is left
/// in the outbox and `overflowed` tells the publisher to read it from there.
#[derive(Debug, Clone)]
pub struct CommitFeed {
    pub owner: String,
    pub tx: mpsc::Sender<Committed>,
    pub overflowed: Arc<AtomicBool>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 4096,
            max_batch_events: 10_000,
            enqueue_timeout: Duration::from_millis(500),
            feed: None,
            live: None,
            export: None,
            redact: Arc::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("ingest queue is full")]
    Overloaded,
    #[error("{0}")]
    Store(StoreError),
    #[error("hivewatch is shutting down")]
    ShuttingDown,
    /// The store cannot hold this request's data; retrying will not help.
    #[error("the store refused these events: {0}")]
    Rejected(String),
}

/// What a committed request learns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepted {
    pub events: usize,
}

struct Submission {
    events: Vec<AgentEvent>,
    ack: oneshot::Sender<Result<Accepted, StoreError>>,
    /// The request's share of the in-flight budget: given back once the request is answered, also when its
    /// client went away meanwhile (the events are in memory until then all the same).
    hold: InflightHold,
}

#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Submission>,
    enqueue_timeout: Duration,
    redact: Arc<RedactSettings>,
}

impl Pipeline {
    /// Starts the committer. It ends once every `Pipeline` clone is dropped and the queue is drained.
    pub fn start(store: Store, config: PipelineConfig) -> (Pipeline, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let task = tokio::spawn(run_committer(
            rx,
            store,
            config.max_batch_events.max(1),
            config.feed,
            config.live,
            config.export,
        ));
        (
            Pipeline {
                tx,
                enqueue_timeout: config.enqueue_timeout,
                redact: config.redact,
            },
            task,
        )
    }

    /// The redaction settings this pipeline applies, for the transcript path.
    pub fn redact_settings(&self) -> &RedactSettings {
        &self.redact
    }

    /// Requests waiting for a commit and the queue's capacity, for `/metrics`; holds the queue only weakly, so
    /// that it never keeps the committer alive at shutdown.
    pub fn queue_gauge(&self) -> std::sync::Arc<dyn Fn() -> (u64, u64) + Send + Sync> {
        let weak = self.tx.downgrade();
        std::sync::Arc::new(move || match weak.upgrade() {
            Some(tx) => (
                (tx.max_capacity() - tx.capacity()) as u64,
                tx.max_capacity() as u64,
            ),
            None => (0, 0),
        })
    }

    /// Redacts and commits `events`; returns once they are durable. `hold` is kept until the answer is sent.
    pub async fn submit(
        &self,
        mut events: Vec<AgentEvent>,
        hold: InflightHold,
    ) -> Result<Accepted, SubmitError> {
        if events.is_empty() {
            return Ok(Accepted::default());
        }
        for ev in &mut events {
            redact_json(&mut ev.payload);
            self.redact.apply_payload(&mut ev.payload);
            ev.make_storable();
        }
        let permit = match tokio::time::timeout(self.enqueue_timeout, self.tx.reserve()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(SubmitError::ShuttingDown),
            Err(_) => return Err(SubmitError::Overloaded),
        };
        let (ack, done) = oneshot::channel();
        permit.send(Submission { events, ack, hold });
        match done.await {
            Ok(Err(StoreError::Rejected(m))) => Err(SubmitError::Rejected(m)),
            Ok(result) => result.map_err(SubmitError::Store),
            Err(_) => Err(SubmitError::ShuttingDown),
        }
    }
}

/// Requests gathered for one commit: their events, and whom to answer for how many.
#[derive(Default)]
struct Batch {
    events: Vec<AgentEvent>,
    acks: Vec<Waiter>,
}

/// A request waiting for its commit: where its answer goes, how many events it sent, its share of the budget.
struct Waiter(
    oneshot::Sender<Result<Accepted, StoreError>>,
    usize,
    InflightHold,
);

impl Batch {
    fn push(&mut self, sub: Submission) {
        self.acks.push(Waiter(sub.ack, sub.events.len(), sub.hold));
        self.events.extend(sub.events);
    }
}

/// Where committed batches go after the store.
struct Downstream {
    feed: Option<CommitFeed>,
    live: Option<crate::live::Hub>,
    export: Option<crate::export::ExportFeed>,
}

impl Downstream {
    fn deliver(&self, outcome: CommitOutcome) {
        if outcome.inserted.is_empty() {
            return;
        }
        let events: Arc<[StoredEvent]> = outcome.inserted.into();
        if let Some(hub) = &self.live {
            hub.publish(events.clone());
        }
        if let Some(export) = &self.export {
            export.send(events.clone());
        }
        if let Some(feed) = &self.feed {
            let committed = Committed {
                outbox_seq: outcome.outbox_seq,
                events,
            };
            if feed.tx.try_send(committed).is_err() {
                feed.overflowed.store(true, Ordering::Release);
            }
        }
    }
}

async fn run_committer(
    mut rx: mpsc::Receiver<Submission>,
    store: Store,
    max_batch_events: usize,
    feed: Option<CommitFeed>,
    live: Option<crate::live::Hub>,
    export: Option<crate::export::ExportFeed>,
) {
    let owner = feed.as_ref().map(|f| f.owner.clone());
    let downstream = Downstream { feed, live, export };
    let mut last_requests = 0;
    // An outage fails every commit: it is logged when it starts and when it ends, not once per batch.
    let mut failing = false;
    while let Some(first) = rx.recv().await {
        let mut batch = Batch::default();
        batch.push(first);
        while batch.events.len() < max_batch_events {
            match rx.try_recv() {
                Ok(sub) => batch.push(sub),
                Err(_) => break,
            }
        }
        // Under concurrent load the senders answered by the last commit are sending again right now. Committing
        // the one request that came first would make all the others wait a whole commit: wait a moment for them.
        if batch.acks.len() * 2 < last_requests {
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.acks.len() * 4 < last_requests * 3 && batch.events.len() < max_batch_events
            {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(sub)) => batch.push(sub),
                    _ => break,
                }
            }
        }
        last_requests = batch.acks.len();
        let (size, requests) = (batch.events.len(), batch.acks.len());
        let (result, took) = commit(&store, batch.events, owner.as_deref()).await;
        let commit_us = took.as_micros() as u64;
        match result {
            Ok(outcome) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("store available again; commits succeed");
                }
                tracing::debug!(
                    batch = size,
                    commit_us,
                    requests,
                    inserted = outcome.inserted.len(),
                    duplicates = outcome.duplicates,
                    "committed"
                );
                for Waiter(ack, n, _hold) in batch.acks {
                    // The request may have gone away (client hung up); its events are committed all the same.
                    let _ = ack.send(Ok(Accepted { events: n }));
                }
                downstream.deliver(outcome);
            }
            // The store refused something in the batch (data it cannot hold): commit each request on its own, so
            // that only the one that carried it is refused.
            Err(CommitFailure {
                error: StoreError::Rejected(reason),
                events,
            }) if batch.acks.len() > 1 && events.len() == size => {
                tracing::warn!(requests, error = %reason, "the store refused data in a batch; committing its requests one by one");
                let mut events = events.into_iter();
                for Waiter(ack, n, _hold) in batch.acks {
                    let own: Vec<AgentEvent> = events.by_ref().take(n).collect();
                    let answer = match commit(&store, own, owner.as_deref()).await.0 {
                        Ok(outcome) => {
                            downstream.deliver(outcome);
                            Ok(Accepted { events: n })
                        }
                        Err(f) => Err(f.error),
                    };
                    let _ = ack.send(answer);
                }
            }
            Err(CommitFailure { error, .. }) => {
                if matches!(error, StoreError::Rejected(_)) {
                    tracing::warn!(batch = size, error = %error, "the store refused a request's data");
                } else if !failing {
                    failing = true;
                    tracing::warn!(batch = size, requests, error = %error, "commit failed; answering 503 until the store recovers");
                } else {
                    tracing::debug!(batch = size, requests, error = %error, "commit failed");
                }
                for Waiter(ack, _, _hold) in batch.acks {
                    let answer = match &error {
                        StoreError::Rejected(m) => StoreError::Rejected(m.clone()),
                        e => StoreError::Unavailable(e.to_string()),
                    };
                    let _ = ack.send(Err(answer));
                }
            }
        }
    }
}

/// One commit, timed and counted.
async fn commit(
    store: &Store,
    events: Vec<AgentEvent>,
    owner: Option<&str>,
) -> (Result<CommitOutcome, CommitFailure>, std::time::Duration) {
    let started = std::time::Instant::now();
    let result = store.commit(events, owner).await;
    let took = started.elapsed();
    if let Some(m) = crate::metrics::get() {
        match &result {
            Ok(outcome) => m.committed(&outcome.inserted, outcome.duplicates, took),
            Err(_) => m.commit_failed(),
        }
    }
    (result, took)
}
