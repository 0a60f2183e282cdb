//! Command line and environment: every flag is also an `HIVEWATCH_*` variable; `--help` is the reference.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::limits::Limits;
use crate::pipeline::PipelineConfig;
use crate::store::{SqliteSync, StoreConfig};

#[derive(Debug, Parser)]
#[command(
    name = "hivewatch",
    version,
    about = "Observability for AI coding agents: OTLP and hook events in, \
stored, queried and streamed out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log output format (logs go to stderr).
    #[arg(long, global = true, env = "HIVEWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the receiver: OTLP gRPC, OTLP HTTP, the hook endpoint and the query API.
    Serve(Box<ServeArgs>),
    /// Create or update the database schema, then exit (`serve` also does this at start).
    Migrate(StoreArgs),
    /// Read the Redis stream as a member of a consumer group: print each event, acknowledge it, and take over
    /// entries a dead consumer left unacknowledged.
    Consume(crate::cli::consume::ConsumeArgs),
    /// Follow the live stream of a running hivewatch in the terminal, one line per event.
    Tail(crate::cli::tail::TailArgs),
    /// Query a running hivewatch: events or sessions, as a table or JSON lines.
    Query(crate::cli::query::QueryArgs),
    /// For Claude Code hooks: read one hook payload on stdin and deliver it; always exits 0, prints nothing.
    Hook(crate::hook_client::HookArgs),
    /// Deliver what `hook` spooled while the receiver was unreachable, and pending transcripts.
    Flush(crate::hook_client::FlushArgs),
    /// Register `hivewatch hook` for every Claude Code hook event in settings.json.
    InstallHooks(crate::cli::install_hooks::InstallArgs),
    /// Check the hook setup: hooks installed, receiver reachable, spool size.
    Doctor(crate::hook_client::DoctorArgs),
    /// Print the version.
    Version,
}

#[derive(Args)]
pub struct StoreArgs {
    /// Where hivewatch keeps its data (the SQLite database, unless --database-url says otherwise).
    #[arg(long, env = "HIVEWATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `postgres://user:password@host:port/database` selects Postgres; a `sqlite:` path or
    /// nothing means SQLite (in the data directory unless a path is given).
    #[arg(long, env = "HIVEWATCH_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Postgres connections per process (the committer uses one at a time; the rest serve queries).
    #[arg(long, env = "HIVEWATCH_DATABASE_POOL_SIZE", default_value_t = 8)]
    pub database_pool_size: u32,
    /// SQLite durability: `full` fsyncs every commit (survives power loss), `normal` survives a process crash.
    #[arg(long, env = "HIVEWATCH_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,
}

impl fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A database URL can hold a password: never print it.
        f.debug_struct("StoreArgs")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "[REDACTED]"),
            )
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("database_pool_size", &self.database_pool_size)
            .finish()
    }
}

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

