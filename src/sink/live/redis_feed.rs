//! The live hub fed from the Redis stream instead of this process's committer (with Redis configured): the
//! clients of every replica see every replica's events, in the order they reached the stream.

use super::Hub;
use crate::model::StoredEvent;

/// Feeds the hub from the Redis stream, from its end at start: every replica's clients see every replica's events
/// (in the order they reached the stream). Reconnects after a failure; what was added meanwhile is read on return.
pub async fn follow_redis(hub: Hub, url: String, key: String) {
    use redis::AsyncCommands;
    use redis::streams::{StreamReadOptions, StreamReadReply};
    // `$` would mean "after whatever is last at each read": after a reconnect, entries added meanwhile would be
    // skipped. Start from the entry that is last now, by its id.
    let mut last_id: Option<String> = None;
    let mut logged = false;
    loop {
        // XREAD blocks for a second: the connection must wait longer than that for an answer.
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(std::time::Duration::from_secs(5)));
        let conn = match redis::Client::open(url.as_str()) {
            Ok(c) => {
                c.get_multiplexed_async_connection_with_config(&config)
                    .await
            }
            Err(e) => Err(e),
        };
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                if !std::mem::replace(&mut logged, true) {
                    tracing::warn!(error = %e, "live stream cannot read Redis; retrying");
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if std::mem::take(&mut logged) {
            tracing::info!("live stream reads Redis again");
        }
        if last_id.is_none() {
            let newest: redis::RedisResult<redis::streams::StreamRangeReply> =
                conn.xrevrange_count(&key, "+", "-", 1).await;
            match newest {
                Ok(r) => last_id = Some(r.ids.first().map_or("0-0".to_string(), |e| e.id.clone())),
                Err(e) => {
                    tracing::warn!(error = %e, "live stream cannot read Redis; retrying");
                    logged = true;
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        loop {
            let from = last_id.clone().unwrap_or_else(|| "0-0".into());
            let reply: redis::RedisResult<Option<StreamReadReply>> = conn
                .xread_options(
                    &[&key],
                    &[&from],
                    &StreamReadOptions::default().count(1000).block(1000),
                )
                .await;
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "live stream lost Redis; reconnecting");
                    logged = true;
                    break;
                }
            };
            let mut batch = Vec::new();
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                last_id = Some(entry.id.clone());
                let data: Option<String> = entry.get("data");
                if let Some(ev) = data.and_then(|d| serde_json::from_str::<StoredEvent>(&d).ok()) {
                    batch.push(ev);
                }
            }
            if !batch.is_empty() {
                hub.publish(batch.into());
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
