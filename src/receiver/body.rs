//! Request bodies of the HTTP receivers, read whole within the size limit and the body deadline, each holding
//! its share of the in-flight budget.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};

use super::IngestError;
use crate::inflight::{InflightBudget, InflightHold};
use crate::state::IngestState;

/// Reads a whole request body (chunked or not, decompressed), refusing more than `--max-body-bytes`. The body
/// holds its share of the in-flight budget from before it is read until the returned hold is dropped (when the
/// request is answered): its declared length, or the largest a body may be until it is read.
pub async fn read_body(
    state: &IngestState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, InflightHold), IngestError> {
    let limit = state.max_body_bytes;
    let timeout = state.body_read_timeout;
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
        return Err(too_large());
    }
    let share = match declared {
        Some(n) if !compressed => n as usize,
        _ => limit,
    };
    let mut hold = state.inflight.hold(share)?;
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(IngestError::Timeout(format!(
            "the request body did not arrive within {timeout:?}"
        )));
    };
    let bytes = read.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = err.source();
        }
        IngestError::BadRequest(format!("could not read the request body: {e}"))
    })?;
    InflightBudget::shrink(&mut hold, bytes.len());
    Ok((bytes, hold))
}
