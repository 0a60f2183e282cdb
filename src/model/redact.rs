//! Secret redaction, applied to every event's payload before it reaches any sink.
//!
//! Two passes over the JSON: values under secret-looking keys are replaced whole, and every string is searched
//! for secret shapes (API keys, bearer tokens, JWTs, private keys, passwords in URLs, `NAME=value` assignments).

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use regex::{Regex, RegexSet};
use serde_json::Value;

pub const REDACTED: &str = "[REDACTED]";

/// Secret shapes, each with its replacement (`${keep}` re-inserts the part that is not secret). `(?-u:…)` keeps
/// word boundaries and spaces ASCII-only, which makes the set much cheaper to build: redaction runs in every
/// `hivewatch hook` process, where building the regexes is most of the cost.
const RULES: &[(&str, &str)] = &[
    (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        REDACTED,
    ),
    (r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{16,}", REDACTED),
    (
        r"(?-u:\b)sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}",
        REDACTED,
    ),
    (r"(?-u:\b)(?:AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)", REDACTED),
    (r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{30,}(?-u:\b)", REDACTED),
    (r"(?-u:\b)github_pat_[A-Za-z0-9_]{22,}", REDACTED),
    (r"(?-u:\b)xox[abposr]-[A-Za-z0-9-]{10,}", REDACTED),
    (r"(?-u:\b)AIza[0-9A-Za-z_\-]{35}", REDACTED),
    (
        r"(?-u:\b)(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}",
        REDACTED,
    ),
    (
        r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        REDACTED,
    ),
    (
        r"(?i)(?P<keep>(?-u:\b)bearer(?-u:\s)+)[A-Za-z0-9._~+/=\-]{12,}",
        "${keep}[REDACTED]",
    ),
    (
        r"(?P<keep>(?-u:\b)[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/ \t\r\n@]*:)[^@ \t\r\n/]+@",
        "${keep}[REDACTED]@",
    ),
    (r"(?-u:\b)glpat-[A-Za-z0-9_\-]{20,}", REDACTED),
    (r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)", REDACTED),
    (r"(?-u:\b)GOCSPX-[A-Za-z0-9_\-]{20,}", REDACTED),
    (r"(?-u:\b)ya29\.[0-9A-Za-z_\-]{20,}", REDACTED),
    (
        r"(?P<keep>hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_\-]{8,}",
        "${keep}[REDACTED]",
    ),
    (
        r#"(?i)(?P<keep>(?-u:\b)authorization["']?[ \t]*[:=][ \t]*["']?basic[ \t]+)[A-Za-z0-9+/]{6,}=*"#,
        "${keep}[REDACTED]",
    ),
    // Must stay last: `NAME_RULE` names it, and its matches are filtered (see `assignment`).
    (
        r#"(?i)(?P<keep>(?-u:\b)(?P<name>[A-Z0-9_]*(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIALS?|PRIVATE_KEY)(?:_[A-Z0-9_]*)?)["']?[ \t]*[=:][ \t]*)(?P<value>"[^"\n]*"|'[^'\n]*'|[^ \t\r\n"',;]+)"#,
        "${keep}[REDACTED]",
    ),
];

/// The `NAME=value` rule, whose matches are kept when the name says the value is not a secret.
const NAME_RULE: usize = RULES.len() - 1;

/// Last words of a secret-looking name that say its value is something else: a count, a size, a path, a URL,
/// a type (`TOKEN_COUNT=5`, `SECRET_KEY_FILE=/run/secrets/k`, `PASSWORD_RESET_URL=https://…`).
const NOT_SECRET_SUFFIXES: &[&str] = &[
    "count",
    "counts",
    "limit",
    "len",
    "length",
    "size",
    "ttl",
    "timeout",
    "expiry",
    "expires",
    "expiration",
    "file",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "type",
    "header",
    "name",
    "min",
    "max",
    "enabled",
];

/// The replacement for one `NAME=value` match: the value redacted, unless the name's last word says it is not a
/// secret or the value is a variable reference (`$API_KEY`, `${TOKEN}`).
fn assignment(caps: &regex::Captures<'_>) -> String {
    let name = caps.name("name").map_or("", |m| m.as_str());
    let value = caps.name("value").map_or("", |m| m.as_str());
    let last = name
        .rsplit('_')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    if (name.contains('_') && NOT_SECRET_SUFFIXES.contains(&last.as_str()))
        || value.starts_with('$')
    {
        caps[0].to_string()
    } else {
        format!("{}{REDACTED}", &caps["keep"])
    }
}

/// Tells which rules may apply to a string; a rule's own regex is built the first time it is needed.
static SET: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(RULES.iter().map(|(re, _)| *re)).expect("redaction patterns are valid")
});
static RULE_REGEXES: [OnceLock<Regex>; RULES.len()] = [const { OnceLock::new() }; RULES.len()];

