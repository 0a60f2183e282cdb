//! The WebSocket live stream (`/observability/dashboard/stream`), its connection list and broadcasts.
//!
//! A client subscribes with filters (query parameters at connect, or a `subscribe` message at any time); after
//! each subscription it receives a backfill of the last N matching events, then every newly committed matching
//! event in commit order, heartbeats, and a `missed` message when its queue overflowed.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::StoredEvent;
use crate::sink::live::{Filter, Subject, Subscription};
use crate::state::ReadState;
use crate::store::{EventQuery, MAX_LIMIT, Order};

pub const DEFAULT_BACKFILL: usize = 100;
/// Events a backfill holds at most.
const MAX_BACKFILL: usize = 1000;

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe {
        #[serde(default)]
        filters: Filter,
        backfill: Option<usize>,
    },
    Ping,
}

/// Filters and backfill from the query string: `source_app`, `session_id`, `agent_id`, `event_type` (each may
/// repeat) and `backfill`.
fn parse_query(raw: Option<&str>) -> Result<(Filter, usize), String> {
    let mut filter = Filter::default();
    let mut backfill = DEFAULT_BACKFILL;
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = crate::auth::percent_decode(v, true);
        match k {
            "source_app" => filter.source_apps.push(v),
            "session_id" => filter
                .sessions
                .push(Uuid::parse_str(&v).map_err(|_| format!("session_id {v:?} is not a UUID"))?),
            "agent_id" => filter.agents.push(v),
            // Read by the token check (for browsers, which cannot set headers on a WebSocket).
            "access_token" => {}
            "event_type" => filter.event_types.push(v),
            "backfill" => {
                backfill = v
                    .parse()
                    .map_err(|_| format!("backfill {v:?} is not a number"))?
            }
            other => return Err(format!("unknown parameter {other:?}")),
        }
    }
    Ok((filter, backfill.min(MAX_BACKFILL)))
}

pub async fn stream(
    State(state): State<ReadState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let (filter, backfill) = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    };
    // Clients send only small control messages: small buffers keep an idle connection cheap (the defaults reserve
    // 128 KiB for reading alone).
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let sub = state.hub.subscribe(peer.to_string(), filter.clone());
            serve_client(state, socket, sub, filter, backfill).await;
        })
}

/// Tells the client how many events it missed since it was last told, if any; false when it is gone.
async fn report_missed(socket: &mut WebSocket, missed: u64, reported: &mut u64) -> bool {
    if missed <= *reported {
        return true;
    }
    let msg = json!({"type": "missed", "count": missed - *reported});
    *reported = missed;
    send(socket, &msg.to_string()).await
}

