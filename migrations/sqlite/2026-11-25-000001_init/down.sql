DROP TABLE sessions;
DROP TABLE chat_transcripts;
DROP TABLE agent_events;
