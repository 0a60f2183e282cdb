-- Times are microseconds since the Unix epoch (UTC); ids are text (UUIDs hyphenated, trace/span ids hex).
CREATE TABLE agent_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    source TEXT NOT NULL,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    source_app TEXT NOT NULL,
    prompt_id TEXT,
    tool_name TEXT,
    tool_use_id TEXT,
    trace_id TEXT NOT NULL,
    span_id TEXT,
    parent_span_id TEXT,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    latency_ms BIGINT,
    created_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    payload TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_events_event_id ON agent_events (event_id);
CREATE INDEX idx_events_session ON agent_events (session_id, created_at);
CREATE INDEX idx_events_type_time ON agent_events (event_type, created_at);
CREATE INDEX idx_events_tool_time ON agent_events (tool_name, created_at) WHERE tool_name IS NOT NULL;
CREATE INDEX idx_events_created ON agent_events (created_at);

-- The two halves of each hook tool call (PreToolUse, PostToolUse/PostToolUseFailure), so that pairing is a key
-- lookup whichever half is stored first, and costs nothing for events that are not hook tool calls.
CREATE TABLE tool_calls (
    session_id TEXT NOT NULL,
    tool_use_id TEXT NOT NULL,
    pre_at BIGINT,
    post_id BIGINT,
    post_at BIGINT,
    PRIMARY KEY (session_id, tool_use_id)
) WITHOUT ROWID;

CREATE TABLE chat_transcripts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    parent_uuid TEXT,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    model TEXT,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cache_read_tokens BIGINT,
    cache_creation_tokens BIGINT,
    created_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX idx_transcripts_entry ON chat_transcripts (session_id, uuid);

-- One row per session, kept up to date by the same transaction that stores its events.
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    source_app TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    cwd TEXT,
    model TEXT,
    status TEXT NOT NULL,
    status_at BIGINT NOT NULL,
    event_count BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    tool_failures BIGINT NOT NULL,
    error_count BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE NOT NULL
);
CREATE INDEX idx_sessions_last_seen ON sessions (last_seen);
