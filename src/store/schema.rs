//! The tables both back-ends share, declared once: each back-end's `schema` module instantiates [`tables!`] with
//! its own column types (SQLite: ids and JSON as text, times as microseconds; Postgres: `UUID`, `TIMESTAMPTZ`,
//! `JSONB`). The migrations in `migrations/sqlite` and `migrations/postgres` create them.

macro_rules! tables {
    (
        uuid = $uuid:ty,
        time = $time:ty,
        json = $json:ty,
        latency = $latency:ty,
        status_at = $status_at:ty,
        id_list = $id_list:ty $(,)?
    ) => {
        diesel::table! {
            agent_events (id) {
                id -> BigInt,
                event_id -> $uuid,
                event_type -> Text,
                source -> Text,
                session_id -> $uuid,
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
                latency_ms -> Nullable<$latency>,
                created_at -> $time,
                received_at -> $time,
                payload -> $json,
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
                session_id -> $uuid,
                agent_id -> Text,
                uuid -> Text,
                parent_uuid -> Nullable<Text>,
                role -> Text,
                content -> $json,
                model -> Nullable<Text>,
                input_tokens -> Nullable<BigInt>,
                output_tokens -> Nullable<BigInt>,
                cache_read_tokens -> Nullable<BigInt>,
                cache_creation_tokens -> Nullable<BigInt>,
                created_at -> $time,
                received_at -> $time,
            }
        }

        diesel::table! {
            sessions (session_id) {
                session_id -> $uuid,
                source_app -> Text,
                first_seen -> $time,
                last_seen -> $time,
                cwd -> Nullable<Text>,
                model -> Nullable<Text>,
                status -> Text,
                status_at -> $status_at,
                event_count -> BigInt,
                tool_calls -> BigInt,
                tool_failures -> BigInt,
                error_count -> BigInt,
                input_tokens -> BigInt,
                output_tokens -> BigInt,
                cost_usd -> Double,
                state -> Text,
                state_since -> Nullable<$time>,
                state_at -> Nullable<$time>,
                waiting_on -> Nullable<Text>,
                state_agent -> Nullable<Text>,
                state_detail -> Nullable<Text>,
                current_tool -> Nullable<Text>,
                subagents -> BigInt,
                stop_pending -> Bool,
                hooked -> Bool,
                notified_since -> Nullable<$time>,
            }
        }

        diesel::table! {
            notifications (id) {
                id -> BigInt,
                session_id -> $uuid,
                kind -> Text,
                episode -> $time,
                target -> Text,
                body -> Text,
                created_at -> $time,
                attempts -> Integer,
                next_attempt_at -> $time,
                lease_until -> Nullable<$time>,
                sent_at -> Nullable<$time>,
                last_error -> Nullable<Text>,
            }
        }

        diesel::table! {
            event_outbox (seq) {
                seq -> BigInt,
                owner -> Text,
                event_ids -> $id_list,
                created_at -> $time,
            }
        }
    };
}

pub(super) use tables;
