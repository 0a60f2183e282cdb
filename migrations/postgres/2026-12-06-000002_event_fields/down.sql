DROP INDEX idx_events_mcp_server;
ALTER TABLE agent_events
    DROP COLUMN model,
    DROP COLUMN mcp_server,
    DROP COLUMN repo,
    DROP COLUMN branch,
    DROP COLUMN commit_sha;
