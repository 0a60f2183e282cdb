//! Concurrent requests share one transaction, and each is answered only once that transaction has committed.

mod common;

use std::time::Duration;

use common::{Server, StoreLock, client};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn requests_queued_behind_a_commit_share_the_next_one() {
    let server = Server::start_with_env(&[], &[("HIVEWATCH_LOG", "hivewatch::pipeline=debug")]);
    // Hold the write lock so that the first request's commit waits and the others queue behind it.
    let lock = StoreLock::hold(&server).await;

    let senders: Vec<_> = (0..20)
        .map(|i| {
            let url = server.url("/api/v1/observability/event");
            tokio::spawn(async move {
                let body = json!({"session_id": format!("group-{i}"), "hook_event_name": "Stop"});
                client()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Nothing is acknowledged while nothing is committed.
    assert!(
        senders.iter().all(|s| !s.is_finished()),
        "an answer came before its commit"
    );
    lock.release().await;
    for s in senders {
        assert_eq!(s.await.unwrap(), 200);
    }

    let log = server.stderr_log();
    let commits: Vec<usize> = log
        .lines()
        .filter(|l| l.contains("committed"))
        .filter_map(|l| {
            l.split("requests=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        commits.iter().sum::<usize>(),
        20,
        "every request committed once: {commits:?}"
    );
    assert!(
        commits.len() <= 3,
        "20 queued requests took {} commits: {commits:?}",
        commits.len()
    );
    assert!(
        commits.iter().any(|&n| n >= 10),
        "no commit grouped requests: {commits:?}"
    );
}
