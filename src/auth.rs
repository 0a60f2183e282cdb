//! Bearer tokens: one for ingest (OTLP on both transports, the hook and transcript endpoints), one for reads (the
//! query API, `/metrics`, the live stream). Either is optional; without it that side is open, which `serve` allows
//! only on loopback addresses unless told otherwise (see `ServeArgs::validate`).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The configured tokens, compared in constant time.
#[derive(Clone, Default)]
pub struct Tokens {
    pub ingest: Option<Arc<str>>,
    pub read: Option<Arc<str>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ingest", &self.ingest.as_ref().map(|_| "[REDACTED]"))
            .field("read", &self.read.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Equal strings, in time that depends only on their digests: neither the token's length nor the position of the
/// first wrong byte shows in the answer time.
pub fn same_token(expected: &str, given: &str) -> bool {
    let (a, b) = (
        Sha256::digest(expected.as_bytes()),
        Sha256::digest(given.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `headers` (or, for browsers that cannot set headers on a WebSocket, an `access_token` query
/// parameter) carry `expected`.
fn authorized(expected: &str, headers: &HeaderMap, query: Option<&str>) -> bool {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    if let Some(given) = from_header {
        return same_token(expected, given);
    }
    query
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("access_token=")))
        .is_some_and(|given| same_token(expected, &percent_decode(given, false)))
}

/// A query-string value with its `%XX` escapes decoded; with `plus_is_space`, `+` is a space (form encoding), else
/// it stays a `+` (tokens may hold one).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unauthorized(side: &str, flag: &str) -> Response {
    let message = format!("missing or wrong bearer token for {side} (the server's {flag})");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

pub async fn require_ingest(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    match &tokens.ingest {
        Some(t) if !authorized(t, req.headers(), None) => unauthorized("ingest", "--ingest-token"),
        _ => next.run(req).await,
    }
}

pub async fn require_read(State(tokens): State<Tokens>, req: Request, next: Next) -> Response {
    match &tokens.read {
        Some(t) if !authorized(t, req.headers(), req.uri().query()) => {
            unauthorized("reads", "--read-token")
        }
        _ => next.run(req).await,
    }
}

/// The gRPC side of the ingest token: the `authorization` metadata.
pub fn check_grpc(
    tokens: &Tokens,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<(), tonic::Status> {
    let Some(expected) = &tokens.ingest else {
        return Ok(());
    };
    let given = metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    if given.is_some_and(|g| same_token(expected, g)) {
        Ok(())
    } else {
        Err(tonic::Status::unauthenticated(
            "missing or wrong bearer token in the authorization metadata (the server's --ingest-token)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly_and_bearer_parses() {
        assert!(same_token("s3cret", "s3cret"));
        assert!(!same_token("s3cret", "s3cre"));
        assert!(!same_token("s3cret", "s3cret "));
        assert!(!same_token("s3cret", ""));
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
        assert_eq!(percent_decode("a%2Bb%3D%26+c", false), "a+b=&+c");
        assert_eq!(percent_decode("a%2Bb+c%zz%4", true), "a+b c%zz%4");
    }
}
