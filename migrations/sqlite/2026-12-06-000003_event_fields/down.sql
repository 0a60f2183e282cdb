DROP INDEX idx_events_mcp_server;
ALTER TABLE agent_events DROP COLUMN commit_sha;
ALTER TABLE agent_events DROP COLUMN branch;
ALTER TABLE agent_events DROP COLUMN repo;
ALTER TABLE agent_events DROP COLUMN mcp_server;
ALTER TABLE agent_events DROP COLUMN model;
