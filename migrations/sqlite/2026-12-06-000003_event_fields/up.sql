-- Fields lifted from the payload so that they can be queried: the model an event names, the MCP server of an MCP
-- tool's event, and the repository, branch and commit a sender names (`vcs.*`). Rows stored before stay NULL.
ALTER TABLE agent_events ADD COLUMN model TEXT;
ALTER TABLE agent_events ADD COLUMN mcp_server TEXT;
ALTER TABLE agent_events ADD COLUMN repo TEXT;
ALTER TABLE agent_events ADD COLUMN branch TEXT;
ALTER TABLE agent_events ADD COLUMN commit_sha TEXT;
CREATE INDEX idx_events_mcp_server ON agent_events (mcp_server, created_at) WHERE mcp_server IS NOT NULL;
