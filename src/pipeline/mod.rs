//! Group commit: the events of many concurrent ingest requests are committed in one transaction, and each
//! request is answered once the transaction that holds its events has committed.
//!
//! Requests queue in a bounded channel. The committer takes everything queued (up to a batch limit), commits it,
//! and answers every request of the batch; while it commits, the next batch queues up. A full queue answers
//! `Overloaded` after a short wait, which the receivers turn into 503 / `UNAVAILABLE`, retryable by any OTLP
//! exporter.

mod committer;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::Meter;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::inflight::InflightHold;
use crate::metrics::Instruments;
use crate::model::AgentEvent;
use crate::model::redact::{RedactSettings, redact_json};
use crate::sink::Sinks;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Requests that may wait for a commit.
    pub queue_capacity: usize,
    /// Events in one transaction, at most (a larger request still commits whole).
    pub max_batch_events: usize,
    /// How long a request waits for room in a full queue before it is refused.
    pub enqueue_timeout: Duration,
    /// The owner of the outbox rows each commit writes, when a Redis stream is configured.
    pub outbox_owner: Option<String>,
    /// Redaction beyond the built-in rules (`--redact-pattern`, `--drop-prompts`, `--drop-tool-output`).
    pub redact: Arc<RedactSettings>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: 4096,
            max_batch_events: 10_000,
            enqueue_timeout: Duration::from_millis(500),
            outbox_owner: None,
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
    /// Starts the committer, which hands every committed batch to `sinks`. It ends once every `Pipeline` clone is
    /// dropped and the queue is drained.
    pub fn start(
        store: Store,
        config: PipelineConfig,
        sinks: Sinks,
        instruments: Arc<Instruments>,
    ) -> (Pipeline, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let committer = committer::Committer {
            store,
            max_batch_events: config.max_batch_events.max(1),
            outbox_owner: config.outbox_owner,
            sinks,
            instruments,
        };
        let task = tokio::spawn(committer.run(rx));
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

    /// Requests waiting for a commit and the queue's capacity on `/metrics`; the gauges hold the queue only
    /// weakly, so that they never keep the committer alive at shutdown.
    #[rustfmt::skip]
    pub fn register_gauges(&self, meter: &Meter) {
        crate::metrics::observe!(meter, &Arc::new(self.tx.downgrade()),
            gauge "hivewatch_pipeline_queue_depth" "Ingest requests waiting for a commit"
                => |q: &mpsc::WeakSender<Submission>| q.upgrade().map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as u64),
            gauge "hivewatch_pipeline_queue_capacity" "Ingest requests that may wait before new ones get 503"
                => |q: &mpsc::WeakSender<Submission>| q.upgrade().map_or(0, |tx| tx.max_capacity() as u64),
        );
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