fn rule(i: usize) -> &'static Regex {
    RULE_REGEXES[i].get_or_init(|| Regex::new(RULES[i].0).expect("redaction patterns are valid"))
}

/// Key names whose string values are secrets as a whole (`api_key`, `x-auth-token`, `DB_PASSWORD`, …): the key,
/// lower-cased with `-` and `.` read as `_`, is one of these words or ends with `_` and one of them.
const SECRET_KEY_WORDS: &[&str] = &[
    "api_key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "token",
    "access_token",
    "refresh_token",
    "auth_token",
    "authorization",
    "private_key",
    "access_key",
    "secret_key",
    "credential",
    "credentials",
    "cookie",
];

pub fn is_secret_key(key: &str) -> bool {
    let key: String = key
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    SECRET_KEY_WORDS.iter().any(|w| {
        key.strip_suffix(w)
            .is_some_and(|head| head.is_empty() || head.ends_with('_'))
    })
}

/// Redacts a string; borrows when there is nothing to redact, which is the common case.
pub fn redact_str(s: &str) -> Cow<'_, str> {
    let hits = SET.matches(s);
    if !hits.matched_any() {
        return Cow::Borrowed(s);
    }
    let mut out = s.to_string();
    for i in hits.iter() {
        let replaced = if i == NAME_RULE {
            rule(i).replace_all(&out, assignment)
        } else {
            rule(i).replace_all(&out, RULES[i].1)
        };
        if let Cow::Owned(replaced) = replaced {
            out = replaced;
        }
    }
    Cow::Owned(out)
}

/// Redacts a JSON value in place.
pub fn redact_json(v: &mut Value) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(r) = redact_str(s) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if val.is_string() && is_secret_key(k) {
                    *val = Value::String(REDACTED.into());
                } else {
                    redact_json(val);
                }
            }
        }
        _ => {}
    }
}

/// What replaces dropped prompt text and tool output.
pub const DROPPED: &str = "[dropped]";

/// Separator of `HIVEWATCH_REDACT_PATTERNS`: a newline, which a one-line regex never needs to contain (write `\n`
/// inside a pattern for a literal newline).
pub const PATTERNS_ENV_SEPARATOR: char = '\n';

/// Server-side redaction beyond the built-in rules, from `serve` flags: extra patterns, and dropping prompts or
/// tool output whole. Applied to every event's payload and every transcript line before storage.
#[derive(Debug, Clone, Default)]
pub struct RedactSettings {
    /// Every match of each pattern in every string becomes `[REDACTED]`.
    pub extra_patterns: Vec<Regex>,
    /// Prompt text (`prompt` fields, user messages of transcripts) becomes `[dropped]`.
    pub drop_prompts: bool,
    /// Tool output (`tool_response` and the like, `tool_result` blocks of transcripts) becomes `[dropped]`.
    pub drop_tool_output: bool,
}

/// Payload keys that hold a tool's output.
pub const TOOL_OUTPUT_KEYS: &[&str] = &[
    "tool_response",
    "tool_output",
    "tool_result",
    "toolUseResult",
];

/// Payload keys that hold prompt text: a hook's `prompt`, the `prompt` attribute of Claude Code's `user_prompt`
/// log and the `user_prompt` attribute of its `claude_code.interaction` span.
pub const PROMPT_KEYS: &[&str] = &["prompt", "user_prompt"];

