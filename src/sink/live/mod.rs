//! The live hub behind the WebSocket stream (`api::dashboard`). Committed events reach it in commit order, either
//! as a sink of this process's committer or, with Redis configured, from the Redis stream ([`redis_feed`], so that
//! the clients of every replica see every replica's events); it hands each event to every client whose filter
//! matches.
//!
//! Backpressure: the hub never waits. Taking a batch from the committer is a `try_send` into the hub's queue
//! (full: the batch is dropped for every client, counted as lost); every client has a bounded queue, and when one
//! is full the event is dropped for that client only, counted, and the client is told how many it missed. One slow
//! client therefore delays neither the others nor ingest. Each event is serialized once, however many clients
//! receive it.

mod redis_feed;
mod redis_states;

pub use redis_feed::follow_redis;
pub use redis_states::StatesOut;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Committed, Sink};
use crate::model::StoredEvent;
use crate::model::session_state::SessionStateChanged;
use crate::model::sessions::SessionSummary;

/// Events a client may have queued before it starts missing some.
pub const CLIENT_QUEUE: usize = 1024;
/// Committed batches waiting for the hub's fan-out.
const HUB_QUEUE: usize = 1024;

/// What a client wants to see; an empty list does not filter on its field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    pub source_apps: Vec<String>,
    pub sessions: Vec<Uuid>,
    pub agents: Vec<String>,
    pub event_types: Vec<String>,
}

impl Filter {
    pub fn matches(&self, ev: &StoredEvent) -> bool {
        let e = &ev.event;
        (self.source_apps.is_empty() || self.source_apps.contains(&e.source_app))
            && (self.sessions.is_empty() || self.sessions.contains(&e.session_id))
            && (self.agents.is_empty() || self.agents.contains(&e.agent_id))
            && (self.event_types.is_empty()
                || self.event_types.iter().any(|t| e.event_type == t.as_str()))
    }

    /// A session's state change goes to the clients that follow its session or source app (the agent and
    /// event-type filters choose events, not sessions).
    pub fn matches_session(&self, s: &SessionSummary) -> bool {
        (self.source_apps.is_empty() || self.source_apps.contains(&s.source_app))
            && (self.sessions.is_empty() || self.sessions.contains(&s.session_id))
    }
}

/// One event or session state change on its way to clients, serialized once.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: Subject,
    /// `{"type":"event","event":…}` or `{"type":"session_state","session":…,"previous":…}`
    pub frame: Arc<str>,
}

#[derive(Debug, Clone)]
pub enum Subject {
    Event(Arc<StoredEvent>),
    State(Arc<SessionStateChanged>),
}

/// What reaches the hub's fan-out.
enum Item {
    Events(Arc<[StoredEvent]>),
    States(Arc<[SessionStateChanged]>),
}

struct Client {
    filter: Filter,
    tx: mpsc::Sender<Outgoing>,
    info: Arc<ClientInfo>,
}

/// What `GET /observability/dashboard/connections` shows of a client.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub peer: String,
    pub connected_at: DateTime<Utc>,
    pub sent: AtomicU64,
    pub missed: AtomicU64,
}

#[derive(Default)]
struct Registry {
    clients: HashMap<u64, Client>,
    /// Clients by the sessions their filter names; those naming none are under `None`. An event is checked
    /// against its session's clients and the unrestricted ones only, not against every client.
    by_session: HashMap<Option<Uuid>, Vec<u64>>,
    /// Broadcast messages go to every client, outside the event queues.
    notices: HashMap<u64, mpsc::UnboundedSender<Arc<str>>>,
}

impl Registry {
    fn index(&mut self, id: u64, filter: &Filter) {
        if filter.sessions.is_empty() {
            self.by_session.entry(None).or_default().push(id);
        }
        let mut sessions = filter.sessions.clone();
        sessions.sort_unstable();
        sessions.dedup();
        for s in sessions {
            self.by_session.entry(Some(s)).or_default().push(id);
        }
    }

    fn unindex(&mut self, id: u64) {
        self.by_session.retain(|_, ids| {
            ids.retain(|i| *i != id);
            !ids.is_empty()
        });
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("stats", &self.stats).finish()
    }
}

/// The fan-out point; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    registry: Arc<Mutex<Registry>>,
    tx: mpsc::Sender<Item>,
    next_id: Arc<AtomicU64>,
    pub stats: Arc<HubStats>,
    /// How often an idle client gets a heartbeat.
    pub heartbeat: std::time::Duration,
}

#[derive(Debug, Default)]
pub struct HubStats {
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    pub connections: AtomicU64,
    /// Events the hub itself could not take (its queue was full): every client missed them.
    pub lost: AtomicU64,
}

/// A registered client's end: its queue, its broadcast notices, and its counters.
pub struct Subscription {
    pub info: Arc<ClientInfo>,
    pub events: mpsc::Receiver<Outgoing>,
    pub notices: mpsc::UnboundedReceiver<Arc<str>>,
    hub: Hub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut reg = self.hub.registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.clients.remove(&self.info.id);
        reg.notices.remove(&self.info.id);
        reg.unindex(self.info.id);
        self.hub
            .stats
            .connections
            .store(reg.clients.len() as u64, Ordering::Relaxed);
    }
}

impl Subscription {
    /// Replaces the filter the hub applies for this client.
    pub fn set_filter(&self, filter: Filter) {
        let mut reg = self.hub.registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.unindex(self.info.id);
        reg.index(self.info.id, &filter);
        if let Some(c) = reg.clients.get_mut(&self.info.id) {
            c.filter = filter;
        }
    }
}

