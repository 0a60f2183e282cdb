//! The two ways of delivering OTLP to hivewatch: OTLP/HTTP (protobuf body)
//! over a keep-alive hyper connection pool, and OTLP/gRPC over tonic channels.

use std::error::Error as StdError;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::transport::{Channel, Endpoint};

use crate::{Encoding, Protocol, Signal};

/// A request ready to go out: already encoded for HTTP (with the event id header a single hook payload
/// carries, as `hivewatch hook` sends it), a message for gRPC.
pub enum Prepared {
    Http {
        body: Bytes,
        event_id: Option<String>,
    },
    Logs(ExportLogsServiceRequest),
    Traces(ExportTraceServiceRequest),
}

impl Prepared {
    pub fn http(body: Vec<u8>) -> Prepared {
        Prepared::Http {
            body: body.into(),
            event_id: None,
        }
    }
}

/// Result of one delivered export: how many events the receiver said it
/// rejected through OTLP partial success (0 when it accepted all).
pub struct Ack {
    pub rejected: u64,
}

/// A failed export. `transport` is true when no answer arrived at all
/// (connect refused, reset, timeout), as opposed to an error status.
pub struct SendError {
    pub message: String,
    pub transport: bool,
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A cloneable handle; each sender task holds its own clone.
#[derive(Clone)]
pub enum Transport {
    Http {
        client: Box<HttpClient>,
        uri: Uri,
        signal: Signal,
        content_type: &'static str,
    },
    GrpcLogs(LogsServiceClient<Channel>),
    GrpcTraces(TraceServiceClient<Channel>),
}

/// The full `source()` chain, so that "client error (Connect)" also says why.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

fn status_error(status: &tonic::Status) -> SendError {
    let code = status.code();
    let msg = status.message();
    // tonic reports connection failures with a transport source; an answer
    // from the server has none.
    let message = match status.source() {
        Some(src) => {
            let chain = error_chain(src);
            if msg.is_empty() || chain.contains(msg) {
                format!("gRPC {code:?}: {chain}")
            } else {
                format!("gRPC {code:?}: {msg}: {chain}")
            }
        }
        None if msg.is_empty() => format!("gRPC {code:?}"),
        None => format!("gRPC {code:?}: {msg}"),
    };
    SendError {
        message,
        transport: status.source().is_some(),
    }
}

/// Accepts `http://h:p`, `grpc://h:p` (as the server prints it) or `h:p`.
fn normalize_base(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if let Some(rest) = e.strip_prefix("grpc://") {
        format!("http://{rest}")
    } else if e.contains("://") {
        e.to_owned()
    } else {
        format!("http://{e}")
    }
}

/// The export URL for OTLP/HTTP; an endpoint that already names the path is
/// used as it is.
pub fn http_url(endpoint: &str, signal: Signal) -> String {
    let base = normalize_base(endpoint);
    if base.ends_with("/v1/logs")
        || base.ends_with("/v1/traces")
        || base.ends_with(Signal::Hook.http_path())
    {
        base
    } else {
        format!("{base}{}", signal.http_path())
    }
}

pub fn grpc_url(endpoint: &str) -> String {
    normalize_base(endpoint)
}

impl Transport {
    /// Builds one transport per sender (clones share pools and channels).
    pub fn build(
        protocol: Protocol,
        signal: Signal,
        encoding: Encoding,
        endpoint: &str,
        senders: usize,
        channels: usize,
    ) -> Result<Vec<Transport>> {
        match protocol {
            Protocol::Http => {
                let url = http_url(endpoint, signal);
                let uri: Uri = url.parse().with_context(|| format!("bad endpoint {url}"))?;
                if uri.scheme_str() != Some("http") {
                    bail!("only plain http:// endpoints are supported (got {url})");
                }
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                connector.set_connect_timeout(Some(Duration::from_secs(5)));
                let client = Client::builder(TokioExecutor::new())
                    .pool_max_idle_per_host(senders)
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build(connector);
                let content_type = match encoding {
                    Encoding::Json => "application/json",
                    Encoding::Protobuf => "application/x-protobuf",
                };
                let t = Transport::Http {
                    client: Box::new(client),
                    uri,
                    signal,
                    content_type,
                };
                Ok(vec![t; senders])
            }
            Protocol::Grpc => {
                let url = grpc_url(endpoint);
                let ep = Endpoint::from_shared(url.clone())
                    .with_context(|| format!("bad endpoint {url}"))?
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(5));
                // Lazy: a server that is down shows up as request errors,
                // counted like any other, instead of aborting the run.
                let chans: Vec<Channel> = (0..channels.max(1)).map(|_| ep.connect_lazy()).collect();
                Ok((0..senders)
                    .map(|i| {
                        let ch = chans[i % chans.len()].clone();
                        match signal {
                            Signal::Traces => Transport::GrpcTraces(TraceServiceClient::new(ch)),
                            // Rejected by argument validation: hook payloads have no gRPC service.
                            Signal::Logs | Signal::Hook => {
                                Transport::GrpcLogs(LogsServiceClient::new(ch))
                            }
                        }
                    })
                    .collect())
            }
        }
    }

