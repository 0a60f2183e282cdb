//! The event model and the pure functions that produce it: no I/O, no tokio.

pub mod event;
pub mod hook;
pub mod ids;
pub mod limits;
pub mod otlp;
pub mod redact;

pub use event::{AgentEvent, Severity, Source, Status, StoredEvent};
pub use ids::{SpanId, TraceId};