impl Hub {
    /// Starts the fan-out task; its counters go on `/metrics` through `meter`.
    pub fn start(heartbeat: std::time::Duration, meter: &opentelemetry::metrics::Meter) -> Hub {
        let (tx, rx) = mpsc::channel(HUB_QUEUE);
        let hub = Hub {
            registry: Arc::default(),
            tx,
            next_id: Arc::new(AtomicU64::new(1)),
            stats: Arc::default(),
            heartbeat,
        };
        #[rustfmt::skip]
        crate::metrics::observe!(meter, &hub.stats,
            gauge "hivewatch_websocket_connections" "Open live-stream WebSocket connections" => |s: &HubStats| s.connections.load(Ordering::Relaxed),
            counter "hivewatch_websocket_messages_sent" "Events handed to live-stream clients" => |s: &HubStats| s.sent.load(Ordering::Relaxed),
            counter "hivewatch_websocket_messages_dropped" "Events a slow live-stream client missed (its queue was full)" => |s: &HubStats| s.dropped.load(Ordering::Relaxed),
        );
        tokio::spawn(hub.clone().fan_out(rx));
        hub
    }

    /// Hands a committed batch to the hub without waiting. When the hub itself is that far behind, the batch is
    /// dropped for everyone and counted.
    pub fn publish(&self, events: Arc<[StoredEvent]>) {
        let n = events.len() as u64;
        if self.tx.try_send(Item::Events(events)).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
            self.stats.lost.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Hands session state changes to the hub without waiting (dropped and counted like events when it is full).
    pub fn publish_states(&self, states: Arc<[SessionStateChanged]>) {
        let n = states.len() as u64;
        if n > 0 && self.tx.try_send(Item::States(states)).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
            self.stats.lost.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn subscribe(&self, peer: String, filter: Filter) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, events) = mpsc::channel(CLIENT_QUEUE);
        let (notice_tx, notices) = mpsc::unbounded_channel();
        let info = Arc::new(ClientInfo {
            id,
            peer,
            connected_at: Utc::now(),
            sent: AtomicU64::new(0),
            missed: AtomicU64::new(0),
        });
        let mut reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.index(id, &filter);
        reg.clients.insert(
            id,
            Client {
                filter,
                tx,
                info: info.clone(),
            },
        );
        reg.notices.insert(id, notice_tx);
        self.stats
            .connections
            .store(reg.clients.len() as u64, Ordering::Relaxed);
        Subscription {
            info,
            events,
            notices,
            hub: self.clone(),
        }
    }

    /// Sends `message` to every connected client; returns how many.
    pub fn broadcast(&self, message: &serde_json::Value) -> usize {
        let frame: Arc<str> = serde_json::json!({"type": "broadcast", "message": message})
            .to_string()
            .into();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        reg.notices
            .values()
            .filter(|tx| tx.send(frame.clone()).is_ok())
            .count()
    }

    /// The connected clients, for the connections endpoint.
    pub fn clients(&self) -> Vec<(Arc<ClientInfo>, Filter)> {
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = reg
            .clients
            .values()
            .map(|c| (c.info.clone(), c.filter.clone()))
            .collect();
        out.sort_by_key(|(i, _)| i.id);
        out
    }

    async fn fan_out(self, mut rx: mpsc::Receiver<Item>) {
        while let Some(item) = rx.recv().await {
            let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            if reg.clients.is_empty() {
                continue;
            }
            match item {
                Item::Events(batch) => {
                    for ev in batch.iter() {
                        let mut outgoing = None;
                        self.offer(
                            &reg,
                            ev.event.session_id,
                            |f| f.matches(ev),
                            || Outgoing {
                                subject: Subject::Event(Arc::new(ev.clone())),
                                frame: event_frame(ev).into(),
                            },
                            &mut outgoing,
                        );
                    }
                }
                Item::States(changes) => {
                    for c in changes.iter() {
                        let mut outgoing = None;
                        self.offer(
                            &reg,
                            c.session.session_id,
                            |f| f.matches_session(&c.session),
                            || Outgoing {
                                subject: Subject::State(Arc::new(c.clone())),
                                frame: state_frame(c).into(),
                            },
                            &mut outgoing,
                        );
                    }
                }
            }
        }
    }

    /// Queues one message for the clients of `session` and the unrestricted ones that `matches`; serialized (by
    /// `make`) once, for the first of them.
    fn offer(
        &self,
        reg: &Registry,
        session: Uuid,
        matches: impl Fn(&Filter) -> bool,
        make: impl FnOnce() -> Outgoing,
        outgoing: &mut Option<Outgoing>,
    ) {
        let none = Vec::new();
        let unrestricted = reg.by_session.get(&None).unwrap_or(&none);
        let of_session = reg.by_session.get(&Some(session)).unwrap_or(&none);
        let mut make = Some(make);
        for id in unrestricted.iter().chain(of_session) {
            let Some(client) = reg.clients.get(id) else {
                continue;
            };
            if !matches(&client.filter) {
                continue;
            }
            let out = match outgoing {
                Some(out) => out,
                None => outgoing.insert(make.take().expect("made once")()),
            };
            if client.tx.try_send(out.clone()).is_ok() {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                client.info.missed.fetch_add(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Sink for Hub {
    fn deliver(&self, batch: &Committed) {
        self.publish(batch.events.clone());
        self.publish_states(batch.states.clone());
    }
}

pub fn state_frame(c: &SessionStateChanged) -> String {
    serde_json::json!({"type": "session_state", "session": c.session, "previous": c.previous})
        .to_string()
}

pub fn event_frame(ev: &StoredEvent) -> String {
    serde_json::json!({"type": "event", "event": ev}).to_string()
}
