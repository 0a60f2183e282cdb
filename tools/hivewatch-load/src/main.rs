//! hivewatch-load: drives a hivewatch OTLP receiver over OTLP/HTTP or
//! OTLP/gRPC and reports throughput and ack latency.
//!
//! Closed loop (default): `--concurrency` senders each keep one export in
//! flight. Open loop (`--rate`): exports are scheduled at fixed times and
//! latency is measured from the scheduled time, so a stalled receiver shows
//! up as latency instead of silently lowering the offered load.
//!
//! `hivewatch-load stream-lag` reads hivewatch's Redis stream instead and
//! reports how far its entries lag behind the commits (see `stream_lag`).

mod generate;
mod stats;
mod stream_lag;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use prost::Message;
use tokio::time::Instant;

use crate::generate::Generator;
use crate::stats::{Report, WorkerStats};
use crate::transport::{Prepared, Transport};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Signal {
    Logs,
    Traces,
    /// Claude Code hook payloads (`PostToolUse`) to the hook endpoint, over HTTP.
    Hook,
}

impl Signal {
    fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Hook => "hook",
        }
    }

    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Logs => "/v1/logs",
            Signal::Traces => "/v1/traces",
            Signal::Hook => "/api/v1/observability/event",
        }
    }
}

/// How an OTLP/HTTP body is encoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn as_str(self) -> &'static str {
        match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "json",
        }
    }
}

/// Load generator for the hivewatch OTLP receiver.
///
/// Without a subcommand, drives the receiver with the flags below and prints
/// throughput and ack latency.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "hivewatch-load",
    version,
    about,
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// OTLP transport.
    #[arg(long, value_enum, default_value_t = Protocol::Http)]
    protocol: Protocol,

    /// Receiver base URL [default: http://127.0.0.1:4318 for http,
    /// http://127.0.0.1:4317 for grpc]. `grpc://host:port` and bare
    /// `host:port` are accepted too.
    #[arg(long)]
    endpoint: Option<String>,

    /// What to send: log records (tool_result events), spans, or Claude Code hook payloads (HTTP only; a
    /// batch above 1 is a JSON array, as `hivewatch hook` delivers its spool).
    #[arg(long, value_enum, default_value_t = Signal::Logs)]
    signal: Signal,

    /// OTLP/HTTP body encoding (hook payloads are always JSON).
    #[arg(long, value_enum, default_value_t = Encoding::Protobuf)]
    encoding: Encoding,

    /// Number of concurrent senders, each with one export in flight at a time.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,

    /// Events (log records or spans) per export request.
    #[arg(long, default_value_t = 1)]
    batch: usize,

    /// Measured duration in seconds (after the warmup).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Warmup in seconds; requests started during it are not counted.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// Open loop: offer this many events per second (rate/batch requests per
    /// second spread over the senders); latency is measured from each
    /// request's scheduled send time.
    #[arg(long)]
    rate: Option<f64>,

    /// Number of distinct session ids the events are spread over.
    #[arg(long, default_value_t = 100)]
    sessions: usize,

    /// Size in bytes of the filler string attribute (`tool_parameters`).
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,

    /// Per-request timeout in seconds; a timeout counts as an error.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,

    /// gRPC only: number of HTTP/2 connections (tonic channels) the senders
    /// share round-robin.
    #[arg(long, default_value_t = 4)]
    grpc_channels: usize,

    /// Tokio worker threads for the generator [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Subcommand, Debug, Clone)]
enum Command {
    /// Reads hivewatch's Redis stream and reports how far its entries lag
    /// behind the commits of their events, and how many distinct events it
    /// holds.
    StreamLag(stream_lag::StreamLagArgs),
}

impl Args {
    fn endpoint(&self) -> String {
        self.endpoint.clone().unwrap_or_else(|| {
            match self.protocol {
                Protocol::Http => "http://127.0.0.1:4318",
                Protocol::Grpc => "http://127.0.0.1:4317",
            }
            .to_owned()
        })
    }

