DROP TABLE event_outbox;
DROP TABLE sessions;
DROP TABLE chat_transcripts;
DROP TABLE tool_calls;
DROP TABLE agent_events;
