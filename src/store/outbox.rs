//! The transactional outbox behind the Redis stream: each group commit writes one row naming its events, in the
//! same transaction; the publisher (sink/redis_stream) deletes it once they are on the stream.

/// One group commit's events waiting for the Redis stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: i64,
    /// The process that committed the batch.
    pub owner: String,
    /// Row ids of the events, in commit order.
    pub event_ids: Vec<i64>,
}
