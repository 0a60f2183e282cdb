//! Diesel table definitions for the SQLite store (`migrations/sqlite/`).

diesel::table! {
    agent_events (id) {
        id -> BigInt,
        event_id -> Text,
        event_type -> Text,
        source -> Text,
        session_id -> Text,
        agent_id -> Text,
        source_app -> Text,
        prompt_id -> Nullable<Text>,
        tool_name -> Nullable<Text>,
        tool_use_id -> Nullable<Text>,
        trace_id -> Text,
        span_id -> Nullable<Text>,
        parent_span_id -> Nullable<Text>,
        status -> Text,
        severity -> Text,
        latency_ms -> Nullable<BigInt>,
        created_at -> BigInt,
        received_at -> BigInt,
        payload -> Text,
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
        session_id -> Text,
        agent_id -> Text,
        uuid -> Text,
        parent_uuid -> Nullable<Text>,
        role -> Text,
        content -> Text,
        model -> Nullable<Text>,
        input_tokens -> Nullable<BigInt>,
        output_tokens -> Nullable<BigInt>,
        cache_read_tokens -> Nullable<BigInt>,
        cache_creation_tokens -> Nullable<BigInt>,
        created_at -> BigInt,
        received_at -> BigInt,
    }
}

diesel::table! {
    sessions (session_id) {
        session_id -> Text,
        source_app -> Text,
        first_seen -> BigInt,
        last_seen -> BigInt,
        cwd -> Nullable<Text>,
        model -> Nullable<Text>,
        status -> Text,
        status_at -> BigInt,
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
    tool_calls (session_id, tool_use_id) {
        session_id -> Text,
        tool_use_id -> Text,
        pre_at -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        post_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    event_outbox (seq) {
        seq -> BigInt,
        owner -> Text,
        event_ids -> Text,
        created_at -> BigInt,
    }
}
