//! hivewatch: an OpenTelemetry-native receiver for AI coding agents.
//!
//! ```text
//!  hook JSON ─┐                                         (pure)
//!  OTLP gRPC ─┼─> receiver ──> model: normalize, redact ──> pipeline ──> store (SQLite | Postgres)
//!  OTLP HTTP ─┘   (state, inflight)                         (group      │  + outbox row, sessions,
//!                                                            commit)    │    tool-call halves
//!                                                                       ▼
//!                              sinks, one list, each committed batch in commit order:
//!                                ├─ prometheus   count events, tools, failures, delays → /metrics
//!                                ├─ redis_stream XADD through the outbox (at least once, in order)
//!                                ├─ live         hub → WebSocket clients (fed from Redis when configured)
//!                                └─ otlp_export  assembled session/turn/tool spans → Tempo, any OTLP back-end
//!
//!  api (read side): events, sessions, timelines, transcripts, the dashboard's WebSocket ── reads the store
//! ```
//!
//! An ingest request is answered only after its events are committed: `pipeline` batches the events of many
//! concurrent requests into one transaction, so durability costs one commit per batch, not per request. What
//! comes after the commit never slows it: every sink takes its batch without waiting (see `sink::Sink`).
//!
//! `app` wires it together and shuts it down in stages; `config` is `serve`'s configuration, one struct per
//! component; `cli` the other subcommands; `hook_client` the `hivewatch hook` side that runs inside Claude Code.

pub mod api;
pub mod app;
pub mod attention;
pub mod auth;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod hook_client;
pub mod http;
pub mod inflight;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod receiver;
pub mod sink;
pub mod state;
pub mod store;
