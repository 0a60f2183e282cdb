//! The in-flight budget: bytes of ingest requests held at once, bodies being read, decoded, and waiting for
//! their commit, HTTP and gRPC together. A request that would go over is answered 503 / UNAVAILABLE (retry
//! shortly), so memory stays bounded under any load. A leaf: the receivers take shares, the pipeline keeps them
//! until the request is answered.

/// The budget is spent: retry shortly.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "hivewatch already holds {mib} MiB of ingest requests (--max-inflight-bytes); retry shortly"
)]
pub struct OverBudget {
    mib: usize,
}

/// Bytes of ingest requests held at once: bodies being read, decoded, and waiting for their commit. A request
/// that would go over is answered 503 / UNAVAILABLE (retry shortly), so memory stays bounded under any load.
#[derive(Clone)]
pub struct InflightBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
    total_kib: usize,
}

/// A request's share of the budget, given back when dropped (when the request is answered).
#[must_use]
pub struct InflightHold(#[allow(dead_code)] Option<tokio::sync::OwnedSemaphorePermit>);

impl InflightHold {
    /// No share (events that did not come in over the wire).
    pub fn none() -> Self {
        InflightHold(None)
    }
}

impl InflightBudget {
    pub fn new(bytes: usize) -> Self {
        let total_kib = bytes
            .div_ceil(1024)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        InflightBudget {
            kib: std::sync::Arc::new(tokio::sync::Semaphore::new(total_kib)),
            total_kib,
        }
    }

    /// Takes `bytes` of the budget, or says that hivewatch holds too much already.
    pub fn hold(&self, bytes: usize) -> Result<InflightHold, OverBudget> {
        let kib = bytes.div_ceil(1024).clamp(1, self.total_kib);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX);
        match self.kib.clone().try_acquire_many_owned(kib) {
            Ok(permit) => Ok(InflightHold(Some(permit))),
            Err(_) => Err(OverBudget {
                mib: self.total_kib / 1024,
            }),
        }
    }

    /// Gives back all of `hold` beyond `bytes` (a body turned out smaller than the share taken for it).
    pub fn shrink(hold: &mut InflightHold, bytes: usize) {
        let keep = bytes.div_ceil(1024).max(1);
        if let Some(permit) = hold.0.as_mut()
            && permit.num_permits() > keep
        {
            drop(permit.split(permit.num_permits() - keep));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_given_back_when_answered_and_shrink_to_what_was_read() {
        let budget = InflightBudget::new(64 * 1024);
        let mut big = budget.hold(48 * 1024).unwrap();
        assert!(budget.hold(32 * 1024).is_err(), "over the budget");
        // The body turned out small: the rest of its share is free again.
        InflightBudget::shrink(&mut big, 1000);
        let other = budget.hold(32 * 1024).unwrap();
        drop(big);
        drop(other);
        assert!(budget.hold(64 * 1024).is_ok());
        // A share larger than the whole budget takes all of it, never fails for its size alone.
        let budget = InflightBudget::new(1024);
        assert!(budget.hold(10 * 1024 * 1024).is_ok());
    }
}
