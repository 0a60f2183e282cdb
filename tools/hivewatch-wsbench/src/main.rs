//! hivewatch-wsbench: measures hivewatch's WebSocket live stream (`/observability/dashboard/stream`).
//!
//! Load mode (default): opens `--clients` WebSocket clients, waits until each has received its first `backfill`
//! message, then posts hook events at a steady `--rate` to `/api/v1/observability/event` (`--batch` events per
//! request) and, in every client, times each event from the moment its request was sent to the moment the client
//! read it. Sender and clients run on the same machine and read the same wall clock. The first `--warmup`
//! seconds of events are delivered and counted but not timed. After the last request is answered the clients
//! get up to `--drain` seconds to receive what is still on its way, then close.
//!
//! With `--subscribe session` (default) client `i` follows session `i % --sessions` only
//! (`?session_id=…&backfill=0`), so each event goes to about `clients / sessions` clients; with
//! `--subscribe all` every client follows every event.
//!
//! Idle mode (`--idle`): connects the clients, prints `READY {…}`, holds them `--hold` seconds (they receive
//! only heartbeats), and with `--server-pid` reads the server's resident memory after `--settle` seconds.
//!
//! Either mode ends with one `RESULT {json}` line on stdout; progress goes to stderr.

mod client;
mod latency;
mod proc;
mod sender;

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::client::{Outcome, Shared, Target};
use crate::latency::{Latency, p99_ms, round3, summary};
use crate::proc::CpuMeter;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Subscribe {
    /// Client `i` follows session `i % --sessions`.
    Session,
    /// Every client follows every event.
    All,
}

impl Subscribe {
    fn as_str(self) -> &'static str {
        match self {
            Subscribe::Session => "session",
            Subscribe::All => "all",
        }
    }
}

