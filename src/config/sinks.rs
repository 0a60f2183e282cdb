//! The settings of what comes after the commit: the Redis stream, OTLP export, the live stream, retention. Each
//! struct checks itself and builds its component's configuration.

use std::time::Duration;

use clap::Args;

use super::ConfigError;
use super::secret::{Secret, parse_duration};
use crate::sink::otlp_export::{ExportConfig, ExportProtocol};
use crate::sink::redis_stream::StreamConfig;

#[derive(Debug, Args)]
#[command(next_help_heading = "Redis stream")]
pub struct StreamArgs {
    /// Redis URL (`redis://[:password@]host:port[/db]`): every committed event is also added to a Redis stream.
    #[arg(long, env = "HIVEWATCH_REDIS_URL")]
    pub redis_url: Option<Secret>,
    /// Key of the Redis stream.
    #[arg(
        long,
        env = "HIVEWATCH_REDIS_STREAM_KEY",
        default_value = "hivewatch:events"
    )]
    pub redis_stream_key: String,
    /// Approximate bound on the stream's length (`XADD … MAXLEN ~ n`).
    #[arg(long, env = "HIVEWATCH_REDIS_STREAM_MAXLEN", default_value_t = 100_000)]
    pub redis_stream_maxlen: u64,
    /// Outbox rows that another hivewatch left unpublished for this long are published by this one, in seconds.
    #[arg(long, env = "HIVEWATCH_OUTBOX_TAKEOVER_SECS", default_value_t = 30)]
    pub outbox_takeover_secs: u64,
    /// A stable name for this process (a pod or host name), owner of its Redis outbox rows: a restart under the
    /// same name publishes what the previous run left at once. Default: the host name, pid and a random suffix
    /// with Postgres; `embedded` with SQLite.
    #[arg(long, env = "HIVEWATCH_INSTANCE_ID")]
    pub instance_id: Option<String>,
}

impl StreamArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(Secret(url)) = &self.redis_url
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
        {
            return Err(ConfigError::Invalid(format!(
                "--redis-url must start with redis://, rediss:// or unix:// (got {:?})",
                url.split(':').next().unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// The stream's configuration, when a Redis URL is set.
    pub fn config(&self) -> Option<StreamConfig> {
        let url = self
            .redis_url
            .as_ref()
            .map(|s| s.0.trim())
            .filter(|u| !u.is_empty())?;
        Some(StreamConfig {
            url: url.to_string(),
            key: self.redis_stream_key.clone(),
            max_len: self.redis_stream_maxlen,
            takeover_after: Duration::from_secs(self.outbox_takeover_secs),
            instance_id: self.instance_id.clone().filter(|i| !i.trim().is_empty()),
        })
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "OTLP export")]
pub struct ExportArgs {
    /// Export the spans assembled from hook events over OTLP to this endpoint (gRPC: `http://host:4317`; HTTP:
    /// the full `…/v1/traces` URL with `--otlp-export-protocol http`).
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_ENDPOINT")]
    pub otlp_export_endpoint: Option<String>,
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_PROTOCOL", value_enum, default_value_t = ExportProtocol::Grpc)]
    pub otlp_export_protocol: ExportProtocol,
    /// Also export the OTLP spans other senders sent, as they came.
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_FORWARD_SPANS")]
    pub otlp_export_forward_spans: bool,
    /// A session without SessionEnd gets its session span once idle this long (`30m`, `90s`).
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_SESSION_IDLE", value_parser = parse_duration, default_value = "30m")]
    pub otlp_export_session_idle: Duration,
}

impl ExportArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(e) = &self.otlp_export_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "--otlp-export-endpoint must be an http:// or https:// URL (got {e:?})"
            )));
        }
        Ok(())
    }

    /// The exporter's configuration, when an endpoint is set.
    pub fn config(&self) -> Option<ExportConfig> {
        let endpoint = self
            .otlp_export_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())?;
        Some(ExportConfig {
            endpoint: endpoint.to_string(),
            protocol: self.otlp_export_protocol,
            session_idle: self.otlp_export_session_idle,
            forward_spans: self.otlp_export_forward_spans,
        })
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Live stream")]
pub struct LiveArgs {
    /// Seconds between heartbeats on an idle live-stream connection.
    #[arg(long, env = "HIVEWATCH_LIVE_HEARTBEAT_SECS", default_value_t = 10)]
    pub live_heartbeat_secs: u64,
}

impl LiveArgs {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.live_heartbeat_secs.max(1))
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionArgs {
    /// Delete events older than this (`90d`, `12h`, `30m`, `45s`); unset keeps everything.
    #[arg(long = "retention", env = "HIVEWATCH_RETENTION", value_parser = parse_duration)]
    pub age: Option<Duration>,
    /// How often the retention pass runs.
    #[arg(long = "retention-interval", env = "HIVEWATCH_RETENTION_INTERVAL", value_parser = parse_duration, default_value = "1h")]
    pub interval: Duration,
}

impl RetentionArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.age.is_some_and(|r| r.is_zero()) || self.interval.is_zero() {
            return Err(ConfigError::Invalid(
                "--retention and --retention-interval must be longer than zero".into(),
            ));
        }
        Ok(())
    }
}
