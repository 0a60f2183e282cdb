//! The single committer: gathers queued requests into one batch, commits it, answers every request of it, and
//! hands what was stored to the sinks.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{Accepted, Submission};
use crate::inflight::InflightHold;
use crate::metrics::Instruments;
use crate::model::AgentEvent;
use crate::sink::{Committed, Sinks};
use crate::store::{CommitFailure, CommitOutcome, Store, StoreError};

/// Longest a commit waits for the rest of a concurrent wave of requests (only when the last batch was large).
const LINGER: Duration = Duration::from_millis(1);

/// Requests gathered for one commit: their events, and whom to answer for how many.
#[derive(Default)]
struct Batch {
    events: Vec<AgentEvent>,
    waiters: Vec<Waiter>,
}

/// A request waiting for its commit: where its answer goes, how many events it sent, and its share of the
/// in-flight budget (given back once it is answered, also when its client went away meanwhile).
struct Waiter {
    ack: oneshot::Sender<Result<Accepted, StoreError>>,
    events: usize,
    _hold: InflightHold,
}

impl Batch {
    fn push(&mut self, sub: Submission) {
        self.waiters.push(Waiter {
            ack: sub.ack,
            events: sub.events.len(),
            _hold: sub.hold,
        });
        self.events.extend(sub.events);
    }
}

pub(super) struct Committer {
    pub(super) store: Store,
    pub(super) max_batch_events: usize,
    pub(super) outbox_owner: Option<String>,
    pub(super) sinks: Sinks,
    pub(super) instruments: Arc<Instruments>,
}

/// Takes what is queued behind `first` into one batch. Under concurrent load the senders answered by the last
/// commit are sending again right now: committing the one request that came first would make all the others wait
/// a whole commit, so when fewer than half of the last batch's requests are there, it waits up to [`LINGER`] for
/// three quarters of them.
async fn gather(
    first: Submission,
    rx: &mut mpsc::Receiver<Submission>,
    last_requests: usize,
    max_events: usize,
) -> Batch {
    let mut batch = Batch::default();
    batch.push(first);
    while batch.events.len() < max_events {
        match rx.try_recv() {
            Ok(sub) => batch.push(sub),
            Err(_) => break,
        }
    }
    if batch.waiters.len() * 2 < last_requests {
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.waiters.len() * 4 < last_requests * 3 && batch.events.len() < max_events {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(sub)) => batch.push(sub),
                _ => break,
            }
        }
    }
    batch
}

impl Committer {
    /// Commits until every sender is gone and the queue is drained.
    pub(super) async fn run(self, mut rx: mpsc::Receiver<Submission>) {
        let mut last_requests = 0;
        // An outage fails every commit: it is logged when it starts and when it ends, not once per batch.
        let mut failing = false;
        while let Some(first) = rx.recv().await {
            let batch = gather(first, &mut rx, last_requests, self.max_batch_events).await;
            last_requests = batch.waiters.len();
            self.commit_batch(batch, &mut failing).await;
        }
    }

    async fn commit_batch(&self, batch: Batch, failing: &mut bool) {
        let (size, requests) = (batch.events.len(), batch.waiters.len());
        let (result, took) = self.commit(batch.events).await;
        match result {
            Ok(outcome) => {
                if std::mem::take(failing) {
                    tracing::info!("store available again; commits succeed");
                }
                tracing::debug!(
                    batch = size,
                    commit_us = took.as_micros() as u64,
                    requests,
                    inserted = outcome.inserted.len(),
                    duplicates = outcome.duplicates,
                    "committed"
                );
                for w in batch.waiters {
                    // The request may have gone away (client hung up); its events are committed all the same.
                    let _ = w.ack.send(Ok(Accepted { events: w.events }));
                }
                self.deliver(outcome);
            }
            // The store refused something in the batch (data it cannot hold): commit each request on its own, so
            // that only the one that carried it is refused.
            Err(CommitFailure {
                error: StoreError::Rejected(reason),
                events,
            }) if requests > 1 && events.len() == size => {
                tracing::warn!(requests, error = %reason, "the store refused data in a batch; committing its requests one by one");
                let mut events = events.into_iter();
                for w in batch.waiters {
                    let own: Vec<AgentEvent> = events.by_ref().take(w.events).collect();
                    let answer = match self.commit(own).await.0 {
                        Ok(outcome) => {
                            self.deliver(outcome);
                            Ok(Accepted { events: w.events })
                        }
                        Err(f) => Err(f.error),
                    };
                    let _ = w.ack.send(answer);
                }
            }
            Err(CommitFailure { error, .. }) => {
                if matches!(error, StoreError::Rejected(_)) {
                    tracing::warn!(batch = size, error = %error, "the store refused a request's data");
                } else if !*failing {
                    *failing = true;
                    tracing::warn!(batch = size, requests, error = %error, "commit failed; answering 503 until the store recovers");
                } else {
                    tracing::debug!(batch = size, requests, error = %error, "commit failed");
                }
                for w in batch.waiters {
                    let answer = match &error {
                        StoreError::Rejected(m) => StoreError::Rejected(m.clone()),
                        e => StoreError::Unavailable(e.to_string()),
                    };
                    let _ = w.ack.send(Err(answer));
                }
            }
        }
    }

