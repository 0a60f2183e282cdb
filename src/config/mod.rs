//! Configuration of `serve`: one flattened struct per component, each checking itself, plus the checks that span
//! two of them. Every flag is also an `HIVEWATCH_*` variable; `--help` is the reference and groups them by
//! component. Values that every component parses alike (secrets, durations) are in [`secret`].

mod attention;
mod ingest;
mod secret;
mod sinks;
mod store;

use clap::Args;

use crate::pipeline::PipelineConfig;
use crate::receiver::otlp_grpc::GrpcBounds;

pub use attention::AttentionArgs;
pub use ingest::{AuthArgs, LimitArgs, ListenArgs, PipelineArgs, RedactionArgs, TimeoutArgs};
pub use secret::{Secret, parse_duration};
pub use sinks::{ExportArgs, LiveArgs, RetentionArgs, StreamArgs};
pub use store::StoreArgs;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no data directory: pass --data-dir or set HIVEWATCH_DATA_DIR")]
    NoDataDir,
    #[error(
        "unsupported database URL scheme {0:?}: use postgres://user@host:port/database or a sqlite: path"
    )]
    UnsupportedDatabase(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub redaction: RedactionArgs,
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub export: ExportArgs,
    #[command(flatten)]
    pub live: LiveArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub attention: AttentionArgs,
}

impl ServeArgs {
    /// Checks everything that can be checked before a port is bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.store.store_config()?;
        self.redaction.settings()?;
        self.listen.validate()?;
        self.limits.validate()?;
        self.pipeline.validate()?;
        self.stream.validate()?;
        self.export.validate()?;
        self.retention.validate()?;
        self.attention.validate()?;
        self.auth.validate(self.listen.exposed())
    }

    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            queue_capacity: self.pipeline.queue_capacity,
            max_batch_events: self.pipeline.max_batch_events,
            redact: std::sync::Arc::new(self.redaction.settings().unwrap_or_default()),
            ..Default::default()
        }
    }

    pub fn grpc_bounds(&self) -> GrpcBounds {
        GrpcBounds {
            max_message_bytes: self.limits.max_body_bytes,
            request: self.timeouts.body_read(),
            max_connection_age: self.timeouts.grpc_max_connection_age(),
            opening: self.timeouts.header_read(),
        }
    }

    pub fn shutdown_timeout(&self) -> std::time::Duration {
        self.timeouts.shutdown()
    }
}
