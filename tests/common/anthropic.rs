//! A local stand-in for the Anthropic Messages API, so that the real Claude Code CLI runs offline with scripted
//! answers: `POST /v1/messages` (streamed as server-sent events or as one JSON message, as the request asks) and
//! `POST /v1/messages/count_tokens`.
//!
//! A conversation picks its script with a marker in a user message, `[[hw:NAME]]` (see [`Script::named`]); the
//! step of the script is the number of assistant turns already in the conversation, so every request of a tool
//! loop gets the next step. Requests without a marker (Claude Code's side requests) get a short text. A summary
//! request (`/compact`) gets a summary. Every request body is kept for the test to read.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Tokens reported for every answer: what Claude Code's cost figures are computed from.
pub const INPUT_TOKENS: u64 = 1200;
pub const OUTPUT_TOKENS: u64 = 80;
pub const CACHE_READ_TOKENS: u64 = 300;

/// One step of a scripted conversation.
#[derive(Debug, Clone)]
pub enum Step {
    /// The assistant calls a tool.
    Tool { name: &'static str, input: Value },
    /// The assistant answers with text and ends its turn.
    Text(String),
    /// The API fails with this HTTP status and error type.
    Error {
        status: u16,
        kind: &'static str,
        message: &'static str,
    },
}

/// The steps of one conversation; past its end, the assistant says `done: NAME`.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub steps: Vec<Step>,
}

impl Script {
    /// The scripts the tests use. `dir` is the project directory (files are written there).
    pub fn named(name: &str, dir: &str) -> Option<Script> {
        let bash = |command: &str| Step::Tool {
            name: "Bash",
            input: json!({"command": command, "description": "scripted by the hivewatch test"}),
        };
        let steps = match name {
            "plain" => vec![],
            "bash" => vec![bash("echo hivewatch-bash-ok")],
            "fail" => vec![bash("echo about to fail >&2; exit 3")],
            "write_read" => vec![
                Step::Tool {
                    name: "Write",
                    input: json!({"file_path": format!("{dir}/notes.txt"), "content": "written by the scripted model\n"}),
                },
                Step::Tool {
                    name: "Read",
                    input: json!({"file_path": format!("{dir}/notes.txt")}),
                },
            ],
            "subagent" => vec![Step::Tool {
                name: "Agent",
                input: json!({"description": "scripted subagent", "prompt": "[[hw:sub]] run one command"}),
            }],
            "sub" => vec![bash("echo hivewatch-subagent-ok")],
            "api_error" => vec![Step::Error {
                status: 400,
                kind: "invalid_request_error",
                message: "scripted failure from the hivewatch test",
            }],
            _ => return None,
        };
        Some(Script {
            name: name.to_string(),
            steps,
        })
    }
}

struct Shared {
    dir: String,
    requests: Mutex<Vec<Value>>,
    next_id: Mutex<u64>,
}

/// The running stand-in; stops with the runtime that started it.
pub struct FakeAnthropic {
    pub url: String,
    shared: Arc<Shared>,
}

impl FakeAnthropic {
    /// Listens on a free loopback port. `dir` is the project directory the scripts write into.
    pub async fn start(dir: &str) -> FakeAnthropic {
        let shared = Arc::new(Shared {
            dir: dir.to_string(),
            requests: Mutex::new(Vec::new()),
            next_id: Mutex::new(0),
        });
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .route("/v1/messages/count_tokens", post(count_tokens))
            .fallback(|| async { (StatusCode::NOT_FOUND, "not part of the stand-in") })
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind the Anthropic stand-in");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeAnthropic {
            url: format!("http://{addr}"),
            shared,
        }
    }

    /// Every `/v1/messages` request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many `/v1/messages` requests of a conversation were answered with a message (not an error): the
    /// requests Claude Code reports as `api_request`. Its probe of a model before switching to it (`max_tokens`
    /// 1) is not one.
    pub fn answered(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["max_tokens"] != 1)
            .filter(|r| !matches!(reply_for(r, &self.shared.dir), Reply::Error { .. }))
            .count()
    }
}

