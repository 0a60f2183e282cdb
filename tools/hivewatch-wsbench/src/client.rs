//! One WebSocket client of the live stream: connects (from a chosen source address, so that many clients do
//! not run out of ephemeral ports), waits for its first `backfill` message, then reads until told to stop,
//! timing every benchmark event it receives.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::latency::Latency;

/// What every client shares with the others and with the main task.
pub struct Shared {
    /// Distinguishes this run's events from anything else hivewatch commits meanwhile.
    pub run_tag: u64,
    pub latency: Latency,
    /// Clients that received their first backfill.
    pub connected: AtomicUsize,
    /// Which clients connected, by index.
    pub connected_clients: Vec<AtomicBool>,
    pub connect_errors: AtomicUsize,
    pub first_error: Mutex<Option<String>>,
    /// Benchmark events received, over all clients.
    pub delivered: AtomicU64,
    /// Sum of the counts of the `missed` messages received.
    pub missed: AtomicU64,
}

impl Shared {
    pub fn new(run_tag: u64, latency: Latency, clients: usize) -> Shared {
        Shared {
            run_tag,
            latency,
            connected: AtomicUsize::new(0),
            connected_clients: (0..clients).map(|_| AtomicBool::new(false)).collect(),
            connect_errors: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            delivered: AtomicU64::new(0),
            missed: AtomicU64::new(0),
        }
    }

    fn connect_failed(&self, e: &anyhow::Error) {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| format!("{e:#}"));
    }
}

/// Where and how a client connects.
pub struct Target {
    pub server: SocketAddr,
    /// Host header and request path, e.g. `ws://127.0.0.1:4318/observability/dashboard/stream?backfill=0`.
    pub url: String,
    pub source_ip: Option<IpAddr>,
    pub timeout: Duration,
}

/// How one client's run ended.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub connected: bool,
    /// Benchmark events of this run received.
    pub delivered: u64,
    pub missed: u64,
    /// Benchmark events received twice (by `bench_seq`; checked only while sequence numbers arrive in order).
    pub out_of_order: u64,
    /// Events that were not this run's benchmark events.
    pub foreign: u64,
    pub heartbeats: u64,
    /// The server closed the connection, or it failed, before the client was told to stop.
    pub lost: bool,
    /// Bytes of the benchmark event messages received.
    pub event_bytes: u64,
}

/// The fields of a server message the benchmark reads; serde skips the rest.
#[derive(Deserialize)]
struct ServerMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    event: Option<EventPart>,
    count: Option<u64>,
}

#[derive(Deserialize)]
struct EventPart {
    payload: Option<BenchFields>,
}

#[derive(Deserialize)]
struct BenchFields {
    bench_run: Option<u64>,
    bench_seq: Option<u64>,
    bench_sent_ns: Option<u64>,
}

/// Nanoseconds since the Unix epoch: the clock the sender stamps events with.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

type Ws = WebSocketStream<TcpStream>;

async fn connect(target: &Target) -> Result<Ws> {
    let socket = match target.server {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .context("socket")?;
    if let Some(ip) = target.source_ip {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("bind to {ip}"))?;
    }
    let stream = socket
        .connect(target.server)
        .await
        .with_context(|| format!("connect to {}", target.server))?;
    stream.set_nodelay(true)?;
    // The client reads small frames: a smaller read buffer than the default 128 KiB keeps thousands of them
    // affordable for the benchmark process (hivewatch's own buffers are what is measured, not these).
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(target.url.as_str(), stream, Some(config))
            .await
            .context("WebSocket handshake")?;
    // The first message must be the subscription's backfill.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let msg: ServerMessage = serde_json::from_str(&t).context("first message")?;
                match msg.kind.as_ref() {
                    "backfill" => return Ok(ws),
                    "heartbeat" => continue,
                    other => bail!("first message is {other:?}, not backfill"),
                }
            }
            Some(Ok(Message::Close(f))) => bail!("closed before the backfill: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e).context("reading the backfill"),
            None => bail!("connection ended before the backfill"),
        }
    }
}

