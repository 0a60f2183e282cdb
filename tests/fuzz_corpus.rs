//! The fuzz targets' seed corpora replayed through their entry points (`hivewatch::fuzzing`), so that the entry
//! points stay compiled and every seed, among them the reproducer of every past finding (`regress-*`), keeps
//! passing in the normal test suite. `scripts/fuzz.sh` runs the fuzzers themselves.
//!
//! The seeds are built from the recorded Claude Code payloads by `write_seeds` (ignored; run it by hand after the
//! fixtures change): `cargo test --test fuzz_corpus write_seeds -- --ignored`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use hivewatch::fuzzing::TARGETS;
use hivewatch::receiver::{Logs, Metrics, Signal, Traces, decode};
use prost::Message;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(ROOT).join("fuzz/seeds").join(target)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_passes_its_target() {
    let mut failed = Vec::new();
    let mut total = 0;
    for (name, run) in TARGETS {
        let seeds = files(&seeds_dir(name));
        assert!(!seeds.is_empty(), "{name} has no seeds");
        for seed in seeds {
            let data = fs::read(&seed).expect("read a seed");
            total += 1;
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failed.push(seed.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {total} seeds fail: {failed:#?}",
        failed.len()
    );
}

#[test]
fn every_target_has_its_fuzz_target_file() {
    let manifest =
        fs::read_to_string(Path::new(ROOT).join("fuzz/Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        let path = Path::new(ROOT).join(format!("fuzz/fuzz_targets/{name}.rs"));
        let source =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            source.contains(&format!("hivewatch::fuzzing::{name}(")),
            "{}",
            path.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks {name}"
        );
    }
}

// ---- Seed generation -------------------------------------------------------------------------------------------

fn fixture(rel: &str) -> Value {
    let path = Path::new(ROOT).join("tests/fixtures/claude-code").join(rel);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn fixture_files(rel: &str) -> Vec<PathBuf> {
    files(&Path::new(ROOT).join("tests/fixtures/claude-code").join(rel))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .expect("a file name")
        .to_string_lossy()
        .replace("claude_code.", "")
}

/// A flattened record's resource (`{"service.name": "claude-code", …}`) as OTLP/JSON attributes.
fn resource(flat: &Value) -> Value {
    let attributes: Vec<Value> = flat
        .as_object()
        .expect("a resource map")
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => json!({"key": k, "value": {"stringValue": s}}),
            other => json!({"key": k, "value": {"stringValue": other.to_string()}}),
        })
        .collect();
    json!({ "attributes": attributes })
}

/// One flattened record of `otel/<signal>/` as a whole OTLP/JSON export request.
fn request_of(signal: &str, record: &Value) -> Value {
    let (outer, inner, items, key) = match signal {
        "traces" => ("resourceSpans", "scopeSpans", "spans", "span"),
        "logs" => ("resourceLogs", "scopeLogs", "logRecords", "record"),
        _ => ("resourceMetrics", "scopeMetrics", "metrics", "metric"),
    };
    json!({ outer: [{
        "resource": resource(&record["resource"]),
        inner: [{ "scope": record["scope"], items: [record[key]] }],
    }]})
}

/// Requests with every value shape the normalizers read: nested arrays and maps, bytes, doubles, events, links, an
/// error status, a structured log body, every metric kind, and a few records that are refused.
fn shapes(signal: &str) -> Value {
    let attributes = json!([
        {"key": "session.id", "value": {"stringValue": "0fbc6975-e498-4c0d-a2a2-497077c17a19"}},
        {"key": "prompt", "value": {"stringValue": "deploy INT-42 with sk-ant-api03-abcdefghijklmnopqrstuvwx"}},
        {"key": "user_prompt", "value": {"stringValue": "hello"}},
        {"key": "tool_result", "value": {"stringValue": "ok"}},
        {"key": "api_key", "value": {"stringValue": "hunter2"}},
        {"key": "success", "value": {"boolValue": false}},
        {"key": "duration_ms", "value": {"intValue": "-5"}},
        {"key": "cost", "value": {"doubleValue": 0.25}},
        {"key": "raw", "value": {"bytesValue": "AAECAw=="}},
        {"key": "list", "value": {"arrayValue": {"values": [
            {"stringValue": "a\u{0}b"}, {"intValue": "9223372036854775807"},
            {"arrayValue": {"values": [{"kvlistValue": {"values": [
                {"key": "password", "value": {"stringValue": "x"}}]}}]}}]}}},
        {"key": "map", "value": {"kvlistValue": {"values": [
            {"key": "token", "value": {"stringValue": "t"}}, {"key": "empty"}]}}},
        {"key": "nul\u{0}key", "value": {}},
    ]);
    let resource = json!({"attributes": [
        {"key": "service.name", "value": {"stringValue": "claude-code"}},
        {"key": "gen_ai.agent.id", "value": {"stringValue": "agent-1"}},
    ]});
    let scope = json!({"name": "scope", "version": "1"});
    match signal {
        "traces" => {
            json!({"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": scope, "spans": [
                {"traceId": "0123456789abcdef0123456789abcdef", "spanId": "0123456789abcdef",
                 "parentSpanId": "fedcba9876543210", "name": "claude_code.interaction", "kind": 1,
                 "startTimeUnixNano": "1795625731725000000", "endTimeUnixNano": "18446744073709551615",
                 "attributes": attributes,
                 "events": [{"name": "e", "timeUnixNano": "1", "attributes": attributes}],
                 "links": [{"traceId": "00", "spanId": "0102"}],
                 "status": {"code": 2, "message": "failed"}},
                {"traceId": "00000000000000000000000000000000", "spanId": "0123456789abcdef", "name": "zero id"},
                {"traceId": "0123", "spanId": "", "name": "short id"},
                {"traceId": "0123456789abcdef0123456789abcdef", "spanId": "0123456789abcdef",
                 "startTimeUnixNano": "9", "endTimeUnixNano": "1"},
            ]}]}]})
        }
        "logs" => {
            json!({"resourceLogs": [{"resource": resource, "scopeLogs": [{"scope": scope, "logRecords": [
                {"timeUnixNano": "18446744073709551615", "severityNumber": 21, "severityText": "FATAL",
                 "body": {"kvlistValue": {"values": [{"key": "secret", "value": {"stringValue": "s"}}]}},
                 "attributes": attributes, "eventName": "claude_code.api_error",
                 "traceId": "0123456789abcdef0123456789abcdef", "spanId": "0123456789abcdef"},
                {"observedTimeUnixNano": "1", "severityText": "warning",
                 "attributes": [{"key": "event.name", "value": {"stringValue": "user_prompt"}},
                                {"key": "duration_ms", "value": {"stringValue": "12"}}]},
                {"traceId": "01", "body": {"stringValue": "bad trace id"}},
            ]}]}]})
        }
        _ => {
            json!({"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"scope": scope, "metrics": [
                {"name": "claude_code.cost.usage", "sum": {"aggregationTemporality": 2, "isMonotonic": true,
                 "dataPoints": [{"attributes": [{"key": "model", "value": {"stringValue": "m"}}],
                                 "startTimeUnixNano": "1", "timeUnixNano": "2", "asDouble": 1.5},
                                {"asInt": "-3"}, {"asDouble": 2.0}]}},
                {"name": "claude_code.token.usage", "sum": {"aggregationTemporality": 1,
                 "dataPoints": [{"attributes": [{"key": "type", "value": {"intValue": "7"}}], "asInt": "25"}]}},
                {"name": "g", "gauge": {"dataPoints": [{"asDouble": 1.0}]}},
                {"name": "h", "histogram": {"dataPoints": [{"count": "2", "bucketCounts": ["1", "1"],
                 "explicitBounds": [1.0]}]}},
                {"name": "e", "exponentialHistogram": {"dataPoints": [{"scale": 3,
                 "positive": {"offset": -2, "bucketCounts": ["1"]}}]}},
                {"name": "s", "summary": {"dataPoints": [{"quantileValues": [{"quantile": 0.5, "value": 1.0}]}]}},
            ]}]}]})
        }
    }
}

