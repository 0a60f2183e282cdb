//! The settings of the ingest side: listen addresses, limits, timeouts, the pipeline, tokens and redaction. Each
//! struct checks itself; what spans two of them is checked by `ServeArgs::validate`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::ConfigError;
use super::secret::Secret;
use crate::model::limits::Limits;
use crate::model::redact::RedactSettings;

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Listen")]
pub struct ListenArgs {
    /// OTLP/gRPC listen address; port 0 picks a free port (the bound address is printed).
    #[arg(long, env = "HIVEWATCH_GRPC_ADDR", default_value = "127.0.0.1:4317")]
    pub grpc_addr: SocketAddr,
    /// HTTP listen address: OTLP/HTTP, the hook endpoint, the API; port 0 picks a free port.
    #[arg(long, env = "HIVEWATCH_HTTP_ADDR", default_value = "127.0.0.1:4318")]
    pub http_addr: SocketAddr,
}

impl ListenArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.grpc_addr == self.http_addr && self.grpc_addr.port() != 0 {
            return Err(invalid(format!(
                "--grpc-addr and --http-addr are both {}: give them different ports",
                self.grpc_addr
            )));
        }
        Ok(())
    }

    /// The first listen address beyond this machine, if any.
    pub fn exposed(&self) -> Option<SocketAddr> {
        [self.grpc_addr, self.http_addr]
            .into_iter()
            .find(|a| !a.ip().is_loopback())
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
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
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_items: self.max_events_per_request,
            max_attributes: self.max_attributes,
            max_attribute_bytes: self.max_attribute_bytes,
            max_depth: self.max_depth,
            max_copied_bytes: self.max_body_bytes,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(invalid("--max-body-bytes must be at least 1024"));
        }
        if self.max_inflight_bytes < self.max_body_bytes {
            return Err(invalid(format!(
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
            return Err(invalid(
                "--max-events-per-request, --max-attributes, --max-attribute-bytes and --max-depth must be positive",
            ));
        }
        // Deeper than the JSON decoder's own bound (128) could never be reached.
        if self.max_depth > 100 {
            return Err(invalid("--max-depth must be at most 100"));
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Timeouts")]
pub struct TimeoutArgs {
    /// Seconds a client may take to send a request's headers before it is disconnected.
    #[arg(long, env = "HIVEWATCH_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a client may take to send a request body before it is answered 408.
    #[arg(long, env = "HIVEWATCH_BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,
    /// Seconds after which a gRPC connection is asked to close (GOAWAY; in-flight calls finish, exporters
    /// reconnect): a client that never completes a request cannot hold a connection longer.
    #[arg(
        long,
        env = "HIVEWATCH_GRPC_MAX_CONNECTION_AGE_SECS",
        default_value_t = 300
    )]
    pub grpc_max_connection_age_secs: u64,
    /// How long shutdown waits for in-flight requests before it gives up on them, in seconds.
    #[arg(long, env = "HIVEWATCH_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
}

impl TimeoutArgs {
    pub fn header_read(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs.max(1))
    }

    pub fn body_read(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs.max(1))
    }

    pub fn grpc_max_connection_age(&self) -> Duration {
        Duration::from_secs(self.grpc_max_connection_age_secs.max(1))
    }

    pub fn shutdown(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Pipeline")]
pub struct PipelineArgs {
    /// Ingest requests that may wait for a commit before new ones are refused with 503 / UNAVAILABLE.
    #[arg(long, env = "HIVEWATCH_QUEUE_CAPACITY", default_value_t = 4096)]
    pub queue_capacity: usize,
    /// Most events committed in one transaction.
    #[arg(long, env = "HIVEWATCH_MAX_BATCH_EVENTS", default_value_t = 10_000)]
    pub max_batch_events: usize,
}

impl PipelineArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_capacity == 0 || self.max_batch_events == 0 {
            return Err(invalid(
                "--queue-capacity and --max-batch-events must be positive",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// Bearer token that ingest requests must carry (OTLP gRPC `authorization` metadata, HTTP `Authorization`).
    #[arg(long, env = "HIVEWATCH_INGEST_TOKEN")]
    pub ingest_token: Option<Secret>,
    /// Bearer token for reads: the API, `/metrics`, the live stream (browsers may pass `?access_token=`).
    #[arg(long, env = "HIVEWATCH_READ_TOKEN")]
    pub read_token: Option<Secret>,
    /// Listen beyond loopback without tokens, on purpose (behind an authenticating proxy, say).
    #[arg(long, env = "HIVEWATCH_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
}

impl AuthArgs {
    pub fn tokens(&self) -> crate::auth::Tokens {
        crate::auth::Tokens {
            ingest: self.ingest_token.as_ref().map(|t| t.0.as_str().into()),
            read: self.read_token.as_ref().map(|t| t.0.as_str().into()),
        }
    }

    /// Checks the tokens, and that a listener beyond loopback has both (or `--insecure-no-auth`).
    pub fn validate(&self, exposed: Option<SocketAddr>) -> Result<(), ConfigError> {
        let open = [
            (self.ingest_token.is_none(), "--ingest-token"),
            (self.read_token.is_none(), "--read-token"),
        ]
        .into_iter()
        .filter_map(|(missing, flag)| missing.then_some(flag))
        .collect::<Vec<_>>();
        if let (Some(addr), false, false) = (exposed, open.is_empty(), self.insecure_no_auth) {
            return Err(invalid(format!(
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
                return Err(invalid(format!(
                    "{flag} must be a non-empty token without spaces"
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Redaction")]
pub struct RedactionArgs {
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

impl RedactionArgs {
    /// The extra redaction of `--redact-pattern`, `--drop-prompts` and `--drop-tool-output`, compiled.
    pub fn settings(&self) -> Result<RedactSettings, ConfigError> {
        let patterns: Vec<String> = self
            .redact_patterns
            .iter()
            .map(|p| p.0.trim_end_matches('\r').to_string())
            .collect();
        RedactSettings::new(&patterns, self.drop_prompts, self.drop_tool_output)
            .map_err(ConfigError::Invalid)
    }
}
