//! The PostgreSQL and Redis harness of `tests/common/services.rs` against the real servers: fresh
//! databases, a throwaway cluster that survives a crash, a throwaway Redis that restarts, the shared Redis.

mod common;

use std::time::Duration;

use common::services::{
    TestPostgres, TestRedis, fresh_database, query_rows, shared_redis, unique_stream_key,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn redis_conn(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url)?;
    tokio::time::timeout(
        Duration::from_secs(10),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_databases_are_distinct_and_usable() {
    let a = fresh_database().await;
    let b = fresh_database().await;
    assert_ne!(a, b);

    for (url, note) in [(&a, "in a"), (&b, "in b")] {
        let mut conn = connect(url).await;
        exec(
            &mut conn,
            "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL)",
        )
        .await;
        exec(
            &mut conn,
            &format!("INSERT INTO notes VALUES (1, '{note}')"),
        )
        .await;
    }
    assert_eq!(
        query_rows(&a, "SELECT body AS v FROM notes").await,
        ["in a"]
    );
    assert_eq!(
        query_rows(&b, "SELECT body AS v FROM notes").await,
        ["in b"]
    );
    let mut names = Vec::new();
    for url in [&a, &b] {
        names.extend(query_rows(url, "SELECT current_database() AS v").await);
    }
    assert!(names.iter().all(|n| n.starts_with("hw_test_")), "{names:?}");
    assert_ne!(names[0], names[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_postgres_keeps_committed_rows_across_a_crash_and_a_restart() {
    let pg = TestPostgres::start();
    let url = pg.url();
    let port = pg.port();
    {
        let mut conn = connect(&url).await;
        exec(
            &mut conn,
            "CREATE TABLE kept (id INT PRIMARY KEY, body TEXT NOT NULL)",
        )
        .await;
        exec(&mut conn, "INSERT INTO kept VALUES (1, 'before the crash')").await;
    }

    pg.stop_immediate();
    assert!(
        AsyncPgConnection::establish(&url).await.is_err(),
        "still accepting connections after stop_immediate"
    );
    pg.start_again();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.url(), url);
    assert_eq!(
        query_rows(&url, "SELECT body AS v FROM kept WHERE id = 1").await,
        ["before the crash"]
    );

    let mut conn = connect(&url).await;
    exec(
        &mut conn,
        "INSERT INTO kept VALUES (2, 'before the clean stop')",
    )
    .await;
    drop(conn);
    pg.stop_fast();
    pg.start_again();
    assert_eq!(
        query_rows(&url, "SELECT body AS v FROM kept ORDER BY id").await,
        ["before the crash", "before the clean stop"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_redis_stops_and_starts_again_on_its_port() {
    let redis = TestRedis::start();
    let url = redis.url();
    let mut conn = redis_conn(&url)
        .await
        .expect("connect to the throwaway Redis");
    let () = redis::cmd("SET")
        .arg("hivewatch:test:key")
        .arg("value")
        .query_async(&mut conn)
        .await
        .expect("SET");

    redis.stop();
    let refused = match redis_conn(&url).await {
        Err(_) => true,
        Ok(mut c) => redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .is_err(),
    };
    assert!(refused, "Redis still answers after stop()");
    assert!(
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_err(),
        "the connection from before stop() still works"
    );

    redis.start_again();
    assert_eq!(redis.url(), url);
    let mut conn = redis_conn(&url).await.expect("connect after start_again");
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_redis_answers_and_keys_are_unique() {
    let url = shared_redis().await;
    let key = unique_stream_key("shared_redis_answers");
    assert!(
        key.starts_with("hivewatch:test:shared_redis_answers:"),
        "{key}"
    );
    assert_ne!(key, unique_stream_key("shared_redis_answers"));

    let mut conn = redis_conn(&url).await.expect("connect to the shared Redis");
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("1")
        .arg("EX")
        .arg(60)
        .query_async(&mut conn)
        .await
        .expect("SET");
    let value: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(value, "1");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("DEL");
}
