//! Request bodies of the HTTP receivers, read whole within the size limit and the body deadline, each holding
//! its share of the in-flight budget.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

use super::IngestError;
use crate::inflight::{InflightBudget, InflightHold};
use crate::state::IngestState;

/// How much of an oversize body is read and thrown away before the 413 goes out. A client that writes its whole
/// body before it reads the answer (Python's `urllib`, several OTLP exporters) would otherwise find the connection
/// reset under its write and never see the 413 that says why. Past this much the connection is closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a whole request body (chunked or not, decompressed), refusing more than `--max-body-bytes`. The body
/// holds its share of the in-flight budget from before it is read until the returned hold is dropped (when the
/// request is answered): its declared length, or the largest a body may be until it is read.
pub async fn read_body(
    state: &IngestState,
    headers: &HeaderMap,
    mut body: Body,
) -> Result<(Bytes, InflightHold), IngestError> {
    let limit = state.max_body_bytes;
    let timeout = state.body_read_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let too_large = || {
        IngestError::TooLarge(format!(
            "request body is larger than the limit of {limit} bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let compressed = headers.contains_key(header::CONTENT_ENCODING);
    if !compressed && declared.is_some_and(|n| n > limit as u64) {
        if declared.is_some_and(|n| n <= DRAIN_LIMIT as u64) {
            drain(&mut body, deadline).await;
        }
        return Err(too_large());
    }
    let share = match declared {
        Some(n) if !compressed => n as usize,
        _ => limit,
    };
    let mut hold = state.inflight.hold(share)?;
    let mut chunks = Chunks::default();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(IngestError::Timeout(format!(
                    "the request body did not arrive within {timeout:?}"
                )));
            }
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| read_error(&e).unwrap_or_else(too_large))?,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if chunks.len + data.len() > limit {
            drain(&mut body, deadline).await;
            return Err(too_large());
        }
        chunks.push(data);
    }
    let bytes = chunks.into_bytes();
    InflightBudget::shrink(&mut hold, bytes.len());
    Ok((bytes, hold))
}

/// The error of a body that could not be read; `None` when a limit set around the body ran out (a size error).
fn read_error(e: &axum::Error) -> Option<IngestError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return None;
        }
        source = err.source();
    }
    Some(IngestError::BadRequest(format!(
        "could not read the request body: {e}"
    )))
}

/// Reads what is left of a refused body, up to [`DRAIN_LIMIT`] and the body's deadline, and drops it.
async fn drain(body: &mut Body, deadline: tokio::time::Instant) {
    let mut read = 0;
    while read <= DRAIN_LIMIT {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => read += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

/// The frames of a body as they arrive: one frame (most bodies) is kept as it is, several are joined once.
#[derive(Default)]
struct Chunks {
    parts: Vec<Bytes>,
    len: usize,
}

impl Chunks {
    fn push(&mut self, data: Bytes) {
        self.len += data.len();
        self.parts.push(data);
    }

    fn into_bytes(mut self) -> Bytes {
        match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts.pop().unwrap_or_default(),
            _ => {
                let mut joined = Vec::with_capacity(self.len);
                for part in &self.parts {
                    joined.extend_from_slice(part);
                }
                joined.into()
            }
        }
    }
}