/// Writes `bytes` as a seed, replacing the seeds this generator wrote before.
struct Seeds {
    dir: PathBuf,
    written: usize,
    bytes: usize,
}

impl Seeds {
    fn new(target: &str) -> Seeds {
        let dir = seeds_dir(target);
        fs::create_dir_all(&dir).expect("create the seed folder");
        for old in files(&dir) {
            let name = old
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string();
            if name.starts_with("fixture-")
                || name.starts_with("shape-")
                || name.starts_with("text-")
            {
                fs::remove_file(&old).expect("remove an old seed");
            }
        }
        Seeds {
            dir,
            written: 0,
            bytes: 0,
        }
    }

    fn write(&mut self, name: &str, bytes: &[u8]) {
        fs::write(self.dir.join(name), bytes).expect("write a seed");
        self.written += 1;
        self.bytes += bytes.len();
    }
}

/// Decodes an OTLP/JSON request as the server does, for its protobuf encoding.
fn protobuf<S: Signal>(request: &Value) -> Vec<u8> {
    let text = serde_json::to_vec(request).expect("JSON");
    decode::<S>(&text, true)
        .unwrap_or_else(|e| panic!("{e}"))
        .encode_to_vec()
}

#[test]
#[ignore = "writes fuzz/seeds from tests/fixtures/claude-code; run by hand after the fixtures change"]
fn write_seeds() {
    let mut report = Vec::new();

    // OTLP: the three recorded export requests, each recorded record as a request of its own, and the shapes.
    let mut json_seeds = Seeds::new("otlp_json");
    for (signal, prefix) in [("traces", b'T'), ("logs", b'L'), ("metrics", b'M')] {
        let mut requests = vec![
            (
                format!("fixture-export-{signal}"),
                fixture(&format!("otlp-json/export_{signal}.json")),
            ),
            (format!("shape-{signal}"), shapes(signal)),
        ];
        for path in fixture_files(&format!("otel/{signal}")) {
            let record = fixture(&format!(
                "otel/{signal}/{}",
                path.file_name().unwrap().to_string_lossy()
            ));
            requests.push((
                format!("fixture-{signal}-{}", stem(&path)),
                request_of(signal, &record),
            ));
        }
        let mut pb_seeds = Seeds::new(&format!("otlp_{signal}_protobuf"));
        for (name, request) in &requests {
            let mut body = vec![prefix];
            body.extend(serde_json::to_vec(request).expect("JSON"));
            json_seeds.write(&format!("{name}.json"), &body);
            let encoded = match signal {
                "traces" => protobuf::<Traces>(request),
                "logs" => protobuf::<Logs>(request),
                _ => protobuf::<Metrics>(request),
            };
            pb_seeds.write(&format!("{name}.pb"), &encoded);
        }
        report.push((
            format!("otlp_{signal}_protobuf"),
            pb_seeds.written,
            pb_seeds.bytes,
        ));
    }
    report.push(("otlp_json".into(), json_seeds.written, json_seeds.bytes));

    // Hook JSON: up to three recorded inputs of each event, a batch with per-item context, the seed envelope.
    let mut hook = Seeds::new("hook_json");
    let mut firsts = Vec::new();
    for path in fixture_files("hooks") {
        let event = stem(&path);
        let items = fixture(&format!("hooks/{event}.json"));
        for (i, item) in items
            .as_array()
            .expect("an array")
            .iter()
            .take(3)
            .enumerate()
        {
            hook.write(
                &format!("fixture-{event}-{i}.json"),
                &serde_json::to_vec(item).unwrap(),
            );
        }
        firsts.push(items[0].clone());
    }
    let mut batch: Vec<Value> = firsts.into_iter().take(4).collect();
    batch[0]["_hivewatch"] = json!({"event_id": "0190c7a2-7d7e-7c1a-9a3e-6d2b8f1e4c55", "time": 1795625731725_i64,
                                    "source_app": "demo", "agent_id": "a1", "traceparent":
                                    "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"});
    batch[1]["_hivewatch"] = json!({"time": "2026-11-25T16:00:00Z"});
    batch.push(json!("not an object"));
    hook.write("shape-batch.json", &serde_json::to_vec(&batch).unwrap());
    let envelope = json!({"hook_event_type": "PostToolUseFailure", "source_app": "demo",
        "session_id": "not-a-uuid\u{0}", "timestamp": -8_000_000_000_000_000_i64, "summary": "s",
        "chat": [{"role": "user", "content": "INT-7"}], "event_id": "0190c7a2-7d7e-7c1a-9a3e-6d2b8f1e4c56",
        "payload": {"tool_name": "Bash", "tool_use_id": "toolu_1", "duration_ms": 9e18,
                    "tool_response": {"stdout": "AKIAIOSFODNN7EXAMPLE"}, "prompt": null}});
    hook.write(
        "shape-envelope.json",
        &serde_json::to_vec(&envelope).unwrap(),
    );
    report.push(("hook_json".into(), hook.written, hook.bytes));

    // Redaction: transcript lines, hook inputs with secrets, and text with each secret shape.
    let mut redaction = Seeds::new("redaction");
    for path in files(&Path::new(ROOT).join("tests/fixtures/claude-code/transcripts")) {
        let text = fs::read_to_string(&path).expect("a transcript");
        for (i, line) in text.lines().enumerate() {
            let value: Value = serde_json::from_str(line).expect("a transcript line");
            redaction.write(
                &format!("fixture-transcript-{}-{i}.json", &stem(&path)[..8]),
                &serde_json::to_vec(&value).unwrap(),
            );
        }
    }
    let texts = [
        "export ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345",
        "OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123",
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/o/r",
        "curl -H 'Authorization: Bearer abcdef0123456789xyz' https://api.example.com",
        "curl -H \"authorization: basic dXNlcjpwYXNzd29yZA==\"",
        "psql postgres://app:hunter2@db:5432/app redis://:pw@cache:6379",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\ntail",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX xoxb-1234567890-abcdef",
        "DB_PASSWORD='p a s s' TOKEN_COUNT=5 API_KEY=$VAULT_KEY SECRET_KEY_FILE=/run/k \"password\": \"pw\"",
        "Password:\nnext line glpat-abcdefghijklmnopqrst npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "ya29.abcdefghijklmnopqrstuvwxyz GOCSPX-abcdefghijklmnopqrstuv AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        "sk_live_abcdefghijklmnop risk-free toolu_183802d7c00548d68bda7b83 input_tokens=25 INT-42",
        "pwd:a,pwd:a,pwd:a,a://:b@a://:b@",
    ];
    for (i, text) in texts.iter().enumerate() {
        redaction.write(&format!("text-{i:02}.txt"), text.as_bytes());
    }
    let payload = json!({"hook_event_name": "PostToolUse", "session_id": "s", "prompt": "fix INT-42",
        "tool_input": {"command": "curl -u admin:hunter2 https://x", "api_key": "abc", "env": ["GITHUB_TOKEN=ghp_x"]},
        "tool_response": {"stdout": "done"}, "toolUseResult": null, "X-Api-Key": "k", "nested": [{"Cookie": "c"}],
        "attributes": {"prompt": "p", "user_prompt": "u", "tool_output": 5}});
    redaction.write("shape-payload.json", &serde_json::to_vec(&payload).unwrap());
    let line = json!({"type": "user", "uuid": "u1", "parentUuid": null, "toolUseResult": {"stdout": "INT-9"},
        "message": {"role": "user", "content": [{"type": "text", "text": "INT-1 please"},
                    {"type": "tool_result", "content": "secret output"}, {"type": "image"}]},
        "timestamp": "2026-11-25T16:00:00Z"});
    redaction.write("shape-transcript.json", &serde_json::to_vec(&line).unwrap());
    report.push(("redaction".into(), redaction.written, redaction.bytes));

    for (target, n, bytes) in report {
        println!("{target:24} {n:4} seeds {bytes:8} bytes");
    }
}