impl RedactSettings {
    /// Compiles the extra patterns; the error names the pattern that does not compile.
    pub fn new(
        patterns: &[String],
        drop_prompts: bool,
        drop_tool_output: bool,
    ) -> Result<Self, String> {
        let extra_patterns = patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| {
                let re = Regex::new(p)
                    .map_err(|e| format!("--redact-pattern {p:?} is not a valid regex: {e}"))?;
                // A pattern that matches nothing at all would put `[REDACTED]` between every character.
                if re.is_match("") {
                    return Err(format!(
                        "--redact-pattern {p:?} matches the empty string: it must match at least one character"
                    ));
                }
                Ok(re)
            })
            .collect::<Result<_, _>>()?;
        Ok(RedactSettings {
            extra_patterns,
            drop_prompts,
            drop_tool_output,
        })
    }

    /// True when there is nothing beyond the built-in rules to apply.
    pub fn is_noop(&self) -> bool {
        self.extra_patterns.is_empty() && !self.drop_prompts && !self.drop_tool_output
    }

    /// Applies the settings to an event's payload: a hook payload, or an OTLP item's, whose attributes are under
    /// `attributes`.
    pub fn apply_payload(&self, payload: &mut Value) {
        if self.is_noop() {
            return;
        }
        if let Value::Object(map) = payload {
            self.drop_keys(map);
            if let Some(Value::Object(attributes)) = map.get_mut("attributes") {
                self.drop_keys(attributes);
            }
        }
        self.apply_patterns(payload);
    }

    /// Replaces the prompt text and tool output directly under `map`, as the settings say.
    fn drop_keys(&self, map: &mut serde_json::Map<String, Value>) {
        for (k, v) in map.iter_mut() {
            let dropped = (self.drop_prompts && PROMPT_KEYS.contains(&k.as_str()))
                || (self.drop_tool_output && TOOL_OUTPUT_KEYS.contains(&k.as_str()));
            if dropped && !v.is_null() {
                *v = Value::String(DROPPED.into());
            }
        }
    }

    /// Applies the settings to one transcript line (Claude Code session JSONL) before it is read.
    pub fn apply_transcript_line(&self, line: &mut Value) {
        if self.is_noop() {
            return;
        }
        if self.drop_tool_output
            && let Some(v) = line.get_mut("toolUseResult")
            && !v.is_null()
        {
            *v = Value::String(DROPPED.into());
        }
        let is_user = line.get("type").and_then(Value::as_str) == Some("user")
            || line.pointer("/message/role").and_then(Value::as_str) == Some("user");
        if let Some(content) = line.pointer_mut("/message/content") {
            match content {
                Value::String(text) if is_user && self.drop_prompts => *text = DROPPED.into(),
                Value::Array(blocks) => {
                    for block in blocks {
                        let kind = block
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        let (field, drop) = match kind {
                            "text" => ("text", is_user && self.drop_prompts),
                            "tool_result" => ("content", self.drop_tool_output),
                            _ => continue,
                        };
                        if drop && let Some(v) = block.get_mut(field) {
                            *v = Value::String(DROPPED.into());
                        }
                    }
                }
                _ => {}
            }
        }
        self.apply_patterns(line);
    }

    fn apply_patterns(&self, v: &mut Value) {
        if self.extra_patterns.is_empty() {
            return;
        }
        match v {
            Value::String(s) => {
                for re in &self.extra_patterns {
                    if let Cow::Owned(r) = re.replace_all(s, REDACTED) {
                        *s = r;
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.apply_patterns(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.apply_patterns(i)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_in_strings_are_redacted() {
        let cases = [
            (
                "key sk-ant-api03-abcdefghijklmnopqrstuvwx",
                "key [REDACTED]",
            ),
            (
                "export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz",
                "export OPENAI_API_KEY=[REDACTED]",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "[REDACTED]"),
            (
                "Authorization: Bearer abcdef0123456789xyz",
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "curl -H 'authorization: bearer abcdef0123456789xyz'",
                "curl -H 'authorization: bearer [REDACTED]'",
            ),
            (
                "postgres://app:hunter2@db:5432/x",
                "postgres://app:[REDACTED]@db:5432/x",
            ),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[REDACTED]"),
            ("DB_PASSWORD='p a s s'", "DB_PASSWORD=[REDACTED]"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_str(input), want, "input: {input}");
        }
    }

    #[test]
    fn look_alikes_survive() {
        for s in [
            "echo hello",
            "input_tokens=25",
            "https://example.com/path?x=1",
            "toolu_183802d7c00548d68bda7b83",
            "the token count is 5",
            "sk-short",
        ] {
            assert_eq!(redact_str(s), s);
        }
    }

    #[test]
    fn secret_key_names() {
        for k in [
            "api_key",
            "X-Auth-Token",
            "DB_PASSWORD",
            "client.secret",
            "token",
            "Cookie",
            "apikey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "input_tokens",
            "tokens",
            "max_tokens",
            "secretary",
            "tool_input",
            "passwords_checked",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn settings_drop_prompts_and_tool_output_and_apply_patterns() {
        let settings =
            RedactSettings::new(&["INT-[0-9]+".into()], true, true).expect("valid pattern");
        // A Claude Code `user_prompt` log's attributes carry the prompt as `prompt`.
        let mut log =
            json!({"event.name": "user_prompt", "prompt": "fix INT-42", "prompt_length": "10"});
        settings.apply_payload(&mut log);
        assert_eq!(log["prompt"], DROPPED);
        assert_eq!(log["prompt_length"], "10");
        let mut post =
            json!({"tool_input": {"command": "see INT-7"}, "tool_response": {"stdout": "x"}});
        settings.apply_payload(&mut post);
        assert_eq!(post["tool_response"], DROPPED);
        assert_eq!(post["tool_input"]["command"], "see [REDACTED]");
        // An OTLP item's payload holds its attributes under `attributes`: Claude Code's `user_prompt` log carries
        // the prompt as `prompt`, its `claude_code.interaction` span as `user_prompt`.
        let mut otlp_log = json!({"body": "claude_code.user_prompt", "resource": {"prompt": "kept"},
                                  "attributes": {"event.name": "user_prompt", "prompt": "fix INT-42",
                                                 "prompt_length": "10"}});
        settings.apply_payload(&mut otlp_log);
        assert_eq!(otlp_log["attributes"]["prompt"], DROPPED);
        assert_eq!(otlp_log["attributes"]["prompt_length"], "10");
        assert_eq!(otlp_log["resource"]["prompt"], "kept");
        let mut span = json!({"name": "claude_code.interaction",
                              "attributes": {"user_prompt": "fix INT-42", "user_prompt_length": 10}});
        settings.apply_payload(&mut span);
        assert_eq!(span["attributes"]["user_prompt"], DROPPED);
        assert_eq!(span["attributes"]["user_prompt_length"], 10);
        let mut untouched = json!({"prompt": "fix INT-42"});
        RedactSettings::default().apply_payload(&mut untouched);
        assert_eq!(untouched["prompt"], "fix INT-42");
        let err = RedactSettings::new(&["(".into()], false, false).unwrap_err();
        assert!(err.contains("\"(\""), "{err}");
        let err = RedactSettings::new(&["x*".into()], false, false).unwrap_err();
        assert!(err.contains("empty string"), "{err}");
    }

    #[test]
    fn assignments_with_benign_names_or_references_survive() {
        for s in [
            "TOKEN_COUNT=5",
            "SECRET_KEY_FILE=/run/k",
            "API_KEY=$OTHER",
            "Password:\nnext",
        ] {
            assert_eq!(redact_str(s), s);
        }
        assert_eq!(
            redact_str("\"password\": \"pw\""),
            "\"password\": [REDACTED]"
        );
    }

    #[test]
    fn secret_keys_and_nested_values_are_redacted() {
        let mut v = json!({"tool_input": {"command": "echo $X", "api_key": "abc", "input_tokens": 5,
                           "env": ["GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789"]}});
        redact_json(&mut v);
        assert_eq!(v["tool_input"]["api_key"], REDACTED);
        assert_eq!(v["tool_input"]["input_tokens"], 5);
        assert_eq!(v["tool_input"]["command"], "echo $X");
        assert_eq!(v["tool_input"]["env"][0], "GITHUB_TOKEN=[REDACTED]");
    }
}
