//! Limits on what one request may carry, checked before anything is normalized.
//!
//! A request with too many items is refused whole; an item whose attributes break a limit is refused alone (OTLP
//! `partial_success`, a hook batch's `errors`), with a message that names the attribute, the figure and the option
//! that raises it. Body size is limited where the body is read, JSON and protobuf nesting by their decoders too.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Items (spans, log records, metric points, hook events) in one request.
    pub max_items: usize,
    /// Attributes of one record, resource or nested key-value list; keys of one JSON object in a hook payload.
    pub max_attributes: usize,
    /// Bytes of one attribute key or value, of one string anywhere in a hook payload.
    pub max_attribute_bytes: usize,
    /// Nesting of arrays and key-value lists inside an attribute; of objects and arrays in a hook payload.
    pub max_depth: usize,
    /// Bytes of what one request shares among its items and each item gets a copy of (an OTLP resource and
    /// scope), all copies together: bounds what a small request can grow into (`--max-body-bytes`).
    pub max_copied_bytes: usize,
}

/// Longest identifier (session, agent, source app, traceparent) taken from a header or a request's envelope and
/// copied into each of its items. A Linux file name, the longest `cwd` basename, is 255 bytes.
pub const MAX_ID_BYTES: usize = 256;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_items: 10_000,
            max_attributes: 512,
            max_attribute_bytes: 1024 * 1024,
            max_depth: 64,
            max_copied_bytes: 8 * 1024 * 1024,
        }
    }
}

/// One broken limit: where, and which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct LimitError {
    pub path: String,
    pub problem: String,
}

impl Limits {
    /// The whole request: refused when it carries more items than allowed.
    pub fn check_items(&self, items: usize, what: &str) -> Result<(), String> {
        if items > self.max_items {
            return Err(format!(
                "the request carries {items} {what}; at most {} are accepted in one request \
                 (--max-events-per-request); send smaller batches",
                self.max_items
            ));
        }
        Ok(())
    }

    /// An OTLP attribute list (`what` names it in messages: `attributes`, `resource.attributes`, ...).
    pub fn check_attributes(&self, what: &str, attrs: &[KeyValue]) -> Result<(), LimitError> {
        self.check_kvlist(&mut vec![what], attrs, 1)
    }

    /// An OTLP value outside an attribute list (a log record's body): a map there counts as one level, like a
    /// hook payload's object.
    pub fn check_value(&self, what: &str, value: &AnyValue) -> Result<(), LimitError> {
        self.check_any(&mut vec![what], value, 0)
    }

    /// What a resource or scope of `bytes` costs when copied into each of its `items`.
    pub fn check_copies(&self, what: &str, bytes: usize, items: usize) -> Result<(), LimitError> {
        let total = bytes.saturating_mul(items);
        if total > self.max_copied_bytes {
            return Err(LimitError {
                path: what.to_string(),
                problem: format!(
                    "{bytes} bytes copied into each of its {items} items make {total} bytes; at most {} are \
                     accepted (--max-body-bytes): send fewer items per request",
                    self.max_copied_bytes
                ),
            });
        }
        Ok(())
    }

    /// An identifier that each item of a request gets a copy of.
    pub fn check_id(&self, what: &str, id: &str) -> Result<(), String> {
        if id.len() > MAX_ID_BYTES {
            return Err(format!(
                "{what} is {} bytes long; an identifier may have at most {MAX_ID_BYTES}",
                id.len()
            ));
        }
        Ok(())
    }

    /// A plain string field (a span's name, say).
    pub fn check_text(&self, what: &str, text: &str) -> Result<(), LimitError> {
        self.check_len(&[what], text.len())
    }

