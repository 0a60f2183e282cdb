//! `hivewatch query`: reads a running hivewatch's API and prints events or sessions, one line each.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    pub what: What,
    /// The hivewatch HTTP address.
    #[arg(
        long,
        global = true,
        env = "HIVEWATCH_ENDPOINT",
        default_value = "http://127.0.0.1:4318"
    )]
    pub endpoint: String,
    /// Print the API's JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The server's read token, when it has one.
    #[arg(
        long,
        global = true,
        env = "HIVEWATCH_READ_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum What {
    /// Events, oldest first, with the API's filters.
    Events(EventFilters),
    /// Sessions, most recently active first.
    Sessions {
        #[arg(long)]
        source_app: Option<String>,
        /// Only sessions in these states (comma-separated: idle, working, waiting_for_permission,
        /// waiting_for_input, compacting, failed, interrupted, ended, abandoned).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One session: its summary and paired tool calls.
    Session { id: String },
}

#[derive(Debug, Args)]
pub struct EventFilters {
    #[arg(long)]
    pub session_id: Option<String>,
    #[arg(long)]
    pub agent_id: Option<String>,
    #[arg(long)]
    pub event_type: Option<String>,
    #[arg(long)]
    pub tool_name: Option<String>,
    #[arg(long)]
    pub source_app: Option<String>,
    /// The MCP server of MCP tool events.
    #[arg(long)]
    pub mcp_server: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    /// RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

pub async fn run(args: QueryArgs) -> anyhow::Result<()> {
    let base = args.endpoint.trim_end_matches('/');
    let token = args.token.as_deref();
    match &args.what {
        What::Events(f) => {
            let mut params = vec![("limit", f.limit.to_string())];
            for (k, v) in [
                ("session_id", &f.session_id),
                ("agent_id", &f.agent_id),
                ("event_type", &f.event_type),
                ("tool_name", &f.tool_name),
                ("source_app", &f.source_app),
                ("mcp_server", &f.mcp_server),
                ("model", &f.model),
                ("since", &f.since),
                ("until", &f.until),
            ] {
                if let Some(v) = v {
                    params.push((k, v.clone()));
                }
            }
            let page = get(
                &format!("{base}/api/v1/observability/events?{}", encode(&params)),
                token,
            )
            .await?;
            for ev in page["events"].as_array().into_iter().flatten() {
                if args.json {
                    println!("{ev}");
                } else {
                    println!(
                        "{}  {:<22} {:<8} {:<10} {:<12} {}",
                        s(ev, "created_at"),
                        s(ev, "event_type"),
                        s(ev, "status"),
                        s(ev, "agent_id"),
                        s(ev, "tool_name"),
                        s(ev, "session_id")
                    );
                }
            }
            if let Some(c) = page["next_cursor"].as_str() {
                eprintln!("(more: pass the API's cursor={c})");
            }
        }
        What::Sessions {
            source_app,
            state,
            limit,
        } => {
            let mut params = vec![("limit", limit.to_string())];
            if let Some(a) = source_app {
                params.push(("source_app", a.clone()));
            }
            if let Some(st) = state {
                params.push(("state", st.clone()));
            }
            let body = get(
                &format!("{base}/api/v1/observability/sessions?{}", encode(&params)),
                token,
            )
            .await?;
            for ses in body["sessions"].as_array().into_iter().flatten() {
                if args.json {
                    println!("{ses}");
                } else {
                    println!(
                        "{}  {:<22} {:>6} events {:>4} tools  last {}  {}",
                        s(ses, "session_id"),
                        s(ses, "state"),
                        ses["event_count"],
                        ses["tool_call_count"],
                        s(ses, "last_seen"),
                        s(ses, "source_app")
                    );
                }
            }
        }
        What::Session { id } => {
            let body = get(&format!("{base}/api/v1/observability/sessions/{id}"), token).await?;
            if args.json {
                println!("{body}");
            } else {
                println!(
                    "{} {} ({} events)",
                    s(&body, "session_id"),
                    s(&body, "status"),
                    body["event_count"]
                );
                for call in body["tool_calls"].as_array().into_iter().flatten() {
                    println!(
                        "  {:<12} {:>7} ms  {:<7} {}",
                        s(call, "tool_name"),
                        call["latency_ms"],
                        s(call, "status"),
                        s(call, "tool_use_id")
                    );
                }
            }
        }
    }
    Ok(())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("-")
}

pub(crate) fn encode(params: &[(&str, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub(crate) async fn get(url: &str, token: Option<&str>) -> anyhow::Result<Value> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = url
        .parse()
        .with_context(|| format!("bad endpoint URL {url:?}"))?;
    let mut req = hyper::Request::get(uri);
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = client
        .request(req.body(Empty::new()).context("building the request")?)
        .await
        .with_context(|| format!("cannot reach hivewatch at {url}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{status}: {}",
            value
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
        );
    }
    Ok(value)
}