async fn send(socket: &mut WebSocket, text: &str) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn serve_client(
    state: ReadState,
    mut socket: WebSocket,
    mut sub: Subscription,
    mut filter: Filter,
    backfill: usize,
) {
    let mut heartbeat = tokio::time::interval(state.hub.heartbeat);
    heartbeat.tick().await;
    // What this client missed: its own queue's overflows, and what the hub lost for everyone since it connected.
    let lost_at_start = state.hub.stats.lost.load(Ordering::Relaxed);
    let missed_now = |sub: &Subscription| {
        sub.info.missed.load(Ordering::Relaxed)
            + state
                .hub
                .stats
                .lost
                .load(Ordering::Relaxed)
                .saturating_sub(lost_at_start)
    };
    let mut reported_missed = 0;
    let mut stopping = state.stopping.clone();
    // Ids sent by the last backfill: the queue may hold them too (committed while the backfill was read).
    let mut backfilled = match send_backfill(&state, &mut socket, &filter, backfill).await {
        Some(ids) => ids,
        None => return,
    };
    loop {
        tokio::select! {
            changed = stopping.changed() => {
                let stop = changed.is_err() || *stopping.borrow_and_update();
                if stop {
                    // Shutdown: say goodbye so that clients reconnect to whoever serves next.
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            }
            next = sub.events.recv() => {
                let Some(out) = next else { return };
                let wanted = match &out.subject {
                    Subject::Event(ev) => filter.matches(ev) && !backfilled.remove(&ev.id),
                    Subject::State(change) => filter.matches_session(&change.session),
                };
                if !wanted {
                    continue;
                }
                if !send(&mut socket, &out.frame).await {
                    return;
                }
                sub.info.sent.fetch_add(1, Ordering::Relaxed);
                if !report_missed(&mut socket, missed_now(&sub), &mut reported_missed).await {
                    return;
                }
            }
            notice = sub.notices.recv() => {
                let Some(frame) = notice else { return };
                if !send(&mut socket, &frame).await {
                    return;
                }
            }
            _ = heartbeat.tick() => {
                let msg = json!({"type": "heartbeat", "time": chrono::Utc::now()});
                if !send(&mut socket, &msg.to_string()).await {
                    return;
                }
                // A client that stopped reading still gets told what it missed.
                if !report_missed(&mut socket, missed_now(&sub), &mut reported_missed).await {
                    return;
                }
            }
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Subscribe { filters, backfill }) => {
                        filter = filters;
                        sub.set_filter(filter.clone());
                        let n = backfill.unwrap_or(DEFAULT_BACKFILL).min(MAX_BACKFILL);
                        match send_backfill(&state, &mut socket, &filter, n).await {
                            Some(ids) => backfilled = ids,
                            None => return,
                        }
                    }
                    Ok(ClientMessage::Ping) => {
                        if !send(&mut socket, &json!({"type": "pong"}).to_string()).await {
                            return;
                        }
                    }
                    Err(e) => {
                        let msg = json!({"type": "error", "message": format!("unreadable message: {e}")});
                        if !send(&mut socket, &msg.to_string()).await {
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Sends the last `n` stored events matching `filter`, oldest first; returns their ids (`None`: the client left).
async fn send_backfill(
    state: &ReadState,
    socket: &mut WebSocket,
    filter: &Filter,
    n: usize,
) -> Option<HashSet<i64>> {
    let events = if n == 0 {
        Vec::new()
    } else {
        match backfill_events(state, filter, n).await {
            Ok(events) => events,
            Err(e) => {
                let msg = json!({"type": "error", "message": format!("backfill: {e}")});
                send(socket, &msg.to_string()).await.then_some(())?;
                Vec::new()
            }
        }
    };
    let ids = events.iter().map(|e| e.id).collect();
    let msg = json!({"type": "backfill", "events": events});
    send(socket, &msg.to_string()).await.then_some(ids)
}

/// The store is queried with the filter's single-valued fields; lists of several values are applied here, over
/// a larger page.
async fn backfill_events(
    state: &ReadState,
    filter: &Filter,
    n: usize,
) -> Result<Vec<StoredEvent>, crate::store::StoreError> {
    let one = |v: &[String]| (v.len() == 1).then(|| v[0].clone());
    let query = EventQuery {
        session_id: (filter.sessions.len() == 1).then(|| filter.sessions[0]),
        agent_id: one(&filter.agents),
        event_type: one(&filter.event_types),
        source_app: one(&filter.source_apps),
        limit: Some(MAX_LIMIT),
        order: Some(Order::Desc),
        ..Default::default()
    };
    let page = state.store.events(query).await?;
    let mut events: Vec<StoredEvent> = page
        .events
        .into_iter()
        .filter(|e| filter.matches(e))
        .take(n)
        .collect();
    events.reverse();
    Ok(events)
}

pub async fn connections(State(state): State<ReadState>) -> Json<Value> {
    let clients: Vec<Value> = state
        .hub
        .clients()
        .into_iter()
        .map(|(info, filter)| {
            json!({
                "id": info.id,
                "peer": info.peer,
                "connected_at": info.connected_at,
                "filters": filter,
                "sent": info.sent.load(Ordering::Relaxed),
                "missed": info.missed.load(Ordering::Relaxed),
            })
        })
        .collect();
    Json(json!({ "connections": clients.len(), "clients": clients }))
}

pub async fn broadcast(State(state): State<ReadState>, body: axum::body::Bytes) -> Response {
    let message: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let error = format!("body is not valid JSON: {e}");
            return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
        }
    };
    // `{"message": …}` as the seed sends it, or any JSON as the message itself.
    let message = match message {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("message") => {
            o.remove("message").unwrap_or(Value::Null)
        }
        other => other,
    };
    let delivered = state.hub.broadcast(&message);
    Json(json!({ "delivered": delivered })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_filters_parse_and_bad_ones_are_named() {
        let s = Uuid::new_v4();
        let (f, n) = parse_query(Some(&format!(
            "session_id={s}&event_type=PreToolUse&event_type=Stop&source_app=my%20app&backfill=5"
        )))
        .unwrap();
        assert_eq!(f.sessions, vec![s]);
        assert_eq!(f.event_types, vec!["PreToolUse", "Stop"]);
        assert_eq!(f.source_apps, vec!["my app"]);
        assert_eq!(n, 5);
        assert!(
            parse_query(Some("session_id=x"))
                .unwrap_err()
                .contains("session_id")
        );
        assert!(
            parse_query(Some("colour=red"))
                .unwrap_err()
                .contains("colour")
        );
        assert_eq!(parse_query(None).unwrap().1, DEFAULT_BACKFILL);
    }
}