    pub fn is_http(&self) -> bool {
        matches!(self, Transport::Http { .. })
    }

    pub async fn send(&mut self, req: Prepared) -> Result<Ack, SendError> {
        match (self, req) {
            (
                Transport::Http {
                    client,
                    uri,
                    signal,
                    content_type,
                },
                Prepared::Http { body, event_id },
            ) => send_http(client, uri, *signal, content_type, body, event_id).await,
            (Transport::GrpcLogs(c), Prepared::Logs(m)) => match c.export(m).await {
                Ok(resp) => Ok(Ack {
                    rejected: resp
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| p.rejected_log_records.max(0) as u64),
                }),
                Err(status) => Err(status_error(&status)),
            },
            (Transport::GrpcTraces(c), Prepared::Traces(m)) => match c.export(m).await {
                Ok(resp) => Ok(Ack {
                    rejected: resp
                        .into_inner()
                        .partial_success
                        .map_or(0, |p| p.rejected_spans.max(0) as u64),
                }),
                Err(status) => Err(status_error(&status)),
            },
            _ => Err(SendError {
                message: "internal: payload does not match transport".to_owned(),
                transport: false,
            }),
        }
    }
}

/// Largest response body read; OTLP answers are tiny, error pages small.
const MAX_RESPONSE: usize = 64 * 1024;

async fn send_http(
    client: &HttpClient,
    uri: &Uri,
    signal: Signal,
    content_type: &str,
    body: Bytes,
    event_id: Option<String>,
) -> Result<Ack, SendError> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(uri.clone())
        .header(header::CONTENT_TYPE, content_type)
        .header(
            header::USER_AGENT,
            concat!("hivewatch-load/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(id) = event_id {
        req = req.header("x-hivewatch-event-id", id);
    }
    let req = req.body(Full::new(body)).map_err(|e| SendError {
        message: format!("building request: {e}"),
        transport: false,
    })?;
    let resp = client.request(req).await.map_err(|e| SendError {
        message: error_chain(&e),
        transport: true,
    })?;
    let status = resp.status();
    let answer_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Read the whole body so the connection goes back to the pool.
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| SendError {
            message: format!("HTTP {status}: reading body: {e}"),
            transport: true,
        })?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            .trim()
            .replace('\n', " ");
        let message = if text.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {text}")
        };
        return Err(SendError {
            message,
            transport: false,
        });
    }
    let rejected = if bytes.is_empty() {
        0
    } else if answer_type.starts_with("application/json") {
        json_rejected(&bytes, signal)
    } else if answer_type.starts_with("application/x-protobuf") {
        match signal {
            Signal::Logs => ExportLogsServiceResponse::decode(bytes)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_log_records.max(0) as u64),
            Signal::Traces => ExportTraceServiceResponse::decode(bytes)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_spans.max(0) as u64),
            Signal::Hook => 0,
        }
    } else {
        0
    };
    Ok(Ack { rejected })
}

/// `partialSuccess.rejectedLogRecords` / `rejectedSpans` of an OTLP/JSON answer (an int64, so a number or a
/// string).
fn json_rejected(body: &[u8], signal: Signal) -> u64 {
    let key = match signal {
        Signal::Logs => "rejectedLogRecords",
        Signal::Traces => "rejectedSpans",
        Signal::Hook => return 0,
    };
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    match &answer["partialSuccess"][key] {
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            http_url("http://127.0.0.1:4318", Signal::Logs),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(
            http_url("127.0.0.1:4318/", Signal::Traces),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_url("http://h:1/v1/logs", Signal::Traces),
            "http://h:1/v1/logs"
        );
        assert_eq!(grpc_url("grpc://127.0.0.1:4317"), "http://127.0.0.1:4317");
        assert_eq!(grpc_url("127.0.0.1:4317"), "http://127.0.0.1:4317");
    }
}
