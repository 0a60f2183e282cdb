//! Entry points of the fuzz targets in `fuzz/` (run by `scripts/fuzz.sh`), also replayed over the seed corpora by
//! `tests/fuzz_corpus.rs`.
//!
//! Each function takes arbitrary bytes through the path a request takes in the server, up to the pipeline's
//! commit: decode, limits, normalize, the answer, then for every event what `Pipeline::submit` does before the
//! commit (built-in redaction, the `serve` redaction options, `make_storable`) and the JSON the store writes.
//! Refusing bad input is the expected outcome; a panic is a bug, and so is a broken invariant checked here (each
//! one holds by design of the code it checks). Time is fixed, so that a run can be replayed.

use std::sync::LazyLock;

use chrono::{DateTime, TimeZone, Utc};
use prost::Message;
use regex::Regex;
use serde_json::Value;
use uuid::Uuid;

use crate::model::AgentEvent;
use crate::model::event::MAX_EVENT_TYPE_CHARS;
use crate::model::hook::HookContext;
use crate::model::limits::Limits;
use crate::model::redact::{
    DROPPED, PROMPT_KEYS, REDACTED, RedactSettings, TOOL_OUTPUT_KEYS, is_secret_key, redact_json,
    redact_str,
};
use crate::model::transcripts::TranscriptEntry;
use crate::receiver::hook_http::{HookBody, normalize_body};
use crate::receiver::{Logs, Metrics, Signal, Traces, decode, normalize_request};

/// The entry point of a fuzz target.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the file under `fuzz/fuzz_targets/` and the folder under `fuzz/seeds/`) and its
/// entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("otlp_traces_protobuf", otlp_traces_protobuf),
    ("otlp_logs_protobuf", otlp_logs_protobuf),
    ("otlp_metrics_protobuf", otlp_metrics_protobuf),
    ("otlp_json", otlp_json),
    ("hook_json", hook_json),
    ("redaction", redaction),
];

/// The arrival time of every fuzzed request: 2026-11-25T16:00:00Z.
pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_622_400, 0)
        .single()
        .expect("a valid time")
}

/// The extra pattern of the fuzzed `--redact-pattern`. It cannot match `[REDACTED]` or `[dropped]`, and a match
/// can never straddle its own replacement: after one pass no string value holds a match.
const EXTRA_PATTERN: &str = "INT-[0-9]+";

/// The `serve` redaction options, all on: `--redact-pattern`, `--drop-prompts`, `--drop-tool-output`.
static SETTINGS: LazyLock<RedactSettings> = LazyLock::new(|| {
    RedactSettings::new(&[EXTRA_PATTERN.to_string()], true, true).expect("a valid pattern")
});
static EXTRA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(EXTRA_PATTERN).expect("a valid pattern"));

/// `/metrics`, set up once per process as `serve` does, so that OTLP metrics reach the Claude Code totals.
static METRICS: LazyLock<crate::metrics::Metrics> =
    LazyLock::new(|| crate::metrics::Metrics::new().expect("metrics set up"));

/// OTLP/HTTP `/v1/traces` with a protobuf body (also what OTLP/gRPC decodes).
pub fn otlp_traces_protobuf(data: &[u8]) {
    otlp::<Traces>(data, false);
}

/// OTLP/HTTP `/v1/logs` with a protobuf body.
pub fn otlp_logs_protobuf(data: &[u8]) {
    otlp::<Logs>(data, false);
}

/// OTLP/HTTP `/v1/metrics` with a protobuf body.
pub fn otlp_metrics_protobuf(data: &[u8]) {
    otlp::<Metrics>(data, false);
}

/// OTLP/HTTP with a JSON body; the first byte picks the signal (its value modulo 3: `T` traces, `L` logs,
/// `M` metrics), the rest is the body.
pub fn otlp_json(data: &[u8]) {
    let Some((&signal, body)) = data.split_first() else {
        return;
    };
    match signal % 3 {
        0 => otlp::<Traces>(body, true),
        1 => otlp::<Logs>(body, true),
        _ => otlp::<Metrics>(body, true),
    }
}

