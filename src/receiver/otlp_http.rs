//! OTLP over HTTP (port 4318): `/v1/traces`, `/v1/logs`, `/v1/metrics`, protobuf or JSON, gzip or plain,
//! with or without Content-Length. Answers in the encoding of the request; errors are `google.rpc.Status`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use prost::Message;

use super::{IngestError, Signal, export, read_body};
use crate::state::IngestState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    fn from_headers(headers: &HeaderMap) -> Result<Encoding, IngestError> {
        let raw = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("(not text)"));
        let essence = raw.map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        match essence.as_deref() {
            Some("application/x-protobuf" | "application/protobuf") => Ok(Encoding::Protobuf),
            Some("application/json") => Ok(Encoding::Json),
            Some(_) => Err(IngestError::UnsupportedMediaType(format!(
                "content-type must be application/x-protobuf or application/json, got {:?}",
                raw.unwrap_or_default()
            ))),
            None => Err(IngestError::UnsupportedMediaType(
                "content-type is missing: send application/x-protobuf or application/json".into(),
            )),
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn encode<T: Message + serde::Serialize>(encoding: Encoding, msg: &T) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

pub fn error_response(encoding: Encoding, err: &IngestError) -> Response {
    let body = encode(
        encoding,
        &RpcStatus {
            code: err.grpc_code() as i32,
            message: err.to_string(),
        },
    );
    err.http_response(([(header::CONTENT_TYPE, encoding.content_type())], body))
}

pub async fn handler<S: Signal>(
    State(state): State<IngestState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let encoding = match Encoding::from_headers(&headers) {
        Ok(e) => e,
        Err(e) => {
            super::record_request(&state.instruments, "http", S::NAME, started, Err(&e));
            return error_response(Encoding::Json, &e);
        }
    };
    let result = receive::<S>(&state, encoding, &headers, body).await;
    super::record_request(
        &state.instruments,
        "http",
        S::NAME,
        started,
        result.as_ref().map(S::rejected),
    );
    match result {
        Ok(resp) => (
            [(header::CONTENT_TYPE, encoding.content_type())],
            encode(encoding, &resp),
        )
            .into_response(),
        Err(e) => error_response(encoding, &e),
    }
}

async fn receive<S: Signal>(
    state: &IngestState,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<S::Response, IngestError> {
    let (bytes, hold) = read_body(state, headers, body).await?;
    let request = super::decode::<S>(&bytes, encoding == Encoding::Json)?;
    drop(bytes);
    export::<S>(state.ingest(), request, hold).await
}