    fn validate(&self) -> Result<()> {
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if self.sessions == 0 {
            bail!("--sessions must be at least 1");
        }
        if !(self.duration.is_finite() && self.duration > 0.0) {
            bail!("--duration must be a positive number of seconds");
        }
        if !(self.warmup.is_finite() && self.warmup >= 0.0) {
            bail!("--warmup must be zero or a positive number of seconds");
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!("--timeout must be a positive number of seconds");
        }
        if let Some(r) = self.rate
            && !(r.is_finite() && r > 0.0)
        {
            bail!("--rate must be a positive number of events per second");
        }
        if self.threads == Some(0) {
            bail!("--threads must be at least 1");
        }
        if self.protocol == Protocol::Grpc && self.signal == Signal::Hook {
            bail!("--signal hook is sent over HTTP only (use --protocol http)");
        }
        if self.protocol == Protocol::Grpc && self.encoding == Encoding::Json {
            bail!("--encoding json is for OTLP/HTTP only (use --protocol http)");
        }
        Ok(())
    }

    /// The encoding on the wire: gRPC is always protobuf, hook payloads are always JSON.
    fn wire_encoding(&self) -> Encoding {
        match (self.protocol, self.signal) {
            (Protocol::Grpc, _) => Encoding::Protobuf,
            (_, Signal::Hook) => Encoding::Json,
            _ => self.encoding,
        }
    }
}

/// What every sender needs to know about the run.
struct Plan {
    start: Instant,
    measure_start: Instant,
    end: Instant,
    batch: usize,
    timeout: Duration,
    concurrency: usize,
    /// Requests per second in open-loop mode.
    request_rate: Option<f64>,
    encoding: Encoding,
    generator: Generator,
}

impl Plan {
    fn prepare(&self, http: bool, signal: Signal) -> Prepared {
        let g = &self.generator;
        match (http, signal, self.encoding) {
            (true, Signal::Logs, Encoding::Protobuf) => {
                Prepared::http(g.logs(self.batch).encode_to_vec())
            }
            (true, Signal::Traces, Encoding::Protobuf) => {
                Prepared::http(g.traces(self.batch).encode_to_vec())
            }
            (true, Signal::Logs, Encoding::Json) => Prepared::http(to_json(&g.logs(self.batch))),
            (true, Signal::Traces, Encoding::Json) => {
                Prepared::http(to_json(&g.traces(self.batch)))
            }
            (_, Signal::Hook, _) => {
                let (body, event_id) = g.hooks(self.batch);
                Prepared::Http {
                    body: body.into(),
                    event_id,
                }
            }
            (false, Signal::Logs, _) => Prepared::Logs(g.logs(self.batch)),
            (false, Signal::Traces, _) => Prepared::Traces(g.traces(self.batch)),
        }
    }
}

/// OTLP/JSON as the OTLP specification writes it (hex ids, camelCase), by the protocol crate's serde support.
fn to_json(message: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(message).expect("OTLP messages serialize to JSON")
}

/// Sends once and files the outcome; `since` is when the latency clock
/// started (actual send time in closed loop, scheduled time in open loop).
async fn send_and_record(
    plan: &Plan,
    transport: &mut Transport,
    req: Prepared,
    since: Instant,
    stats: &mut WorkerStats,
) -> bool {
    let outcome = tokio::time::timeout(plan.timeout, transport.send(req)).await;
    let done = Instant::now();
    let counted = since >= plan.measure_start;
    match outcome {
        Ok(Ok(ack)) => {
            if counted {
                stats.ok(done - since, plan.batch as u64, ack.rejected);
            }
            true
        }
        Ok(Err(e)) => {
            if counted {
                stats.err(e.message);
            }
            !e.transport
        }
        Err(_) => {
            if counted {
                stats.err(format!("timeout: no answer within {:?}", plan.timeout));
            }
            true
        }
    }
}

