//! hivewatch: an OpenTelemetry-native receiver for AI coding agents.
//!
//! ```text
//!  hook JSON ─┐
//!  OTLP gRPC ─┼─> receiver ──> normalize (model, pure) ──> redact ──> pipeline (group commit)
//!  OTLP HTTP ─┘                                                          │
//!                                                                        ▼
//!                                          store (SQLite or Postgres; the system of record) + outbox row
//!                                                                        │
//!                                  query API (events, sessions, timeline)   Redis stream (from the outbox)
//! ```
//!
//! An ingest request is answered only after its events are committed: `pipeline` batches the events of many
//! concurrent requests into one transaction, so durability costs one commit per batch, not per request.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod hook_client;
pub mod http;
pub mod live;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod receiver;
pub mod store;
pub mod stream;
