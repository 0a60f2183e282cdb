-- Committed events not yet on the Redis stream: one row per group commit, written in the same transaction,
-- deleted once published. `event_ids` is a JSON array of agent_events ids in commit order.
CREATE TABLE event_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