    /// One commit, timed and counted.
    async fn commit(
        &self,
        events: Vec<AgentEvent>,
    ) -> (Result<CommitOutcome, CommitFailure>, Duration) {
        let started = std::time::Instant::now();
        let result = self
            .store
            .commit(events, self.outbox_owner.as_deref())
            .await;
        let took = started.elapsed();
        match &result {
            Ok(outcome) => {
                self.instruments
                    .committed(outcome.inserted.len(), outcome.duplicates, took)
            }
            Err(_) => self.instruments.commit_failed(),
        }
        (result, took)
    }

    fn deliver(&self, outcome: CommitOutcome) {
        if outcome.inserted.is_empty() {
            return;
        }
        self.sinks.deliver(&Committed {
            outbox_seq: outcome.outbox_seq,
            events: outcome.inserted.into(),
            states: outcome.states.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::model::hook::{HookContext, normalize_hook};
    use crate::sink::Sink;
    use crate::store::{SqliteSync, StoreConfig};

    fn event(source_app: &str) -> AgentEvent {
        let ctx = HookContext {
            source_app: Some(source_app.into()),
            ..Default::default()
        };
        normalize_hook(
            json!({"session_id": uuid::Uuid::new_v4().to_string(), "hook_event_name": "Stop"}),
            &ctx,
            chrono::Utc::now(),
        )
        .unwrap()
    }

    type Answer = oneshot::Receiver<Result<Accepted, StoreError>>;

    fn submission(events: Vec<AgentEvent>) -> (Submission, Answer) {
        let (ack, answer) = oneshot::channel();
        let sub = Submission {
            events,
            ack,
            hold: InflightHold::none(),
        };
        (sub, answer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_request_after_a_large_batch_waits_a_moment_for_the_rest_of_the_wave() {
        let (tx, mut rx) = mpsc::channel(64);
        // The last batch held 8 requests; 1 is queued now, 5 more come while the committer lingers (the sender
        // runs once the committer waits; timers have a resolution of a millisecond, the linger's own length).
        let (first, _a) = submission(vec![event("a")]);
        let sender = tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..5 {
                tokio::task::yield_now().await;
                let (sub, answer) = submission(vec![event("a")]);
                tx.send(sub).await.unwrap();
                answers.push(answer);
            }
            (tx, answers)
        });
        let started = tokio::time::Instant::now();
        let batch = gather(first, &mut rx, 8, 10_000).await;
        // Six of eight is three quarters: no need to wait out the linger.
        assert_eq!(batch.waiters.len(), 6);
        assert!(started.elapsed() < LINGER);
        let (tx, _answers) = sender.await.unwrap();

        // Nobody else comes: the linger ends after its time.
        let (first, _b) = submission(vec![event("a")]);
        let started = tokio::time::Instant::now();
        let batch = gather(first, &mut rx, 8, 10_000).await;
        assert_eq!(batch.waiters.len(), 1);
        assert_eq!(started.elapsed(), LINGER);

        // After a small batch there is no wave to wait for.
        let (first, _c) = submission(vec![event("a")]);
        let started = tokio::time::Instant::now();
        let batch = gather(first, &mut rx, 1, 10_000).await;
        assert_eq!(batch.waiters.len(), 1);
        assert_eq!(started.elapsed(), Duration::ZERO);

        // A batch never grows past its event limit, lingering or not.
        for _ in 0..4 {
            let (sub, _) = submission(vec![event("a"), event("a")]);
            tx.send(sub).await.unwrap();
        }
        let (first, _d) = submission(vec![event("a"), event("a")]);
        let batch = gather(first, &mut rx, 100, 5).await;
        assert_eq!(
            batch.events.len(),
            6,
            "takes whole requests until the limit is reached"
        );
    }

    /// Records what reaches it, as any sink would receive it.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<usize>>);

    impl Sink for Recorder {
        fn deliver(&self, batch: &Committed) {
            self.0.lock().unwrap().push(batch.events.len());
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_request_the_store_refuses_fails_alone_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hivewatch.db");
        let store = Store::open(&StoreConfig::Sqlite {
            path: path.clone(),
            synchronous: SqliteSync::Normal,
        })
        .await
        .unwrap();
        // A real refusal by SQLite: a trigger that aborts the insert of one source app's events.
        {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            conn.batch_execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON agent_events WHEN NEW.source_app = 'refused' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
            )
            .unwrap();
        }
        let recorder = Arc::new(Recorder::default());
        let mut sinks = Sinks::default();
        sinks.push("recorder", recorder.clone());
        let committer = Committer {
            store: store.clone(),
            max_batch_events: 10_000,
            outbox_owner: None,
            sinks,
            instruments: crate::metrics::Metrics::new().unwrap().instruments(),
        };
        // Three requests queued before the committer starts: one batch.
        let (tx, rx) = mpsc::channel(8);
        let mut answers = Vec::new();
        for app in ["good", "refused", "good"] {
            let (sub, answer) = submission(vec![event(app), event(app)]);
            tx.send(sub).await.unwrap();
            answers.push(answer);
        }
        drop(tx);
        committer.run(rx).await;
        let answers: Vec<_> = futures_util::future::join_all(answers).await;
        assert!(matches!(answers[0], Ok(Ok(Accepted { events: 2 }))));
        assert!(
            matches!(&answers[1], Ok(Err(StoreError::Rejected(m))) if m.contains("refused by the test")),
            "{:?}",
            answers[1]
        );
        assert!(matches!(answers[2], Ok(Ok(Accepted { events: 2 }))));
        assert_eq!(
            *recorder.0.lock().unwrap(),
            [2, 2],
            "each request committed on its own"
        );
        let stored = store
            .events(crate::store::EventQuery {
                source_app: Some("good".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.events.len(), 4);
    }
}
