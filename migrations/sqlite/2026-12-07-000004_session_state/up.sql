-- A session's live state (which session needs a person), kept by the transaction that stores its events:
-- `state` since `state_since`, set from the event at `state_at`; what it waits on and who asked; the tool in
-- progress; subagents running; whether the main agent stopped while they ran; whether hook events were seen.
ALTER TABLE sessions ADD COLUMN state TEXT NOT NULL DEFAULT 'idle';
ALTER TABLE sessions ADD COLUMN state_since BIGINT;
ALTER TABLE sessions ADD COLUMN state_at BIGINT;
ALTER TABLE sessions ADD COLUMN waiting_on TEXT;
ALTER TABLE sessions ADD COLUMN state_agent TEXT;
ALTER TABLE sessions ADD COLUMN state_detail TEXT;
ALTER TABLE sessions ADD COLUMN current_tool TEXT;
ALTER TABLE sessions ADD COLUMN subagents BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN stop_pending BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN hooked BOOLEAN NOT NULL DEFAULT FALSE;
-- The `state_since` of the last state episode notifications were queued for.
ALTER TABLE sessions ADD COLUMN notified_since BIGINT;
-- Sessions stored before: ended ones stay ended, the others start idle (the sweep abandons the stale ones).
UPDATE sessions SET
    state = CASE status WHEN 'ended' THEN 'ended' ELSE 'idle' END,
    state_since = CASE status WHEN 'ended' THEN status_at ELSE last_seen END,
    state_at = last_seen;
CREATE INDEX idx_sessions_state ON sessions (state, state_since);

-- Notifications, persisted before they are sent: one row per state episode, kind and target URL (the unique
-- index makes it one however many replicas queue it), retried with backoff until a target accepts it.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    episode BIGINT NOT NULL,
    target TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    sent_at BIGINT,
    last_error TEXT
);
CREATE UNIQUE INDEX idx_notifications_episode ON notifications (session_id, kind, episode, target);
CREATE INDEX idx_notifications_due ON notifications (next_attempt_at) WHERE sent_at IS NULL;
