//! Secret redaction, applied to every event's payload before it reaches any sink.
//!
//! Two passes over the JSON: values under secret-looking keys are replaced whole, and every string is searched
//! for secret shapes (API keys, bearer tokens, JWTs, private keys, passwords in URLs, `NAME=value` assignments).

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Regex, RegexSet};
use serde_json::Value;

pub const REDACTED: &str = "[REDACTED]";

struct Rule {
    re: Regex,
    /// Replacement template; `$keep` re-inserts the part that is not secret.
    replace: &'static str,
}

static RULES: LazyLock<(RegexSet, Vec<Rule>)> = LazyLock::new(|| {
    let specs: &[(&str, &str)] = &[
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            REDACTED,
        ),
        (r"\bsk-ant-[A-Za-z0-9_\-]{16,}", REDACTED),
        (r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}", REDACTED),
        (r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", REDACTED),
        (r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", REDACTED),
        (r"\bgithub_pat_[A-Za-z0-9_]{22,}", REDACTED),
        (r"\bxox[abposr]-[A-Za-z0-9-]{10,}", REDACTED),
        (r"\bAIza[0-9A-Za-z_\-]{35}", REDACTED),
        (r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}", REDACTED),
        (
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
            REDACTED,
        ),
        (
            r"(?i)(?P<keep>\bbearer\s+)[A-Za-z0-9._~+/=\-]{12,}",
            "${keep}[REDACTED]",
        ),
        (
            r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/\s@]+:)[^@\s/]+@",
            "${keep}[REDACTED]@",
        ),
        (
            r#"(?i)(?P<keep>\b[A-Z0-9_]*(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|PWD|CREDENTIALS?|PRIVATE_KEY)(?:_[A-Z0-9_]*)?\s*[=:]\s*)(?:"[^"\n]*"|'[^'\n]*'|[^\s"',;]+)"#,
            "${keep}[REDACTED]",
        ),
    ];
    let set = RegexSet::new(specs.iter().map(|(re, _)| *re)).expect("redaction patterns are valid");
    let rules = specs
        .iter()
        .map(|(re, replace)| Rule {
            re: Regex::new(re).expect("redaction patterns are valid"),
            replace,
        })
        .collect();
    (set, rules)
});

static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:.*[_.\-])?(?:api[_\-]?key|apikey|secret|client[_\-]?secret|password|passwd|token|access[_\-]?token|refresh[_\-]?token|auth[_\-]?token|authorization|private[_\-]?key|credentials?|cookie)$",
    )
    .expect("secret key pattern is valid")
});

/// Redacts a string; borrows when there is nothing to redact, which is the common case.
pub fn redact_str(s: &str) -> Cow<'_, str> {
    let (set, rules) = &*RULES;
    let hits = set.matches(s);
    if !hits.matched_any() {
        return Cow::Borrowed(s);
    }
    let mut out = s.to_string();
    for i in hits.iter() {
        let rule = &rules[i];
        if let Cow::Owned(replaced) = rule.re.replace_all(&out, rule.replace) {
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
                if val.is_string() && SECRET_KEY.is_match(k) {
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
