//! The SQLite store's tables (`migrations/sqlite/`): the shared ones with SQLite's column types, and
//! `tool_calls`, which only SQLite reads through Diesel (Postgres pairs tool calls in one array statement).

crate::store::schema::tables!(
    uuid = Text,
    time = BigInt,
    json = Text,
    latency = BigInt,
    status_at = BigInt,
    id_list = Text,
);

diesel::table! {
    tool_calls (session_id, tool_use_id) {
        session_id -> Text,
        tool_use_id -> Text,
        pre_at -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        post_at -> Nullable<BigInt>,
    }
}