/// Runs client `index` until `stop` turns true. `connecting` bounds how many handshakes run at once.
pub async fn run(
    index: usize,
    target: Arc<Target>,
    shared: Arc<Shared>,
    connecting: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome::default();
    let ws = {
        let _permit = connecting.acquire().await;
        tokio::time::timeout(target.timeout, connect(&target))
            .await
            .map_err(|_| anyhow::anyhow!("no backfill within {:?}", target.timeout))
            .and_then(|r| r)
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            shared.connect_failed(&e);
            return out;
        }
    };
    out.connected = true;
    shared.connected_clients[index].store(true, Ordering::Relaxed);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut last_seq: Option<u64> = None;

    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let received = now_ns();
                    handle(index, &t, received, &shared, &mut out, &mut last_seq);
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    out.lost = true;
                    return out;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    // Leave politely, but do not wait long for the server's half of the closing handshake.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        ws.close(None).await?;
        while ws.next().await.is_some() {}
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    })
    .await;
    out
}

fn handle(
    index: usize,
    text: &str,
    received_ns: u64,
    shared: &Shared,
    out: &mut Outcome,
    last_seq: &mut Option<u64>,
) {
    let Ok(msg) = serde_json::from_str::<ServerMessage>(text) else {
        out.foreign += 1;
        return;
    };
    match msg.kind.as_ref() {
        "event" => {
            let bench = msg.event.and_then(|e| e.payload);
            let Some(BenchFields {
                bench_run: Some(run),
                bench_seq: Some(seq),
                bench_sent_ns: Some(sent),
            }) = bench
            else {
                out.foreign += 1;
                return;
            };
            if run != shared.run_tag {
                out.foreign += 1;
                return;
            }
            if last_seq.is_some_and(|last| seq <= last) {
                out.out_of_order += 1;
            }
            *last_seq = Some(seq);
            out.delivered += 1;
            out.event_bytes += text.len() as u64;
            shared.delivered.fetch_add(1, Ordering::Relaxed);
            let micros = received_ns.saturating_sub(sent) / 1000;
            shared.latency.record(index, seq, micros);
        }
        "missed" => {
            let n = msg.count.unwrap_or(0);
            out.missed += n;
            shared.missed.fetch_add(n, Ordering::Relaxed);
        }
        "heartbeat" => out.heartbeats += 1,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared::new(7, Latency::new(0, 10), 1)
    }

    #[test]
    fn events_of_this_run_are_timed_and_others_are_not() {
        let s = shared();
        let mut out = Outcome::default();
        let mut last = None;
        // Keys in the order hivewatch writes them (sorted), with fields the benchmark does not read.
        let ev = |run: u64, seq: u64| {
            format!(
                r#"{{"event":{{"id":3,"event_type":"Notification","payload":{{"bench_run":{run},"bench_seq":{seq},"bench_sent_ns":1000000,"hook_event_name":"Notification","session_id":"x"}}}},"type":"event"}}"#
            )
        };
        let mut feed = |text: &str, received_ns: u64| {
            handle(0, text, received_ns, &s, &mut out, &mut last);
        };
        feed(&ev(7, 1), 3_000_000);
        feed(&ev(7, 1), 3_000_000);
        feed(&ev(8, 2), 3_000_000);
        feed(r#"{"type":"missed","count":5}"#, 0);
        feed(r#"{"time":"2026-11-25T00:00:00Z","type":"heartbeat"}"#, 0);
        feed(r#"{"events":[],"type":"backfill"}"#, 0);
        feed("not json", 0);
        assert_eq!(out.delivered, 2);
        assert_eq!(out.out_of_order, 1);
        assert_eq!(out.foreign, 2);
        assert_eq!(out.missed, 5);
        assert_eq!(out.heartbeats, 1);
        assert_eq!(s.delivered.load(Ordering::Relaxed), 2);
        let (all, _) = s.latency.merged();
        assert_eq!(all.len(), 2);
        assert!((all.max() as i64 - 2000).abs() <= 2);
    }
}
