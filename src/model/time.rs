//! Times as the stores keep them: microseconds since the Unix epoch (UTC).

use chrono::{DateTime, TimeZone, Utc};

pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}
