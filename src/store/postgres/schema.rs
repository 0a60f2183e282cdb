//! The Postgres store's tables (`migrations/postgres/`), with Postgres's native column types.

crate::store::schema::tables!(
    uuid = Uuid,
    time = Timestamptz,
    json = Jsonb,
    latency = Integer,
    status_at = Nullable<Timestamptz>,
    id_list = Array<BigInt>,
);
