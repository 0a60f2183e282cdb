//! What the HTTP handlers share, split by side: [`IngestState`] for the receivers (OTLP/HTTP, hooks,
//! transcripts), [`ReadState`] for the query API, the live stream and `/metrics`. A leaf of the data flow: it names
//! the components the handlers use, and none of them uses a handler.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Tokens;
use crate::inflight::InflightBudget;
use crate::metrics::{Instruments, Metrics};
use crate::model::limits::Limits;
use crate::pipeline::Pipeline;
use crate::sink::live::Hub;
use crate::sink::redis_stream::StreamStatus;
use crate::store::Store;

#[derive(Clone)]
pub struct IngestState {
    pub pipeline: Pipeline,
    /// Transcripts are written straight to the store (they are no events and feed no sink).
    pub store: Store,
    /// Largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// Items per request, attributes per item, their length and nesting.
    pub limits: Limits,
    /// Bytes of ingest requests held at once (`--max-inflight-bytes`).
    pub inflight: InflightBudget,
    /// Longest a client may take to send a request body.
    pub body_read_timeout: Duration,
    pub instruments: Arc<Instruments>,
    pub tokens: Tokens,
}

#[derive(Clone)]
pub struct ReadState {
    pub store: Store,
    /// The live stream's fan-out.
    pub hub: Hub,
    /// The Redis stream publisher's state, when a stream is configured.
    pub stream: Option<Arc<StreamStatus>>,
    /// What `/metrics` renders.
    pub metrics: Metrics,
    pub tokens: Tokens,
    /// Turns true when shutdown starts: long-lived connections (the live stream) close then.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}