impl StoreArgs {
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => dirs::data_dir()
                .map(|d| d.join("hivewatch"))
                .ok_or(ConfigError::NoDataDir),
        }
    }

    pub fn store_config(&self) -> Result<StoreConfig, ConfigError> {
        let path = match self
            .database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => self.data_dir()?.join("hivewatch.db"),
            Some(url) => {
                if let Some(rest) = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                {
                    PathBuf::from(rest)
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    return Ok(StoreConfig::Postgres {
                        url: url.to_string(),
                        pool_size: self.database_pool_size.max(2),
                    });
                } else {
                    let scheme = url.split(':').next().unwrap_or_default();
                    return Err(ConfigError::UnsupportedDatabase(scheme.to_string()));
                }
            }
        };
        Ok(StoreConfig::Sqlite {
            path,
            synchronous: self.sqlite_synchronous,
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// OTLP/gRPC listen address; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "HIVEWATCH_GRPC_ADDR", default_value = "127.0.0.1:4317")]
    pub grpc_addr: SocketAddr,
    /// HTTP listen address: OTLP/HTTP, the hook endpoint, the API; port 0 picks a free port.
    #[arg(long, env = "HIVEWATCH_HTTP_ADDR", default_value = "127.0.0.1:4318")]
    pub http_addr: SocketAddr,
    /// Largest request body accepted (after decompression), and largest gRPC message, in bytes.
    #[arg(long, env = "HIVEWATCH_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Bytes of ingest requests held at once (bodies being read, decoded or waiting for their commit); a request
    /// that would go over is answered 503 / UNAVAILABLE. Bounds memory under any load.
    #[arg(long, env = "HIVEWATCH_MAX_INFLIGHT_BYTES", default_value_t = 128 * 1024 * 1024)]
    pub max_inflight_bytes: usize,
    /// Most items (spans, log records, metric points, hook events) in one ingest request; more → 413.
    #[arg(long, env = "HIVEWATCH_MAX_EVENTS_PER_REQUEST", default_value_t = Limits::default().max_items)]
    pub max_events_per_request: usize,
    /// Most attributes on one span, log record or resource; most keys in one object of a hook payload.
    /// An item over the limit is refused alone, with a message naming the attribute.
    #[arg(long, env = "HIVEWATCH_MAX_ATTRIBUTES", default_value_t = Limits::default().max_attributes)]
    pub max_attributes: usize,
    /// Longest attribute key or value, or string in a hook payload, in bytes.
    #[arg(long, env = "HIVEWATCH_MAX_ATTRIBUTE_BYTES", default_value_t = Limits::default().max_attribute_bytes)]
    pub max_attribute_bytes: usize,
    /// Deepest nesting of arrays and maps in an attribute or a hook payload.
    #[arg(long, env = "HIVEWATCH_MAX_DEPTH", default_value_t = Limits::default().max_depth)]
    pub max_depth: usize,
    /// Seconds a client may take to send a request's headers before it is disconnected.
    #[arg(long, env = "HIVEWATCH_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds after which a gRPC connection is asked to close (GOAWAY; in-flight calls finish, exporters
    /// reconnect): a client that never completes a request cannot hold a connection longer.
    #[arg(
        long,
        env = "HIVEWATCH_GRPC_MAX_CONNECTION_AGE_SECS",
        default_value_t = 300
    )]
    pub grpc_max_connection_age_secs: u64,
    /// Seconds a client may take to send a request body before it is answered 408.
    #[arg(long, env = "HIVEWATCH_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,
    /// Ingest requests that may wait for a commit before new ones are refused with 503 / UNAVAILABLE.
    #[arg(long, env = "HIVEWATCH_QUEUE_CAPACITY", default_value_t = 4096)]
    pub queue_capacity: usize,
    /// Most events committed in one transaction.
    #[arg(long, env = "HIVEWATCH_MAX_BATCH_EVENTS", default_value_t = 10_000)]
    pub max_batch_events: usize,
    /// How long shutdown waits for in-flight requests before it gives up on them, in seconds.
    #[arg(long, env = "HIVEWATCH_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
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
    /// Export the spans assembled from hook events over OTLP to this endpoint (gRPC: `http://host:4317`; HTTP:
    /// the full `…/v1/traces` URL with `--otlp-export-protocol http`).
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_ENDPOINT")]
    pub otlp_export_endpoint: Option<String>,
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_PROTOCOL", value_enum, default_value_t = crate::export::ExportProtocol::Grpc)]
    pub otlp_export_protocol: crate::export::ExportProtocol,
    /// Also export the OTLP spans other senders sent, as they came.
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_FORWARD_SPANS")]
    pub otlp_export_forward_spans: bool,
    /// A session without SessionEnd gets its session span once idle this long (`30m`, `90s`).
    #[arg(long, env = "HIVEWATCH_OTLP_EXPORT_SESSION_IDLE", value_parser = parse_duration, default_value = "30m")]
    pub otlp_export_session_idle: Duration,
    /// Bearer token that ingest requests must carry (OTLP gRPC `authorization` metadata, HTTP `Authorization`).
    #[arg(long, env = "HIVEWATCH_INGEST_TOKEN")]
    pub ingest_token: Option<Secret>,
    /// Bearer token for reads: the API, `/metrics`, the live stream (browsers may pass `?access_token=`).
    #[arg(long, env = "HIVEWATCH_READ_TOKEN")]
    pub read_token: Option<Secret>,
    /// Listen beyond loopback without tokens, on purpose (behind an authenticating proxy, say).
    #[arg(long, env = "HIVEWATCH_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// Seconds between heartbeats on an idle live-stream connection.
    #[arg(long, env = "HIVEWATCH_LIVE_HEARTBEAT_SECS", default_value_t = 10)]
    pub live_heartbeat_secs: u64,
    /// A stable name for this process (a pod or host name), owner of its Redis outbox rows: a restart under the
    /// same name publishes what the previous run left at once. Default: the host name, pid and a random suffix
    /// with Postgres; `embedded` with SQLite.
    #[arg(long, env = "HIVEWATCH_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Delete events older than this (`90d`, `12h`, `30m`, `45s`); unset keeps everything.
    #[arg(long, env = "HIVEWATCH_RETENTION", value_parser = parse_duration)]
    pub retention: Option<Duration>,
    /// How often the retention pass runs.
    #[arg(long, env = "HIVEWATCH_RETENTION_INTERVAL", value_parser = parse_duration, default_value = "1h")]
    pub retention_interval: Duration,
    /// A regex whose matches are redacted from every string of every payload and transcript, besides the
    /// built-in rules; repeatable. In the environment variable, one pattern per line. Kept out of `Debug` output,
    /// since a pattern may spell a secret literally.
    #[arg(
        long = "redact-pattern",
        env = "HIVEWATCH_REDACT_PATTERNS",
        value_delimiter = '\n'
    )]
    pub redact_patterns: Vec<Secret>,
    /// Replace prompt text (hook and OTLP `prompt` fields, user messages of transcripts) with `[dropped]`.
    #[arg(long, env = "HIVEWATCH_DROP_PROMPTS")]
    pub drop_prompts: bool,
    /// Replace tool output (`tool_response`, transcript `tool_result` blocks) with `[dropped]`.
    #[arg(long, env = "HIVEWATCH_DROP_TOOL_OUTPUT")]
    pub drop_tool_output: bool,
}

