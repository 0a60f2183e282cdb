//! Session state changes between replicas (with Redis configured): each replica PUBLISHes the changes its commits
//! and sweeps make on one channel, and every replica's hub takes them from there, so that every live client sees
//! every change whichever replica stored the event. Pub/sub, not the stream: a state change is a live notice, and
//! one lost while Redis is away is made good by the next read of the sessions list (the board re-reads it).
//!
//! Backpressure: `deliver` only queues into a bounded channel (full: the changes are dropped and counted as lost
//! live messages); one task publishes, so neither Redis nor a slow network ever holds up the committer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Hub;
use crate::model::session_state::SessionStateChanged;
use crate::sink::{Committed, Sink};

/// Batches of changes waiting to be published.
const QUEUE: usize = 1024;

/// The channel beside stream `key`.
pub fn channel(key: &str) -> String {
    format!("{key}:session-states")
}

/// Where this process's state changes go: straight to its own hub, or through Redis to every replica's.
#[derive(Clone)]
pub enum StatesOut {
    Hub(Hub),
    Redis {
        tx: mpsc::Sender<Arc<[SessionStateChanged]>>,
        hub: Hub,
    },
}

impl StatesOut {
    /// Starts the publisher and the follower that feeds `hub` from the channel.
    pub fn redis(
        hub: Hub,
        url: String,
        key: &str,
    ) -> (StatesOut, [tokio::task::JoinHandle<()>; 2]) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let channel = channel(key);
        let tasks = [
            tokio::spawn(publish(url.clone(), channel.clone(), rx)),
            tokio::spawn(follow(hub.clone(), url, channel)),
        ];
        (StatesOut::Redis { tx, hub }, tasks)
    }

    /// Hands changes on without waiting.
    pub fn publish(&self, changes: Arc<[SessionStateChanged]>) {
        if changes.is_empty() {
            return;
        }
        match self {
            StatesOut::Hub(hub) => hub.publish_states(changes),
            StatesOut::Redis { tx, hub } => {
                let n = changes.len() as u64;
                if tx.try_send(changes).is_err() {
                    hub.stats.lost.fetch_add(n, Ordering::Relaxed);
                    hub.stats.dropped.fetch_add(n, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Sink for StatesOut {
    fn deliver(&self, batch: &Committed) {
        self.publish(batch.states.clone());
    }
}

async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

async fn publish(url: String, channel: String, mut rx: mpsc::Receiver<Arc<[SessionStateChanged]>>) {
    let mut conn = None;
    let mut logged = false;
    while let Some(changes) = rx.recv().await {
        if conn.is_none() {
            match connect(&url).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    if !std::mem::replace(&mut logged, true) {
                        tracing::warn!(error = %e, "cannot publish session states to Redis; dropping them until it answers");
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let mut pipe = redis::pipe();
        for change in changes.iter() {
            if let Ok(text) = serde_json::to_string(change) {
                pipe.cmd("PUBLISH").arg(&channel).arg(text).ignore();
            }
        }
        match pipe.query_async::<()>(c).await {
            Ok(()) => {
                if std::mem::take(&mut logged) {
                    tracing::info!("session states reach Redis again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut logged, true) {
                    tracing::warn!(error = %e, "cannot publish session states to Redis; dropping them until it answers");
                }
                conn = None;
            }
        }
    }
}

/// Feeds the hub with every replica's state changes; resubscribes after a failure.
async fn follow(hub: Hub, url: String, channel: String) {
    let mut logged = false;
    loop {
        let subscribed = async {
            let mut pubsub = redis::Client::open(url.as_str())?
                .get_async_pubsub()
                .await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        }
        .await;
        match subscribed {
            Ok(pubsub) => {
                if std::mem::take(&mut logged) {
                    tracing::info!("live session states read Redis again");
                }
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Ok(text) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if let Ok(change) = serde_json::from_str::<SessionStateChanged>(&text) {
                        hub.publish_states(vec![change].into());
                    }
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut logged, true) {
                    tracing::warn!(error = %e, "live session states cannot read Redis; retrying");
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
