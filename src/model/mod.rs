//! The event model and the pure functions that produce it: no I/O, no tokio.

pub mod event;
pub mod event_type;
pub mod hook;
pub mod hook_events;
pub mod ids;
pub mod limits;
pub mod notification;
pub mod otlp;
pub mod redact;
pub mod session_state;
pub mod sessions;
pub mod time;
pub mod tool_calls;
pub mod transcripts;
pub mod vcs;

pub use event::{AgentEvent, Severity, Source, Status, StoredEvent};
pub use event_type::EventType;
pub use ids::{SpanId, TraceId};
