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
        r"(?P<keep>(?-u:\b)[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/ \t\r\n@]+:)[^@ \t\r\n/]+@",
        "${keep}[REDACTED]@",
    ),
    (
        r#"(?i)(?P<keep>(?-u:\b)[A-Z0-9_]*(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIALS?|PRIVATE_KEY)(?:_[A-Z0-9_]*)?(?-u:\s)*[=:](?-u:\s)*)(?:"[^"\n]*"|'[^'\n]*'|[^ \t\r\n"',;]+)"#,
        "${keep}[REDACTED]",
    ),
];

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
    "credential",
    "credentials",
    "cookie",
];

fn is_secret_key(key: &str) -> bool {
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
        if let Cow::Owned(replaced) = rule(i).replace_all(&out, RULES[i].1) {
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
