//! Diesel table definitions for the Postgres store (`migrations/postgres/`).

diesel::table! {
    agent_events (id) {
        id -> BigInt,
        event_id -> Uuid,
        event_type -> Varchar,
        source -> Varchar,
        session_id -> Uuid,
        agent_id -> Text,
        source_app -> Text,
        prompt_id -> Nullable<Text>,
        tool_name -> Nullable<Text>,
        tool_use_id -> Nullable<Text>,
        trace_id -> Varchar,
        span_id -> Nullable<Varchar>,
        parent_span_id -> Nullable<Varchar>,
        status -> Varchar,
        severity -> Varchar,
        latency_ms -> Nullable<Integer>,
        created_at -> Timestamptz,
        received_at -> Timestamptz,
        payload -> Jsonb,
        model -> Nullable<Text>,
        mcp_server -> Nullable<Text>,
        repo -> Nullable<Text>,
        branch -> Nullable<Text>,
        commit_sha -> Nullable<Text>,
    }
}

diesel::table! {
    chat_transcripts (id) {
        id -> BigInt,
        session_id -> Uuid,
        agent_id -> Text,
        uuid -> Text,
        parent_uuid -> Nullable<Text>,
        role -> Text,
        content -> Jsonb,
        model -> Nullable<Text>,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
        cache_read_tokens -> Nullable<BigInt>,
        cache_creation_tokens -> Nullable<BigInt>,
        created_at -> Timestamptz,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (session_id) {
        session_id -> Uuid,
        source_app -> Text,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
        cwd -> Nullable<Text>,
        model -> Nullable<Text>,
        status -> Varchar,
        status_at -> Nullable<Timestamptz>,
        event_count -> BigInt,
        tool_calls -> BigInt,
        tool_failures -> BigInt,
        error_count -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        cost_usd -> Double,
    }
}

diesel::table! {
    event_outbox (seq) {
        seq -> BigInt,
        owner -> Text,
        event_ids -> Array<BigInt>,
        created_at -> Timestamptz,
    }
}