async fn count_tokens() -> impl IntoResponse {
    axum::Json(json!({"input_tokens": INPUT_TOKENS}))
}

/// The text of every text block of the conversation's user messages, in order.
fn user_texts(request: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in request["messages"].as_array().into_iter().flatten() {
        if m["role"] != "user" {
            continue;
        }
        match &m["content"] {
            Value::String(s) => out.push(s.clone()),
            Value::Array(blocks) => out.extend(
                blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b["text"].as_str().map(str::to_string)),
            ),
            _ => {}
        }
    }
    out
}

/// The script named by the first marker in the conversation.
fn script_of(request: &Value, dir: &str) -> Option<Script> {
    user_texts(request).iter().find_map(|t| {
        let start = t.find("[[hw:")? + 5;
        let end = start + t[start..].find("]]")?;
        Script::named(&t[start..end], dir)
    })
}

fn is_summary_request(request: &Value) -> bool {
    user_texts(request).last().is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("summary") && (t.contains("conversation") || t.contains("summarize"))
    })
}

enum Reply {
    Blocks(Vec<Value>, &'static str),
    Error {
        status: u16,
        kind: &'static str,
        message: &'static str,
    },
}

fn reply_for(request: &Value, dir: &str) -> Reply {
    let text = |s: String| Reply::Blocks(vec![json!({"type": "text", "text": s})], "end_turn");
    if is_summary_request(request) {
        return text(
            "<summary>The user ran scripted hivewatch test turns; nothing is pending.</summary>"
                .into(),
        );
    }
    let Some(script) = script_of(request, dir) else {
        return text("ok".into());
    };
    let turn = request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "assistant")
        .count();
    match script.steps.get(turn) {
        None => text(format!("done: {}", script.name)),
        Some(Step::Text(s)) => text(s.clone()),
        Some(Step::Error {
            status,
            kind,
            message,
        }) => Reply::Error {
            status: *status,
            kind,
            message,
        },
        Some(Step::Tool { name, input }) => Reply::Blocks(
            vec![json!({"type": "tool_use", "id": "", "name": name, "input": input})],
            "tool_use",
        ),
    }
}

async fn messages(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error_response(400, "invalid_request_error", "body is not JSON");
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());
    let (mut blocks, stop) = match reply_for(&request, &shared.dir) {
        Reply::Error {
            status,
            kind,
            message,
        } => return error_response(status, kind, message),
        Reply::Blocks(blocks, stop) => (blocks, stop),
    };
    let id = {
        let mut n = shared
            .next_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *n += 1;
        *n
    };
    for (i, b) in blocks.iter_mut().enumerate() {
        if b["type"] == "tool_use" {
            b["id"] = json!(format!("toolu_hw{id:06}{i:02}"));
        }
    }
    let model = request["model"]
        .as_str()
        .unwrap_or("claude-test")
        .to_string();
    let usage = json!({"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
                       "cache_read_input_tokens": CACHE_READ_TOKENS, "cache_creation_input_tokens": 0});
    let message = json!({"id": format!("msg_hw{id:08}"), "type": "message", "role": "assistant", "model": model,
                         "content": blocks, "stop_reason": stop, "stop_sequence": null, "usage": usage});
    if request["stream"] == true {
        ([(header::CONTENT_TYPE, "text/event-stream")], sse(&message)).into_response()
    } else {
        axum::Json(message).into_response()
    }
}

fn error_response(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The message as the Messages API streams it: start, each block (text or tool input as deltas), delta, stop.
fn sse(message: &Value) -> String {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(1);
    event(
        "message_start",
        json!({"type": "message_start", "message": start}),
    );
    for (index, block) in message["content"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let (empty, delta) = if block["type"] == "tool_use" {
            (
                json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
                json!({"type": "input_json_delta", "partial_json": block["input"].to_string()}),
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": block["text"]}),
            )
        };
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": empty}),
        );
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": message["stop_reason"], "stop_sequence": null},
               "usage": {"output_tokens": OUTPUT_TOKENS}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    out
}
