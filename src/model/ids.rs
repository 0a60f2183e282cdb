//! Typed identifiers and the deterministic id scheme of the event model.
//!
//! A session id is a UUID and doubles as the trace id of everything hivewatch assembles for that session.
//! Span ids of assembled spans are `H(tag, id)`: the first 8 bytes of SHA-256 over `"{tag}:{id}"`, so every
//! replica computes the same id for the same tool call, turn, subagent or session.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Namespace for mapping session ids that are not UUIDs onto UUIDv5.
const SESSION_NAMESPACE: Uuid = Uuid::from_u128(0x6869_7665_7761_7463_6800_0000_0000_0001);

/// A W3C trace id: 16 bytes, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// A W3C span id: 8 bytes, never all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

/// The problem with an id that came over the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field} must be {expected} bytes, got {got}")]
    Length {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{field} must not be all zeros")]
    Zero { field: &'static str },
    #[error("{field} is not valid hex")]
    Hex { field: &'static str },
}

impl TraceId {
    pub fn from_session(session: Uuid) -> Self {
        TraceId(*session.as_bytes())
    }

    /// Reads an OTLP trace id field: `Ok(None)` when the sender left it empty.
    pub fn from_wire(field: &'static str, bytes: &[u8]) -> Result<Option<Self>, IdError> {
        fixed_id::<16>(field, bytes).map(|o| o.map(TraceId))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn parse_hex(field: &'static str, s: &str) -> Result<Self, IdError> {
        let bytes = hex::decode(s).map_err(|_| IdError::Hex { field })?;
        fixed_id::<16>(field, &bytes)?
            .map(TraceId)
            .ok_or(IdError::Length {
                field,
                expected: 16,
                got: 0,
            })
    }
}

impl SpanId {
    /// `H(tag, id)`: the span id hivewatch assigns to an assembled span.
    pub fn derived(tag: &str, id: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(tag.as_bytes());
        hasher.update(b":");
        hasher.update(id.as_bytes());
        let digest = hasher.finalize();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        SpanId(out)
    }

    pub fn from_wire(field: &'static str, bytes: &[u8]) -> Result<Option<Self>, IdError> {
        fixed_id::<8>(field, bytes).map(|o| o.map(SpanId))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn parse_hex(field: &'static str, s: &str) -> Result<Self, IdError> {
        let bytes = hex::decode(s).map_err(|_| IdError::Hex { field })?;
        fixed_id::<8>(field, &bytes)?
            .map(SpanId)
            .ok_or(IdError::Length {
                field,
                expected: 8,
                got: 0,
            })
    }
}

fn fixed_id<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<Option<[u8; N]>, IdError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let arr: [u8; N] = bytes.try_into().map_err(|_| IdError::Length {
        field,
        expected: N,
        got: bytes.len(),
    })?;
    if arr.iter().all(|b| *b == 0) {
        return Err(IdError::Zero { field });
    }
    Ok(Some(arr))
}

/// Maps any session identifier onto a UUID: a UUID as is, anything else through UUIDv5.
pub fn session_uuid(raw: &str) -> Uuid {
    Uuid::parse_str(raw).unwrap_or_else(|_| Uuid::new_v5(&SESSION_NAMESPACE, raw.as_bytes()))
}

/// The idempotency key of an OTLP item: a UUID (version 8, "custom") whose first 48 bits are the item's time in
/// milliseconds and whose rest is SHA-256 of its content. The same item always gets the same id, and ids of items
/// close in time sort close together, which keeps the unique index cheap to insert into.
pub fn content_uuid(time_ms: u64, parts: &[&[u8]]) -> Uuid {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut buf = [0u8; 16];
    buf[..6].copy_from_slice(&time_ms.to_be_bytes()[2..]);
    buf[6..].copy_from_slice(&digest[..10]);
    Uuid::new_v8(buf)
}

macro_rules! hex_serde {
    ($ty:ident, $field:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.to_hex())
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $ty::parse_hex($field, &s).map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_serde!(TraceId, "trace_id");
hex_serde!(SpanId, "span_id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_span_ids_are_stable_and_tagged() {
        let a = SpanId::derived("tool", "toolu_1");
        assert_eq!(a, SpanId::derived("tool", "toolu_1"));
        assert_ne!(a, SpanId::derived("turn", "toolu_1"));
        // SHA-256("tool:toolu_1"), first 8 bytes: other implementations can reproduce it.
        let digest = Sha256::digest(b"tool:toolu_1");
        assert_eq!(a.0, digest[..8]);
    }

    #[test]
    fn wire_ids_are_checked() {
        assert_eq!(TraceId::from_wire("trace_id", &[]).unwrap(), None);
        assert!(matches!(
            TraceId::from_wire("trace_id", &[1; 5]),
            Err(IdError::Length {
                expected: 16,
                got: 5,
                ..
            })
        ));
        assert!(matches!(
            SpanId::from_wire("span_id", &[0; 8]),
            Err(IdError::Zero { .. })
        ));
        assert!(SpanId::from_wire("span_id", &[1; 8]).unwrap().is_some());
    }

    #[test]
    fn content_ids_are_deterministic_and_time_ordered() {
        let a = content_uuid(1_000, &[b"x"]);
        assert_eq!(a, content_uuid(1_000, &[b"x"]));
        assert_ne!(a, content_uuid(1_000, &[b"y"]));
        assert!(content_uuid(999, &[b"z"]) < a && a < content_uuid(1_001, &[b"a"]));
        assert_eq!(a.get_version_num(), 8);
    }

    #[test]
    fn non_uuid_sessions_map_deterministically() {
        let u = "0fbc6975-e498-4c0d-a2a2-497077c17a19";
        assert_eq!(session_uuid(u).to_string(), u);
        assert_eq!(session_uuid("my-session"), session_uuid("my-session"));
        assert_ne!(session_uuid("my-session"), session_uuid("other"));
    }
}