async fn closed_loop(plan: Arc<Plan>, mut transport: Transport, signal: Signal) -> WorkerStats {
    let mut stats = WorkerStats::new();
    let http = transport.is_http();
    loop {
        if Instant::now() >= plan.end {
            break;
        }
        let req = plan.prepare(http, signal);
        let t0 = Instant::now();
        let answered = send_and_record(&plan, &mut transport, req, t0, &mut stats).await;
        if !answered {
            // The receiver is unreachable: do not spin on refused connects.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    stats
}

async fn open_loop(
    plan: Arc<Plan>,
    mut transport: Transport,
    signal: Signal,
    index: usize,
) -> WorkerStats {
    let mut stats = WorkerStats::new();
    let http = transport.is_http();
    let rate = plan.request_rate.unwrap_or(1.0);
    // Sender `index` owns slots index, index+C, index+2C, ... of one global
    // schedule with slot k at start + k/rate. A sender that falls behind
    // sends its overdue slots back to back (burst), and each keeps its
    // scheduled time as the latency origin.
    for k in 0u64.. {
        let slot = index as f64 + (k as f64) * plan.concurrency as f64;
        let scheduled = plan.start + Duration::from_secs_f64(slot / rate);
        if scheduled >= plan.end {
            break;
        }
        // Still busy with the previous request when this slot came due: the
        // senders cannot keep up with the offered rate (the latency clock
        // still starts at the slot, so the backlog shows up as latency).
        if scheduled >= plan.measure_start && Instant::now() > scheduled + Duration::from_millis(1)
        {
            stats.late_sends += 1;
        }
        tokio::time::sleep_until(scheduled).await;
        let req = plan.prepare(http, signal);
        send_and_record(&plan, &mut transport, req, scheduled, &mut stats).await;
    }
    stats
}

async fn run(args: Args) -> Result<Report> {
    let endpoint = args.endpoint();
    let transports = Transport::build(
        args.protocol,
        args.signal,
        args.wire_encoding(),
        &endpoint,
        args.concurrency,
        args.grpc_channels,
    )?;
    let target = match args.protocol {
        Protocol::Http => transport::http_url(&endpoint, args.signal),
        Protocol::Grpc => transport::grpc_url(&endpoint),
    };
    let generator = Generator::new(args.sessions, args.payload_bytes);
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let end = measure_start + Duration::from_secs_f64(args.duration);
    let plan = Arc::new(Plan {
        start,
        measure_start,
        end,
        batch: args.batch,
        timeout: Duration::from_secs_f64(args.timeout),
        concurrency: args.concurrency,
        request_rate: args.rate.map(|r| r / args.batch as f64),
        encoding: args.wire_encoding(),
        generator,
    });

    let mode = match args.rate {
        Some(r) => format!("open loop at {r} events/s"),
        None => "closed loop".to_owned(),
    };
    eprintln!(
        "hivewatch-load: {} {} ({}) -> {target}: {mode}, concurrency {}, batch {}, warmup {} s, measuring {} s",
        args.protocol.as_str(),
        args.signal.as_str(),
        args.wire_encoding().as_str(),
        args.concurrency,
        args.batch,
        args.warmup,
        args.duration,
    );

    let mut handles = Vec::with_capacity(args.concurrency);
    for (i, t) in transports.into_iter().enumerate() {
        let plan = plan.clone();
        let signal = args.signal;
        handles.push(if args.rate.is_some() {
            tokio::spawn(open_loop(plan, t, signal, i))
        } else {
            tokio::spawn(closed_loop(plan, t, signal))
        });
    }
    let mut total = WorkerStats::new();
    for h in handles {
        total.merge(h.await?);
    }

    Ok(Report {
        protocol: args.protocol.as_str(),
        signal: args.signal.as_str(),
        encoding: args.wire_encoding().as_str(),
        endpoint: target,
        concurrency: args.concurrency,
        batch: args.batch,
        duration_s: args.duration,
        warmup_s: args.warmup,
        rate: args.rate,
        stats: total,
    })
}

fn stream_lag_main(args: stream_lag::StreamLagArgs) -> std::process::ExitCode {
    if let Err(e) = args.validate() {
        eprintln!("hivewatch-load: {e}");
        return std::process::ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hivewatch-load: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(stream_lag::run(args)) {
        Ok(report) => {
            report.print();
            if report.count_matches() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("hivewatch-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if let Some(Command::StreamLag(lag)) = args.command.take() {
        return stream_lag_main(lag);
    }
    if let Err(e) = args.validate() {
        eprintln!("hivewatch-load: {e}");
        return std::process::ExitCode::from(2);
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = match rt.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hivewatch-load: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(report) => {
            report.print();
            if report.stats.requests_ok == 0 {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("hivewatch-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