    fn check_kvlist<'a>(
        &self,
        path: &mut Vec<&'a str>,
        attrs: &'a [KeyValue],
        depth: usize,
    ) -> Result<(), LimitError> {
        if attrs.len() > self.max_attributes {
            return Err(LimitError {
                path: shown_path(path),
                problem: format!(
                    "{} attributes; at most {} are accepted (--max-attributes)",
                    attrs.len(),
                    self.max_attributes
                ),
            });
        }
        for kv in attrs {
            path.push(KEY);
            self.check_len(path, kv.key.len())?;
            path.pop();
            if let Some(v) = &kv.value {
                path.push(&kv.key);
                self.check_any(path, v, depth)?;
                path.pop();
            }
        }
        Ok(())
    }

    fn check_any<'a>(
        &self,
        path: &mut Vec<&'a str>,
        value: &'a AnyValue,
        depth: usize,
    ) -> Result<(), LimitError> {
        match &value.value {
            Some(any_value::Value::StringValue(s)) => self.check_len(path, s.len()),
            Some(any_value::Value::BytesValue(b)) => self.check_len(path, b.len()),
            Some(any_value::Value::ArrayValue(a)) => {
                self.check_depth(path, depth + 1)?;
                a.values
                    .iter()
                    .try_for_each(|v| self.check_any(path, v, depth + 1))
            }
            Some(any_value::Value::KvlistValue(kv)) => {
                self.check_depth(path, depth + 1)?;
                self.check_kvlist(path, &kv.values, depth + 1)
            }
            _ => Ok(()),
        }
    }

    /// A hook payload: every string, the keys of every object, the nesting (the payload's object is level 1).
    pub fn check_json(&self, value: &Value) -> Result<(), LimitError> {
        let mut path = Vec::new();
        self.check_json_at(value, &mut path, 0)
    }

    fn check_json_at<'a>(
        &self,
        value: &'a Value,
        path: &mut Vec<&'a str>,
        depth: usize,
    ) -> Result<(), LimitError> {
        match value {
            Value::String(s) => self.check_len(path, s.len()),
            Value::Array(items) => {
                self.check_depth(path, depth + 1)?;
                // Array elements share their array's name in messages.
                items
                    .iter()
                    .try_for_each(|v| self.check_json_at(v, path, depth + 1))
            }
            Value::Object(map) => {
                if map.len() > self.max_attributes {
                    return Err(LimitError {
                        path: shown_path(path),
                        problem: format!(
                            "an object of {} keys; at most {} are accepted (--max-attributes)",
                            map.len(),
                            self.max_attributes
                        ),
                    });
                }
                self.check_depth(path, depth + 1)?;
                for (k, v) in map {
                    path.push(KEY);
                    self.check_len(path, k.len())?;
                    path.pop();
                    path.push(k);
                    self.check_json_at(v, path, depth + 1)?;
                    path.pop();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Only the length is compared on the way; the path is put together when a check fails.
    fn check_len(&self, path: &[&str], len: usize) -> Result<(), LimitError> {
        if len > self.max_attribute_bytes {
            return Err(LimitError {
                path: shown_path(path),
                problem: format!(
                    "a value of {len} bytes; at most {} are accepted (--max-attribute-bytes)",
                    self.max_attribute_bytes
                ),
            });
        }
        Ok(())
    }

    fn check_depth(&self, path: &[&str], depth: usize) -> Result<(), LimitError> {
        if depth > self.max_depth {
            return Err(LimitError {
                path: shown_path(path),
                problem: format!(
                    "nested more than {} levels deep (--max-depth)",
                    self.max_depth
                ),
            });
        }
        Ok(())
    }
}

/// The path segment that stands for "a key of the object before it" (`tool_input: a key`).
const KEY: &str = "\0key";

/// A path for a message: segments joined with dots, each cut to a few dozen bytes (keys are user data and may
/// be huge), the whole cut too.
fn shown_path(path: &[&str]) -> String {
    const SEGMENT: usize = 64;
    const WHOLE: usize = 512;
    let cut = |s: &str, max: usize| -> String {
        if s.len() <= max {
            return s.to_string();
        }
        let end = (0..=max)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &s[..end])
    };
    let mut out = String::new();
    for seg in path {
        if *seg == KEY {
            out.push_str(if out.is_empty() {
                "payload: a key"
            } else {
                ": a key"
            });
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&cut(seg, SEGMENT));
    }
    if out.is_empty() {
        out.push_str("payload");
    }
    cut(&out, WHOLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
    use serde_json::json;

    fn small() -> Limits {
        Limits {
            max_items: 3,
            max_attributes: 2,
            max_attribute_bytes: 5,
            max_depth: 3,
            max_copied_bytes: 100,
        }
    }

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn text(s: &str) -> any_value::Value {
        any_value::Value::StringValue(s.into())
    }

    #[test]
    fn item_count_names_the_figures_and_the_option() {
        assert!(small().check_items(3, "spans").is_ok());
        let e = small().check_items(4, "spans").unwrap_err();
        assert!(
            e.contains("4 spans")
                && e.contains("at most 3")
                && e.contains("--max-events-per-request")
        );
    }

    #[test]
    fn otlp_attributes_count_length_and_depth() {
        let l = small();
        assert!(
            l.check_attributes("attributes", &[kv("a", text("12345"))])
                .is_ok()
        );

        let e = l
            .check_attributes(
                "attributes",
                &[kv("a", text("1")), kv("b", text("2")), kv("c", text("3"))],
            )
            .unwrap_err();
        assert_eq!(e.path, "attributes");
        assert!(e.problem.contains("3 attributes") && e.problem.contains("--max-attributes"));

        let e = l
            .check_attributes("attributes", &[kv("tool", text("123456"))])
            .unwrap_err();
        assert_eq!(e.path, "attributes.tool");
        assert!(e.problem.contains("6 bytes") && e.problem.contains("--max-attribute-bytes"));

        let e = l
            .check_attributes("attributes", &[kv("toolong", text("1"))])
            .unwrap_err();
        assert_eq!(e.path, "attributes: a key");

        let nested = |inner: any_value::Value| {
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(inner) }],
            })
        };
        // Depth 3 (the list, one array, one array) passes; a third array is one level too many.
        assert!(
            l.check_attributes("a", &[kv("x", nested(nested(text("1"))))])
                .is_ok()
        );
        let e = l
            .check_attributes("a", &[kv("x", nested(nested(nested(text("1")))))])
            .unwrap_err();
        assert!(e.problem.contains("nested more than 3"), "{e}");

        let list = any_value::Value::KvlistValue(KeyValueList {
            values: vec![kv("p", text("1")), kv("q", text("1")), kv("r", text("1"))],
        });
        let e = l
            .check_attributes("attributes", &[kv("m", list)])
            .unwrap_err();
        assert_eq!(e.path, "attributes.m");
    }

    #[test]
    fn hook_json_names_the_path() {
        let l = small();
        assert!(l.check_json(&json!({"a": {"b": "12345"}})).is_ok());
        let e = l.check_json(&json!({"a": {"b": "123456"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.b: a value of 6 bytes; at most 5 are accepted (--max-attribute-bytes)"
        );
        let e = l
            .check_json(&json!({"a": {"x": 1, "y": 2, "z": 3}}))
            .unwrap_err();
        assert_eq!(e.path, "a");
        let e = l.check_json(&json!({"a": [[["deep"]]]})).unwrap_err();
        assert!(e.problem.contains("nested more than 3"), "{e}");
        let e = l.check_json(&json!({"keytoolong": 1})).unwrap_err();
        assert_eq!(e.path, "payload: a key");
        // Keys are user data: a message shows a few dozen bytes of each.
        let long_key = "k".repeat(4); // within the 5-byte key limit
        let e = l
            .check_json(&json!({ long_key: {"sub": "123456"} }))
            .unwrap_err();
        assert_eq!(e.path, "kkkk.sub");
        let wide = Limits {
            max_attribute_bytes: 10_000,
            ..l
        };
        let key = "x".repeat(5_000);
        let e = wide
            .check_json(&json!({ key: "y".repeat(10_001) }))
            .unwrap_err();
        assert_eq!(e.path, format!("{}...", "x".repeat(64)));
        // Long arrays are not attributes: only their contents are checked.
        assert!(
            l.check_json(&json!({"files": ["a", "b", "c", "d"]}))
                .is_ok()
        );
    }
}