/// A setting that may hold a password (a URL, a token): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// `90d`, `12h`, `30m`, `45s` or `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit: write it like 90d, 12h, 30m, 45s or 500ms"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use d, h, m, s or ms"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

impl ServeArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_items: self.max_events_per_request,
            max_attributes: self.max_attributes,
            max_attribute_bytes: self.max_attribute_bytes,
            max_depth: self.max_depth,
            max_copied_bytes: self.max_body_bytes,
        }
    }

    /// Checks everything that can be checked before a port is bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.store.store_config()?;
        self.redact_settings()?;
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "--max-body-bytes must be at least 1024".into(),
            ));
        }
        if self.max_inflight_bytes < self.max_body_bytes {
            return Err(ConfigError::Invalid(format!(
                "--max-inflight-bytes ({}) must be at least --max-body-bytes ({}): one request of the largest size \
                 must fit",
                self.max_inflight_bytes, self.max_body_bytes
            )));
        }
        if self.max_events_per_request == 0
            || self.max_attributes == 0
            || self.max_attribute_bytes == 0
            || self.max_depth == 0
        {
            return Err(ConfigError::Invalid(
                "--max-events-per-request, --max-attributes, --max-attribute-bytes and --max-depth \
                 must be positive"
                    .into(),
            ));
        }
        // Deeper than the JSON decoder's own bound (128) could never be reached.
        if self.max_depth > 100 {
            return Err(ConfigError::Invalid(
                "--max-depth must be at most 100".into(),
            ));
        }
        if self.queue_capacity == 0 || self.max_batch_events == 0 {
            return Err(ConfigError::Invalid(
                "--queue-capacity and --max-batch-events must be positive".into(),
            ));
        }
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
        if let Some(e) = &self.otlp_export_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "--otlp-export-endpoint must be an http:// or https:// URL (got {e:?})"
            )));
        }
        if self.retention.is_some_and(|r| r.is_zero()) || self.retention_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "--retention and --retention-interval must be longer than zero".into(),
            ));
        }
        let open = [
            (self.ingest_token.is_none(), "--ingest-token"),
            (self.read_token.is_none(), "--read-token"),
        ]
        .into_iter()
        .filter_map(|(missing, flag)| missing.then_some(flag))
        .collect::<Vec<_>>();
        let exposed = [self.grpc_addr, self.http_addr]
            .into_iter()
            .find(|a| !a.ip().is_loopback());
        if let (Some(addr), false, false) = (exposed, open.is_empty(), self.insecure_no_auth) {
            return Err(ConfigError::Invalid(format!(
                "hivewatch would listen on {addr}, beyond this machine, without {}: set {} (HIVEWATCH_INGEST_TOKEN, \
                 HIVEWATCH_READ_TOKEN), or pass --insecure-no-auth to run it open on purpose",
                open.join(" and "),
                open.join(" and ")
            )));
        }
        for (token, flag) in [
            (&self.ingest_token, "--ingest-token"),
            (&self.read_token, "--read-token"),
        ] {
            if token
                .as_ref()
                .is_some_and(|t| t.0.trim().is_empty() || t.0.contains(char::is_whitespace))
            {
                return Err(ConfigError::Invalid(format!(
                    "{flag} must be a non-empty token without spaces"
                )));
            }
        }
        if self.grpc_addr == self.http_addr && self.grpc_addr.port() != 0 {
            return Err(ConfigError::Invalid(format!(
                "--grpc-addr and --http-addr are both {}: give them different ports",
                self.grpc_addr
            )));
        }
        Ok(())
    }

    /// The extra redaction of `--redact-pattern`, `--drop-prompts` and `--drop-tool-output`, compiled.
    pub fn redact_settings(&self) -> Result<crate::model::redact::RedactSettings, ConfigError> {
        let patterns: Vec<String> = self
            .redact_patterns
            .iter()
            .map(|p| p.0.trim_end_matches('\r').to_string())
            .collect();
        crate::model::redact::RedactSettings::new(
            &patterns,
            self.drop_prompts,
            self.drop_tool_output,
        )
        .map_err(ConfigError::Invalid)
    }

    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            queue_capacity: self.queue_capacity,
            max_batch_events: self.max_batch_events,
            redact: std::sync::Arc::new(self.redact_settings().unwrap_or_default()),
            ..Default::default()
        }
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub fn export_config(&self) -> Option<crate::export::ExportConfig> {
        let endpoint = self
            .otlp_export_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())?;
        Some(crate::export::ExportConfig {
            endpoint: endpoint.to_string(),
            protocol: self.otlp_export_protocol,
            session_idle: self.otlp_export_session_idle,
            forward_spans: self.otlp_export_forward_spans,
        })
    }

    pub fn tokens(&self) -> crate::auth::Tokens {
        crate::auth::Tokens {
            ingest: self.ingest_token.as_ref().map(|t| t.0.as_str().into()),
            read: self.read_token.as_ref().map(|t| t.0.as_str().into()),
        }
    }

    pub fn stream_config(&self) -> Option<crate::stream::StreamConfig> {
        let url = self
            .redis_url
            .as_ref()
            .map(|s| s.0.trim())
            .filter(|u| !u.is_empty())?;
        Some(crate::stream::StreamConfig {
            url: url.to_string(),
            key: self.redis_stream_key.clone(),
            max_len: self.redis_stream_maxlen,
            takeover_after: Duration::from_secs(self.outbox_takeover_secs),
            instance_id: self.instance_id.clone().filter(|i| !i.trim().is_empty()),
        })
    }
}
