//! Session states ("which session needs me?") against the real binary, from the recorded Claude Code payloads:
//! a permission asked then granted, then denied; Stop; StopFailure; Interrupt; a subagent running while the main
//! agent waits; a session known from native telemetry only; the live `session_state` messages; two replicas on one
//! Postgres taking the halves of one session; `hivewatch query sessions --state` and `hivewatch status`. The
//! abandon sweep runs in-process with its clock set by the test. Runs on SQLite and again on Postgres
//! (scripts/test.sh).

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::services::fresh_database;
use common::{FIXTURES, Server, client, fixture};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// The first recorded payload of one hook event, moved to `session` and stamped `secs` after a fixed start.
fn recorded(event: &str, session: Uuid, secs: i64) -> Value {
    let mut v = fixture(&format!("hooks/{event}.json"))[0].clone();
    v["session_id"] = json!(session);
    stamp(v, secs)
}

fn stamp(mut v: Value, secs: i64) -> Value {
    let t0: DateTime<Utc> = "2026-12-07T09:00:00Z".parse().unwrap();
    v["_hivewatch"] = json!({"time": (t0 + chrono::Duration::seconds(secs)).to_rfc3339()});
    v
}

async fn post(server: &Server, body: Value) {
    let (status, answer) = server.post_json("/api/v1/observability/event", &body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn session(server: &Server, id: Uuid) -> Value {
    server
        .get(&format!("/api/v1/observability/sessions/{id}"))
        .await
}

async fn state(server: &Server, id: Uuid) -> String {
    session(server, id).await["state"]
        .as_str()
        .unwrap_or("-")
        .to_string()
}

/// Polls until the session is in `want` (a sweep or a live change), failing with the last state after 20 s.
async fn wait_state(server: &Server, id: Uuid, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = session(server, id).await;
        if s["state"] == want {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "session {id} never became {want}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permission_asked_then_granted_then_denied_and_the_turn_ends() {
    let server = Server::start();
    let s = Uuid::new_v4();
    post(&server, recorded("SessionStart", s, 0)).await;
    assert_eq!(state(&server, s).await, "idle");
    post(&server, recorded("UserPromptSubmit", s, 1)).await;
    post(&server, recorded("PreToolUse", s, 2)).await;
    let working = session(&server, s).await;
    assert_eq!(working["state"], "working");
    assert_eq!(working["current_tool"], "Bash", "{working}");

    post(&server, recorded("PermissionRequest", s, 3)).await;
    let asked = session(&server, s).await;
    assert_eq!(asked["state"], "waiting_for_permission");
    assert_eq!(asked["waiting_on"], "Bash");
    assert_eq!(asked["state_since"], "2026-12-07T09:00:03Z");
    // Claude Code's permission notification follows the request: the same wait, not a new one.
    post(&server, recorded("Notification", s, 4)).await;
    assert_eq!(
        session(&server, s).await["state_since"],
        "2026-12-07T09:00:03Z"
    );

    // Granted: the tool runs.
    post(&server, recorded("PostToolUse", s, 9)).await;
    assert_eq!(state(&server, s).await, "working");

    // Asked again, and denied.
    post(&server, recorded("PermissionRequest", s, 10)).await;
    assert_eq!(state(&server, s).await, "waiting_for_permission");
    let denied = json!({"session_id": s, "hook_event_name": "PermissionDenied", "tool_name": "Bash",
                        "tool_use_id": "toolu_denied", "reason": "user"});
    post(&server, stamp(denied, 12)).await;
    assert_eq!(state(&server, s).await, "working");

    post(&server, recorded("Stop", s, 14)).await;
    let stopped = session(&server, s).await;
    assert_eq!(stopped["state"], "waiting_for_input", "{stopped}");
    assert_eq!(stopped["current_tool"], Value::Null);

    // The list filters by state, and names an unknown one.
    let waiting = server
        .get("/api/v1/observability/sessions?state=waiting_for_permission,waiting_for_input")
        .await;
    let listed: Vec<&str> = waiting["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&s.to_string().as_str()), "{waiting}");
    let working_only = server
        .get("/api/v1/observability/sessions?state=working")
        .await;
    assert!(
        !working_only.to_string().contains(&s.to_string()),
        "{working_only}"
    );
    let bad = client()
        .get(server.url("/api/v1/observability/sessions?state=blocked"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let message = bad.text().await.unwrap();
    assert!(
        message.contains("blocked") && message.contains("one of idle"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_interrupts_compaction_and_the_end_of_a_session() {
    let server = Server::start();
    let s = Uuid::new_v4();
    post(&server, recorded("UserPromptSubmit", s, 0)).await;
    post(&server, recorded("StopFailure", s, 1)).await;
    let failed = session(&server, s).await;
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["state_detail"], "unknown", "{failed}");

    // The next prompt works again; the constructed Interrupt payload (a real TTY's) interrupts it.
    post(&server, recorded("UserPromptSubmit", s, 2)).await;
    let constructed: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{FIXTURES}/../claude-code-2.1.337/constructed/hooks.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut interrupt = constructed
        .iter()
        .find(|v| v["hook_event_name"] == "Interrupt")
        .expect("the constructed Interrupt payload")
        .clone();
    interrupt["session_id"] = json!(s);
    post(&server, stamp(interrupt, 3)).await;
    assert_eq!(state(&server, s).await, "interrupted");

    post(&server, recorded("PreCompact", s, 4)).await;
    assert_eq!(state(&server, s).await, "compacting");
    post(&server, recorded("PostCompact", s, 5)).await;
    assert_eq!(state(&server, s).await, "idle");
    post(&server, recorded("SessionEnd", s, 6)).await;
    let ended = session(&server, s).await;
    assert_eq!(
        (ended["state"].as_str(), ended["status"].as_str()),
        (Some("ended"), Some("ended"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subagent_running_while_the_main_agent_waits_keeps_the_wait_and_the_work() {
    let server = Server::start();
    let s = Uuid::new_v4();
    let start = recorded("SubagentStart", s, 0);
    let sub = start["agent_id"].as_str().unwrap().to_string();
    post(&server, recorded("UserPromptSubmit", s, 0)).await;
    post(&server, start).await;
    post(&server, recorded("PermissionRequest", s, 1)).await;
    // The subagent goes on with its own tools: the person is still needed.
    let mut sub_tool = recorded("PreToolUse", s, 2);
    sub_tool["agent_id"] = json!(sub);
    sub_tool["tool_use_id"] = json!("toolu_sub_1");
    post(&server, sub_tool.clone()).await;
    let mut sub_done = recorded("PostToolUse", s, 3);
    sub_done["agent_id"] = json!(sub);
    sub_done["tool_use_id"] = json!("toolu_sub_1");
    post(&server, sub_done).await;
    let waiting = session(&server, s).await;
    assert_eq!(waiting["state"], "waiting_for_permission", "{waiting}");
    assert_eq!(waiting["running_subagents"], 1);

    // Granted; the main agent ends its turn while the subagent still runs: not finished yet.
    post(&server, recorded("PostToolUse", s, 4)).await;
    post(&server, recorded("Stop", s, 5)).await;
    assert_eq!(state(&server, s).await, "working");
    let mut sub_stop = recorded("SubagentStop", s, 6);
    sub_stop["agent_id"] = json!(sub);
    post(&server, sub_stop).await;
    let done = session(&server, s).await;
    assert_eq!(done["state"], "waiting_for_input", "{done}");
    assert_eq!(done["running_subagents"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_known_from_native_telemetry_works_then_goes_idle() {
    let server = Server::start_with(&[
        "--session-idle-after",
        "2s",
        "--session-sweep-interval",
        "1s",
    ]);
    // The recorded OTLP/JSON logs export, with its session moved so that no other test shares it.
    let s = Uuid::new_v4();
    let mut export = fixture("otlp-json/export_logs.json");
    let text = export.to_string();
    let original = fixture("otlp-json/export_logs.json")["resourceLogs"][0]["scopeLogs"][0]
        ["logRecords"][0]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "session.id")
        .map(|a| a["value"]["stringValue"].as_str().unwrap().to_string())
        .expect("the export names its session");
    export = serde_json::from_str(&text.replace(&original, &s.to_string())).unwrap();
    // Fresh times: the idle sweep counts from the newest event.
    let now_ns = (Utc::now().timestamp_nanos_opt().unwrap()).to_string();
    let text = export.to_string();
    let re = regex::Regex::new(r#""(time|observedTime)UnixNano":"\d+""#).unwrap();
    let export: Value = serde_json::from_str(&re.replace_all(&text, |c: &regex::Captures| {
        format!(r#""{}UnixNano":"{now_ns}""#, &c[1])
    }))
    .unwrap();
    let answer = client()
        .post(server.url("/v1/logs"))
        .header("content-type", "application/json")
        .body(export.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let working = session(&server, s).await;
    assert_eq!(working["state"], "working", "{working}");
    wait_state(&server, s, "idle").await;
}

/// Opens the live stream for one session.
async fn stream(
    server: &Server,
    session: Uuid,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!(
        "{}/observability/dashboard/stream?session_id={session}&backfill=0",
        server.http.replacen("http://", "ws://", 1)
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_stream_sends_each_change_of_state_once() {
    let server = Server::start();
    let s = Uuid::new_v4();
    let mut ws = stream(&server, s).await;
    // Wait for the backfill, so that the subscription is in place before the events.
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("stream closed")
        };
        if serde_json::from_str::<Value>(&t).unwrap()["type"] == "backfill" {
            break;
        }
    }
    for (i, e) in [
        "UserPromptSubmit",
        "PreToolUse",
        "PermissionRequest",
        "PostToolUse",
        "Stop",
    ]
    .iter()
    .enumerate()
    {
        post(&server, recorded(e, s, i as i64)).await;
    }
    let mut states = Vec::new();
    let mut events = 0;
    while events < 5 || states.len() < 4 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("event") => events += 1,
            Some("session_state") => {
                assert_eq!(v["session"]["session_id"], json!(s));
                states.push((
                    v["previous"]["state"].as_str().unwrap().to_string(),
                    v["session"]["state"].as_str().unwrap().to_string(),
                ));
            }
            _ => {}
        }
    }
    let pairs: Vec<(&str, &str)> = states
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("idle", "working"),
            ("working", "waiting_for_permission"),
            ("waiting_for_permission", "working"),
            ("working", "waiting_for_input"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_postgres_take_the_halves_of_a_session() {
    let url = fresh_database().await;
    let a = Server::start_with(&["--database-url", &url]);
    let b = Server::start_with(&["--database-url", &url]);
    let s = Uuid::new_v4();
    let sequence = [
        "UserPromptSubmit",
        "PreToolUse",
        "PermissionRequest",
        "PostToolUse",
        "Stop",
    ];
    // Alternating replicas, and each event's two deliveries racing on both at once.
    for (i, e) in sequence.iter().enumerate() {
        let body = recorded(e, s, i as i64);
        let (one, two) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (x, y) = tokio::join!(
            one.post_json("/api/v1/observability/event", &body),
            two.post_json("/api/v1/observability/event", &body)
        );
        assert_eq!((x.0, y.0), (200, 200));
        let expect = [
            "working",
            "working",
            "waiting_for_permission",
            "working",
            "waiting_for_input",
        ][i];
        assert_eq!(state(&a, s).await, expect, "after {e}, replica a");
        assert_eq!(state(&b, s).await, expect, "after {e}, replica b");
    }
    // Out of order: an older event stored late (a spooled delivery) changes nothing.
    post(&b, recorded("PreToolUse", s, 1)).await;
    let last = session(&a, s).await;
    assert_eq!(last["state"], "waiting_for_input");
    assert_eq!(last["state_since"], "2026-12-07T09:00:04Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_terminal_shows_the_board_and_filters_sessions_by_state() {
    let server = Server::start();
    let (waiting, working) = (Uuid::new_v4(), Uuid::new_v4());
    post(&server, recorded("PermissionRequest", waiting, 0)).await;
    post(&server, recorded("PreToolUse", working, 1)).await;
    let bin = env!("CARGO_BIN_EXE_hivewatch");
    let status = std::process::Command::new(bin)
        .args(["status", "--endpoint", &server.http])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let board = String::from_utf8(status.stdout).unwrap();
    let needs = board.find("NEEDS YOU").unwrap();
    let working_at = board.find("WORKING").unwrap();
    let w = board
        .find(&waiting.to_string()[..8])
        .expect("the waiting session listed");
    let k = board
        .find(&working.to_string()[..8])
        .expect("the working session listed");
    assert!(needs < w && w < working_at && working_at < k, "{board}");
    assert!(board.contains("Bash"), "{board}");

    let listed = std::process::Command::new(bin)
        .args([
            "query",
            "sessions",
            "--state",
            "waiting_for_permission",
            "--endpoint",
            &server.http,
        ])
        .output()
        .unwrap();
    let out = String::from_utf8(listed.stdout).unwrap();
    assert!(
        out.contains(&waiting.to_string()) && !out.contains(&working.to_string()),
        "{out}"
    );
    let bad = std::process::Command::new(bin)
        .args([
            "query",
            "sessions",
            "--state",
            "stuck",
            "--endpoint",
            &server.http,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown session state \"stuck\""));
}

/// The store the suite runs against, opened in this process: SQLite in `dir`, or a fresh Postgres database.
async fn open_store(dir: &std::path::Path) -> hivewatch::store::Store {
    use hivewatch::store::{SqliteSync, Store, StoreConfig};
    let config = if common::postgres_mode() {
        StoreConfig::Postgres {
            url: fresh_database().await,
            pool_size: 4,
        }
    } else {
        StoreConfig::Sqlite {
            path: dir.join("hivewatch.db"),
            synchronous: SqliteSync::Normal,
        }
    };
    Store::open(&config).await.expect("open the store")
}

fn hook_at(v: Value, at: DateTime<Utc>) -> hivewatch::model::AgentEvent {
    use hivewatch::model::hook::{HookContext, normalize_hook};
    normalize_hook(
        v,
        &HookContext {
            created_at: Some(at),
            ..Default::default()
        },
        at,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_abandons_a_silent_session_once_its_time_has_come() {
    use hivewatch::attention::Sweeper;
    use hivewatch::metrics::Metrics;
    use hivewatch::sink::live::{Filter, Hub, StatesOut};
    use hivewatch::store::SweepPolicy;

    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let metrics = Metrics::new().unwrap();
    let hub = Hub::start(Duration::from_secs(60), metrics.meter());
    let sweeper = Sweeper {
        store: store.clone(),
        states: StatesOut::Hub(hub.clone()),
        instruments: metrics.instruments(),
        policy: SweepPolicy {
            abandon_after: Duration::from_secs(30 * 60),
            idle_after: Duration::from_secs(5 * 60),
        },
        every: Duration::from_secs(3600),
        notify: None,
    };
    let (silent, ended) = (Uuid::new_v4(), Uuid::new_v4());
    let last: DateTime<Utc> = "2026-12-07T08:00:00Z".parse().unwrap();
    let mut events = Vec::new();
    for (session, name) in [(silent, "PermissionRequest"), (ended, "SessionEnd")] {
        events.push(hook_at(
            json!({"session_id": session, "hook_event_name": name, "tool_name": "Bash"}),
            last,
        ));
    }
    store.commit(events, None).await.unwrap();
    let mut live = hub.subscribe(
        "test".into(),
        Filter {
            sessions: vec![silent, ended],
            ..Default::default()
        },
    );

    // The sweep's clock, set by the test: 29 minutes of silence is not yet abandonment.
    sweeper
        .sweep_once(last + chrono::Duration::minutes(29))
        .await;
    let s = store.session(silent).await.unwrap().unwrap();
    assert_eq!(s.state.as_str(), "waiting_for_permission");
    assert!(live.events.try_recv().is_err(), "no change yet");

    sweeper
        .sweep_once(last + chrono::Duration::minutes(31))
        .await;
    let s = store.session(silent).await.unwrap().unwrap();
    assert_eq!(s.state.as_str(), "abandoned");
    // Abandoned as of the due time, not the sweep's: every replica agrees on it.
    assert_eq!(s.state_since, last + chrono::Duration::minutes(30));
    assert_eq!(s.waiting_on, None);
    let e = store.session(ended).await.unwrap().unwrap();
    assert_eq!(
        e.state.as_str(),
        "ended",
        "an ended session is never abandoned"
    );
    let out = tokio::time::timeout(Duration::from_secs(5), live.events.recv())
        .await
        .unwrap()
        .unwrap();
    let frame: Value = serde_json::from_str(&out.frame).unwrap();
    assert_eq!(frame["type"], "session_state");
    assert_eq!(frame["previous"]["state"], "waiting_for_permission");
    assert_eq!(frame["session"]["state"], "abandoned");

    // A second sweep (another replica's, or the next one) changes nothing more.
    sweeper
        .sweep_once(last + chrono::Duration::minutes(40))
        .await;
    assert!(live.events.try_recv().is_err(), "abandoned once");
    let counts = store
        .state_counts(last + chrono::Duration::minutes(40))
        .await
        .unwrap();
    let of = |name: &str| {
        counts
            .by_state
            .iter()
            .find(|(s, _)| s.as_str() == name)
            .unwrap()
            .1
    };
    assert_eq!(
        (of("abandoned"), of("ended"), of("waiting_for_permission")),
        (1, 1, 0)
    );

    // The waits that ended are on /metrics: the permission wait lasted until the abandonment.
    let text = metrics.render();
    assert!(
        text.contains(
            "hivewatch_session_waiting_seconds_count{state=\"waiting_for_permission\"} 1"
        ),
        "{text}"
    );

    // A new event revives the session.
    store
        .commit(
            vec![hook_at(
                json!({"session_id": silent, "hook_event_name": "UserPromptSubmit", "prompt": "back"}),
                last + chrono::Duration::minutes(45),
            )],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.session(silent).await.unwrap().unwrap().state.as_str(),
        "working"
    );
}
