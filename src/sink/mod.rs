//! Everything after the commit is a sink: the Redis stream, the live hub, OTLP export, Prometheus counting. The
//! pipeline hands each committed batch, in commit order, to every sink of one list ([`Sinks`]); a sink is one
//! module here and one line of wiring in `app`.

pub mod live;
pub mod otlp_export;
pub mod prometheus;
pub mod redis_stream;

use std::sync::Arc;

use crate::model::StoredEvent;
use crate::model::session_state::SessionStateChanged;

/// One committed batch, as every sink sees it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The outbox row that names these events until they are on the Redis stream (with a stream configured).
    pub outbox_seq: Option<i64>,
    /// Newly stored events, in commit order.
    pub events: Arc<[StoredEvent]>,
    /// Sessions whose state the batch changed.
    pub states: Arc<[SessionStateChanged]>,
}

/// What receives committed batches.
///
/// `deliver` runs on the committer's task, after the commit and after its requests were answered: it must return
/// at once, never wait for I/O or for a lock held long, or every ingest request would wait with it. What a sink
/// does when it cannot keep up (its backpressure policy) is stated on each implementation; none of them may slow
/// the committer or another sink.
pub trait Sink: Send + Sync {
    /// Takes one committed batch, without waiting.
    fn deliver(&self, batch: &Committed);
}

/// The sinks of one process, by name, in the order each batch reaches them.
#[derive(Clone, Default)]
pub struct Sinks(Vec<(&'static str, Arc<dyn Sink>)>);

impl Sinks {
    pub fn push(&mut self, name: &'static str, sink: Arc<dyn Sink>) {
        self.0.push((name, sink));
    }

    pub fn deliver(&self, batch: &Committed) {
        for (_, sink) in &self.0 {
            sink.deliver(batch);
        }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(name, _)| *name).collect()
    }
}