/// Benchmark for hivewatch's WebSocket live stream.
#[derive(Parser, Debug, Clone)]
#[command(name = "hivewatch-wsbench", version, about)]
struct Args {
    /// hivewatch's HTTP address (the OTLP HTTP listener, which also serves the stream), host:port.
    #[arg(long)]
    addr: SocketAddr,
    /// WebSocket clients to connect.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Sessions the events are spread over (round robin).
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// What each client subscribes to.
    #[arg(long, value_enum, default_value_t = Subscribe::Session)]
    subscribe: Subscribe,
    /// Events per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Events per request (a JSON array).
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Timed seconds of load, after the warm-up.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Seconds of load before the timed part.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Seconds to wait, after the last answer, for events still on their way (and `missed` reports, which the
    /// server sends with the next event or heartbeat).
    #[arg(long, default_value_t = 12)]
    drain: u64,
    /// Only connect the clients and hold them (memory per connection).
    #[arg(long)]
    idle: bool,
    /// Idle mode: seconds to hold the connections.
    #[arg(long, default_value_t = 20)]
    hold: u64,
    /// Idle mode: seconds after the last connection before the server's memory is read.
    #[arg(long, default_value_t = 5)]
    settle: u64,
    /// Source addresses for the clients, comma-separated, used round robin (e.g. 127.0.0.2,127.0.0.3): each
    /// has its own ephemeral ports. Default: chosen by the kernel.
    #[arg(long, value_delimiter = ',')]
    source_ip: Vec<IpAddr>,
    /// WebSocket handshakes in progress at once.
    #[arg(long, default_value_t = 64)]
    connect_concurrency: usize,
    /// Seconds a client may take from connect to its first backfill.
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
    /// hivewatch's process id: its CPU use and resident memory are read from /proc and reported.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Bearer token for ingest, when hivewatch requires one.
    #[arg(long)]
    ingest_token: Option<String>,
    /// Bearer token for reads, when hivewatch requires one (sent as `?access_token=` on the stream).
    #[arg(long)]
    read_token: Option<String>,
    /// Worker threads of the benchmark's own runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Free text copied into the RESULT line.
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.rate == 0 || args.batch == 0 || args.sessions == 0 || args.connect_concurrency == 0 {
        bail!("--rate, --batch, --sessions and --connect-concurrency must be positive");
    }
    if !args.idle && args.duration == 0 {
        bail!("--duration must be positive");
    }
    if args.batch * 1_000_000_000 / args.rate == 0 {
        bail!(
            "--batch {} at --rate {} leaves no time between requests",
            args.batch,
            args.rate
        );
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = args.threads {
        rt.worker_threads(t.max(1));
    }
    rt.enable_all().build()?.block_on(run(args))
}

/// A tag for this run: events and sessions of other runs are recognised and ignored. Kept below 2^48 so that
/// any JSON reader holds it exactly.
fn run_tag() -> u64 {
    (client::now_ns() ^ (u64::from(std::process::id()) << 20)) & 0xffff_ffff_ffff
}

fn session_ids(tag: u64, n: usize) -> Arc<[String]> {
    (0..n)
        .map(|i| {
            format!(
                "{:08x}-{:04x}-4000-8000-{:012x}",
                tag >> 16,
                tag & 0xffff,
                i
            )
        })
        .collect()
}

/// The stream URL of client `i`.
fn stream_url(args: &Args, sessions: &[String], i: usize) -> String {
    let mut url = format!(
        "ws://{}/observability/dashboard/stream?backfill=0",
        args.addr
    );
    if args.subscribe == Subscribe::Session {
        url.push_str("&session_id=");
        url.push_str(&sessions[i % sessions.len()]);
    }
    if let Some(t) = &args.read_token {
        url.push_str("&access_token=");
        url.push_str(t);
    }
    url
}

fn result_line(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "RESULT {v}");
    let _ = out.flush();
}

async fn run(args: Args) -> Result<()> {
    let tag = run_tag();
    let sessions = session_ids(tag, args.sessions);
    let warmup_events = args.rate * args.warmup;
    let measured_events = args.rate * args.duration;
    let shared = Arc::new(Shared::new(
        tag,
        Latency::new(warmup_events, measured_events),
        args.clients,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let connecting = Arc::new(Semaphore::new(args.connect_concurrency));

    eprintln!(
        "wsbench: connecting {} clients ({} subscription) to {}",
        args.clients,
        args.subscribe.as_str(),
        args.addr
    );
    let connect_started = Instant::now();
    let mut handles = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let target = Arc::new(Target {
            server: args.addr,
            url: stream_url(&args, &sessions, i),
            source_ip: (!args.source_ip.is_empty())
                .then(|| args.source_ip[i % args.source_ip.len()]),
            timeout: Duration::from_secs(args.connect_timeout),
        });
        handles.push(tokio::spawn(client::run(
            i,
            target,
            shared.clone(),
            connecting.clone(),
            stop_rx.clone(),
        )));
    }
    let mut last_progress = Instant::now();
    loop {
        let connected = shared.connected.load(Ordering::Relaxed);
        let failed = shared.connect_errors.load(Ordering::Relaxed);
        if connected + failed >= args.clients {
            break;
        }
        if last_progress.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "wsbench: {connected} connected, {failed} failed of {}",
                args.clients
            );
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_s = round3(connect_started.elapsed().as_secs_f64());
    let connected = shared.connected.load(Ordering::Relaxed);
    let connect_errors = shared.connect_errors.load(Ordering::Relaxed);
    let first_connect_error = shared
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    eprintln!(
        "wsbench: {connected} connected, {connect_errors} failed, in {connect_s} s{}",
        first_connect_error
            .as_deref()
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default()
    );
    let base = json!({
        "label": args.label,
        "subscribe": args.subscribe.as_str(),
        "clients": args.clients,
        "sessions": args.sessions,
        "connected": connected,
        "connect_errors": connect_errors,
        "first_connect_error": first_connect_error,
        "connect_s": connect_s,
    });

    if args.idle {
        return idle(&args, base, stop_tx, handles).await;
    }

    let plan = Arc::new(sender::Plan {
        server: args.addr,
        token: args.ingest_token.clone(),
        run_tag: tag,
        sessions: sessions.clone(),
        rate: args.rate,
        batch: args.batch,
        total_events: warmup_events + measured_events,
        request_timeout: Duration::from_secs(10),
    });
    let server_rss_before = args.server_pid.and_then(proc::rss_kib);
    let server_cpu = args.server_pid.map(CpuMeter::start);
    let bench_cpu = CpuMeter::start(std::process::id());
    let machine_cpu = CpuMeter::machine();
    eprintln!(
        "wsbench: sending {} events/s for {} + {} s",
        args.rate, args.warmup, args.duration
    );
    let sent = sender::run(plan).await;
    let server_cpu_pct = server_cpu.as_ref().and_then(CpuMeter::percent);
    let bench_cpu_pct = bench_cpu.percent();
    let machine_cpu_pct = machine_cpu.percent();
    let server_rss_after = args.server_pid.and_then(proc::rss_kib);

    // What the connected clients should receive: their session's accepted events, or all of them.
    let accepted = sent.accepted();
    let expected_of = |i: usize| match args.subscribe {
        Subscribe::Session => sent.accepted_by_session[i % args.sessions],
        Subscribe::All => accepted,
    };
    let expected_connected: u64 = (0..args.clients)
        .filter(|&i| shared.connected_clients[i].load(Ordering::Relaxed))
        .map(expected_of)
        .sum();
    let drain_started = Instant::now();
    while shared.delivered.load(Ordering::Relaxed) + shared.missed.load(Ordering::Relaxed)
        < expected_connected
        && drain_started.elapsed() < Duration::from_secs(args.drain)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_s = round3(drain_started.elapsed().as_secs_f64());
    let _ = stop_tx.send(true);

    let mut outcomes = Vec::with_capacity(handles.len());
    for (i, h) in handles.into_iter().enumerate() {
        let o = h.await.unwrap_or_default();
        outcomes.push((expected_of(i), o));
    }
    let connected_outcomes = || outcomes.iter().filter(|(_, o)| o.connected);
    let expected: u64 = connected_outcomes().map(|(e, _)| e).sum();
    let delivered: u64 = connected_outcomes().map(|(_, o)| o.delivered).sum();
    let missed: u64 = connected_outcomes().map(|(_, o)| o.missed).sum();
    let clients_short = connected_outcomes()
        .filter(|(e, o)| o.delivered < *e)
        .count();
    let clients_lost = connected_outcomes().filter(|(_, o)| o.lost).count();
    let sum = |f: fn(&Outcome) -> u64| connected_outcomes().map(|(_, o)| f(o)).sum::<u64>();
    let event_bytes = sum(|o| o.event_bytes);

    let (all, phases) = shared.latency.merged();
    let send_s = sent.elapsed.as_secs_f64();
    let result = merge(
        base,
        json!({
            "mode": "load",
            "rate": args.rate,
            "batch": args.batch,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "requests": sent.requests,
            "events_sent": sent.events_sent,
            "events_accepted": accepted,
            "failed_requests": sent.failed_requests,
            "first_http_error": sent.first_error,
            "send_s": round3(send_s),
            "ack": summary(&sent.ack),
            "send_lateness": summary(&sent.lateness),
            "expected": expected,
            "delivered": delivered,
            "missed": missed,
            "undelivered": expected.saturating_sub(delivered),
            "clients_short": clients_short,
            "clients_lost": clients_lost,
            "out_of_order": sum(|o| o.out_of_order),
            "foreign": sum(|o| o.foreign),
            "drain_s": drain_s,
            "deliveries_per_s": (delivered as f64 / send_s).round(),
            "event_message_bytes_avg": event_bytes.checked_div(delivered),
            "latency": summary(&all),
            "p99_by_quarter_ms": phases.iter().map(p99_ms).collect::<Vec<_>>(),
            "server_cpu_pct": server_cpu_pct.map(|p| p.round()),
            "server_rss_kib_before": server_rss_before,
            "server_rss_kib_after": server_rss_after,
            "bench_cpu_pct": bench_cpu_pct.map(|p| p.round()),
            "machine_cpu_pct": machine_cpu_pct.map(|p| p.round()),
            // Everything else on the machine meanwhile: builds, other services. Benchmark figures taken while this
            // is large are not comparable.
            "other_cpu_pct": match (machine_cpu_pct, server_cpu_pct, bench_cpu_pct) {
                (Some(m), s, Some(b)) => Some((m - s.unwrap_or(0.0) - b).max(0.0).round()),
                _ => None,
            },
        }),
    );
    result_line(&result);
    Ok(())
}

async fn idle(
    args: &Args,
    base: Value,
    stop_tx: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<Outcome>>,
) -> Result<()> {
    println!(
        "READY {}",
        json!({"connected": base["connected"], "connect_errors": base["connect_errors"]})
    );
    let _ = std::io::stdout().flush();
    let held = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.settle.min(args.hold))).await;
    let server_rss_held = args.server_pid.and_then(proc::rss_kib);
    let bench_rss_held = proc::rss_kib(std::process::id());
    tokio::time::sleep(Duration::from_secs(args.hold).saturating_sub(held.elapsed())).await;
    let _ = stop_tx.send(true);
    let mut lost = 0;
    let mut heartbeats = 0;
    for h in handles {
        let o = h.await.unwrap_or_default();
        lost += usize::from(o.connected && o.lost);
        heartbeats += o.heartbeats;
    }
    // Give the server a moment to see every close before reading its memory again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_rss_closed = args.server_pid.and_then(proc::rss_kib);
    let result = merge(
        base,
        json!({
            "mode": "idle",
            "hold_s": args.hold,
            "settle_s": args.settle,
            "clients_lost": lost,
            "heartbeats": heartbeats,
            "server_rss_kib_held": server_rss_held,
            "server_rss_kib_after_close": server_rss_closed,
            "bench_rss_kib_held": bench_rss_held,
        }),
    );
    result_line(&result);
    Ok(())
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
        a.extend(b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_uuids_and_clients_spread_over_them() {
        let ids = session_ids(0x1234_5678_9abc, 3);
        assert_eq!(ids[2], "12345678-9abc-4000-8000-000000000002");
        let args = Args::parse_from(["wsbench", "--addr", "127.0.0.1:4318", "--sessions", "3"]);
        assert_eq!(
            stream_url(&args, &ids, 4),
            format!(
                "ws://127.0.0.1:4318/observability/dashboard/stream?backfill=0&session_id={}",
                ids[1]
            )
        );
        let all = Args::parse_from(["wsbench", "--addr", "127.0.0.1:4318", "--subscribe", "all"]);
        assert_eq!(
            stream_url(&all, &ids, 4),
            "ws://127.0.0.1:4318/observability/dashboard/stream?backfill=0"
        );
    }
}