/// `POST /api/v1/observability/event` without context headers: one hook payload or an array of them.
pub fn hook_json(data: &[u8]) {
    let limits = Limits::default();
    match normalize_body(data, &HookContext::default(), &limits, now()) {
        Ok(HookBody::One(event)) => before_commit(vec![*event]),
        Ok(HookBody::Batch { events, errors }) => {
            assert!(
                !events.is_empty() || errors.is_empty(),
                "a batch of refused items is refused whole"
            );
            let answer = serde_json::json!({
                "accepted": events.len(), "rejected": errors.len(), "errors": errors,
            });
            serde_json::to_vec(&answer).expect("the answer serializes");
            before_commit(events);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The built-in redaction over the bytes as text, and, when they are JSON, over them as an event payload and as a
/// transcript line (with the `serve` options on).
pub fn redaction(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let redacted = redact_str(&text);
    // Only four rules can grow what they match, each match by at most (10 bytes of `[REDACTED]` less the shortest
    // secret part) over a shortest match: URLs 9 over 7 bytes (`a://:p@`), Slack webhooks 2 over 33, Basic
    // auth 4 over 26, `NAME=value` 9 over 5 (`pwd=x`). Matches of one rule do not overlap, so the rules in turn
    // make a string at most (16/7)(35/33)(30/26)(14/5) < 8 times longer.
    assert!(
        redacted.len() <= 8 * text.len(),
        "redaction grew {} bytes into {}",
        text.len(),
        redacted.len()
    );
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };

    // An event payload, as the pipeline redacts it.
    let mut payload = value.clone();
    redact_json(&mut payload);
    check_redacted(&value, &payload);
    let redacted_json = payload.clone();
    SETTINGS.apply_payload(&mut payload);
    check_dropped(&redacted_json, &payload);
    check_no_extra_match(&payload);

    // A transcript line, as `POST /api/v1/transcripts` stores it.
    let mut line = value;
    SETTINGS.apply_transcript_line(&mut line);
    check_no_extra_match(&line);
    if let Some(entry) = TranscriptEntry::from_line(Uuid::nil(), "main", line, now()) {
        check_storable_json(&entry.content);
        // Not `uuid`: it is read before the NULs are stripped (an open finding, see docs/RELIABILITY.md, Fuzzing).
        for s in [&entry.role, &entry.agent_id]
            .into_iter()
            .chain(&entry.parent_uuid)
            .chain(&entry.model)
        {
            assert!(!s.contains('\0'), "a transcript entry keeps a NUL: {s:?}");
        }
        let text = entry.content.to_string();
        serde_json::from_str::<Value>(&text).expect("stored transcript content reads back");
    }
}

fn otlp<S: Signal>(body: &[u8], json: bool) {
    let limits = Limits::default();
    let Ok(request) = decode::<S>(body, json) else {
        return;
    };
    let normalized = match normalize_request::<S>(&request, &limits, now()) {
        Ok(n) => n,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(
        normalized.total,
        S::count(&request),
        "every item is counted"
    );
    assert!(
        normalized.events.len() + normalized.rejected <= normalized.total,
        "{} events and {} refused out of {} items",
        normalized.events.len(),
        normalized.rejected,
        normalized.total
    );
    assert_eq!(
        normalized.rejected > 0,
        normalized.first_error.is_some(),
        "a refusal has a message"
    );
    S::observe(&request, &METRICS.instruments());
    let answer = S::response(normalized.rejected as i64, normalized.error_message());
    assert_eq!(S::rejected(&answer), normalized.rejected as i64);
    answer.encode_to_vec();
    serde_json::to_vec(&answer).expect("the answer serializes");
    before_commit(normalized.events);
}

/// What `Pipeline::submit` does to each event before it queues it for the commit, and the JSON the store writes.
fn before_commit(events: Vec<AgentEvent>) {
    for mut ev in events {
        let original = ev.payload.clone();
        redact_json(&mut ev.payload);
        check_redacted(&original, &ev.payload);
        SETTINGS.apply_payload(&mut ev.payload);
        check_dropped(&original, &ev.payload);
        check_no_extra_match(&ev.payload);
        ev.make_storable();
        check_storable(&ev);

        let payload = ev.payload.to_string();
        serde_json::from_str::<Value>(&payload).expect("a stored payload reads back");
        let event = serde_json::to_string(&ev).expect("an event serializes");
        let back: AgentEvent = serde_json::from_str(&event).expect("an event reads back");
        assert_eq!(
            (
                back.event_id,
                &back.event_type,
                back.session_id,
                back.created_at,
                back.latency_ms
            ),
            (
                ev.event_id,
                &ev.event_type,
                ev.session_id,
                ev.created_at,
                ev.latency_ms
            ),
            "an event reads back as written"
        );
    }
}

/// `redact_json` changes strings only, and every string under a secret-looking key becomes `[REDACTED]`.
fn check_redacted(before: &Value, after: &Value) {
    match (before, after) {
        (Value::String(_), Value::String(_)) => {}
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "redaction keeps arrays whole");
            a.iter().zip(b).for_each(|(a, b)| check_redacted(a, b));
        }
        (Value::Object(a), Value::Object(b)) => {
            assert!(a.keys().eq(b.keys()), "redaction keeps keys");
            for ((k, va), vb) in a.iter().zip(b.values()) {
                if va.is_string() && is_secret_key(k) {
                    assert_eq!(vb, REDACTED, "the value of {k:?} is redacted");
                } else {
                    check_redacted(va, vb);
                }
            }
        }
        (a, b) => assert_eq!(a, b, "redaction changes strings only"),
    }
}

/// Prompt text and tool output hold `[dropped]` (a null stays null), at the top of a payload and in its
/// `attributes` (an OTLP item's); nothing else changes shape.
fn check_dropped(before: &Value, after: &Value) {
    check_dropped_keys(before, after);
    if let (Some(a), Some(b)) = (before.get("attributes"), after.get("attributes")) {
        check_dropped_keys(a, b);
    }
}

fn check_dropped_keys(before: &Value, after: &Value) {
    let (Value::Object(a), Value::Object(b)) = (before, after) else {
        return;
    };
    assert!(a.keys().eq(b.keys()), "dropping keeps keys");
    for ((k, va), vb) in a.iter().zip(b.values()) {
        if (PROMPT_KEYS.contains(&k.as_str()) || TOOL_OUTPUT_KEYS.contains(&k.as_str()))
            && !va.is_null()
        {
            assert_eq!(vb, DROPPED, "{k:?} is dropped");
        }
    }
}

/// No string value holds a match of the extra pattern once the settings have run (keys are not redacted).
fn check_no_extra_match(v: &Value) {
    match v {
        Value::String(s) => assert!(!EXTRA.is_match(s), "{s:?} still matches {EXTRA_PATTERN}"),
        Value::Array(items) => items.iter().for_each(check_no_extra_match),
        Value::Object(map) => map.values().for_each(check_no_extra_match),
        _ => {}
    }
}

/// What `make_storable` promises: every back-end can hold the event.
fn check_storable(ev: &AgentEvent) {
    for s in [ev.event_type.as_str(), &ev.agent_id, &ev.source_app]
        .into_iter()
        .chain(ev.prompt_id.as_deref())
        .chain(ev.tool_name.as_deref())
        .chain(ev.tool_use_id.as_deref())
    {
        assert!(!s.contains('\0'), "a stored field keeps a NUL: {s:?}");
    }
    assert!(ev.event_type.as_str().chars().count() <= MAX_EVENT_TYPE_CHARS);
    let latest: DateTime<Utc> = "9999-12-31T23:59:59Z".parse().expect("a valid time");
    assert!(
        (DateTime::<Utc>::UNIX_EPOCH..=latest).contains(&ev.created_at),
        "created_at {} is out of range",
        ev.created_at
    );
    assert!(
        ev.latency_ms
            .is_none_or(|l| (0..=i64::from(i32::MAX)).contains(&l)),
        "latency_ms {:?} is out of range",
        ev.latency_ms
    );
    check_storable_json(&ev.payload);
}

/// No NUL in any string or key (Postgres text and JSONB cannot hold one).
fn check_storable_json(v: &Value) {
    match v {
        Value::String(s) => assert!(!s.contains('\0'), "a stored string keeps a NUL: {s:?}"),
        Value::Array(items) => items.iter().for_each(check_storable_json),
        Value::Object(map) => {
            for (k, v) in map {
                assert!(!k.contains('\0'), "a stored key keeps a NUL: {k:?}");
                check_storable_json(v);
            }
        }
        _ => {}
    }
}
