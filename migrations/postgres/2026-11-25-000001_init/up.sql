-- The Postgres system of record. Times are TIMESTAMPTZ (microsecond precision); trace and span ids are
-- lower-case hex.
CREATE TABLE agent_events (
    id BIGSERIAL PRIMARY KEY,
    event_id UUID NOT NULL,
    event_type VARCHAR(200) NOT NULL,
    source VARCHAR(16) NOT NULL,
    session_id UUID NOT NULL,
    agent_id TEXT NOT NULL,
    source_app TEXT NOT NULL,
    prompt_id TEXT,
    tool_name TEXT,
    tool_use_id TEXT,
    trace_id VARCHAR(32) NOT NULL,
    span_id VARCHAR(16),
    parent_span_id VARCHAR(16),
    status VARCHAR(8) NOT NULL,
    severity VARCHAR(8) NOT NULL,
    latency_ms INTEGER,
    created_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    payload JSONB NOT NULL
);
CREATE UNIQUE INDEX idx_events_event_id ON agent_events (event_id);
CREATE INDEX idx_events_session ON agent_events (session_id);
CREATE INDEX idx_events_type_time ON agent_events (event_type, created_at);
CREATE INDEX idx_events_tool_time ON agent_events (tool_name, created_at) WHERE tool_name IS NOT NULL;
CREATE INDEX idx_events_created ON agent_events (created_at);

-- The two halves of each hook tool call, so that a PreToolUse and its PostToolUse pair up whichever arrives
-- first and whichever replica stores it: the open half lives here, not in a process.
CREATE TABLE tool_calls (
    session_id UUID NOT NULL,
    tool_use_id TEXT NOT NULL,
    pre_at TIMESTAMPTZ,
    post_id BIGINT,
    post_at TIMESTAMPTZ,
    PRIMARY KEY (session_id, tool_use_id)
);

CREATE TABLE chat_transcripts (
    id BIGSERIAL PRIMARY KEY,
    session_id UUID NOT NULL,
    agent_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    parent_uuid TEXT,
    role TEXT NOT NULL,
    content JSONB NOT NULL,
    model TEXT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_creation_tokens BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX idx_transcripts_entry ON chat_transcripts (session_id, uuid);
CREATE INDEX idx_transcripts_created ON chat_transcripts (created_at);

-- One row per session, kept up to date by the transaction that stores its events.
CREATE TABLE sessions (
    session_id UUID PRIMARY KEY,
    source_app TEXT NOT NULL,
    first_seen TIMESTAMPTZ NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    cwd TEXT,
    model TEXT,
    status VARCHAR(8) NOT NULL,
    status_at TIMESTAMPTZ,
    event_count BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    tool_failures BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_sessions_last_seen ON sessions (last_seen);

-- Committed events not yet on the Redis stream: one row per group commit, written in the same transaction,
-- deleted once published. `owner` is the process that committed it; another takes over rows left behind.
CREATE TABLE event_outbox (
    seq BIGSERIAL PRIMARY KEY,
    owner TEXT NOT NULL,
    event_ids BIGINT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
