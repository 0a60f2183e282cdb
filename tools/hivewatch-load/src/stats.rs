//! Per-sender counters and latency histograms, merged into one report.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

/// Distinct error messages kept per sender and in the report.
const MAX_DISTINCT_ERRORS: usize = 8;
/// Distinct error messages printed at the end.
const PRINTED_ERRORS: usize = 5;
/// Histogram range: 1 µs .. 1 h, 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

pub struct WorkerStats {
    pub requests_ok: u64,
    pub requests_err: u64,
    /// Events in 2xx answers, minus those the receiver reported rejected.
    pub events_ok: u64,
    /// Events the receiver reported rejected through OTLP partial success.
    pub events_rejected: u64,
    /// Open loop: requests whose slot came due while their sender was still
    /// waiting for the previous answer.
    pub late_sends: u64,
    /// Ack latency of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Distinct error messages in first-seen order, with counts.
    pub errors: Vec<(String, u64)>,
    /// Errors whose message did not fit in `errors`.
    pub errors_other: u64,
}

impl WorkerStats {
    pub fn new() -> Self {
        Self {
            requests_ok: 0,
            requests_err: 0,
            events_ok: 0,
            events_rejected: 0,
            late_sends: 0,
            latency_us: Histogram::new_with_bounds(1, HIST_MAX_US, 3)
                .expect("static histogram bounds are valid"),
            errors: Vec::new(),
            errors_other: 0,
        }
    }

    pub fn ok(&mut self, latency: Duration, events: u64, rejected: u64) {
        self.requests_ok += 1;
        let rejected = rejected.min(events);
        self.events_ok += events - rejected;
        self.events_rejected += rejected;
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
    }

    pub fn err(&mut self, message: String) {
        self.requests_err += 1;
        self.note_error(message, 1);
    }

    fn note_error(&mut self, message: String, count: u64) {
        if let Some(e) = self.errors.iter_mut().find(|(m, _)| *m == message) {
            e.1 += count;
        } else if self.errors.len() < MAX_DISTINCT_ERRORS {
            self.errors.push((message, count));
        } else {
            self.errors_other += count;
        }
    }

    pub fn merge(&mut self, other: WorkerStats) {
        self.requests_ok += other.requests_ok;
        self.requests_err += other.requests_err;
        self.events_ok += other.events_ok;
        self.events_rejected += other.events_rejected;
        self.late_sends += other.late_sends;
        self.errors_other += other.errors_other;
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        for (m, c) in other.errors {
            self.note_error(m, c);
        }
    }
}

pub struct Report {
    pub protocol: &'static str,
    pub signal: &'static str,
    pub encoding: &'static str,
    pub endpoint: String,
    pub concurrency: usize,
    pub batch: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub rate: Option<f64>,
    pub stats: WorkerStats,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub struct Latencies {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Report {
    pub fn req_per_s(&self) -> f64 {
        self.stats.requests_ok as f64 / self.duration_s
    }

    pub fn events_per_s(&self) -> f64 {
        self.stats.events_ok as f64 / self.duration_s
    }

    /// Latency percentiles in milliseconds; None without a successful request.
    pub fn latencies(&self) -> Option<Latencies> {
        let h = &self.stats.latency_us;
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Some(Latencies {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }

    pub fn json(&self) -> serde_json::Value {
        let latency = match self.latencies() {
            Some(l) => json!({
                "p50": l.p50, "p90": l.p90, "p99": l.p99, "p999": l.p999, "max": l.max,
            }),
            None => json!({
                "p50": null, "p90": null, "p99": null, "p999": null, "max": null,
            }),
        };
        let s = &self.stats;
        json!({
            "protocol": self.protocol,
            "signal": self.signal,
            "encoding": self.encoding,
            "concurrency": self.concurrency,
            "batch": self.batch,
            "duration_s": self.duration_s,
            "requests_ok": s.requests_ok,
            "requests_err": s.requests_err,
            "events_ok": s.events_ok,
            "req_per_s": round1(self.req_per_s()),
            "events_per_s": round1(self.events_per_s()),
            "latency_ms": latency,
            "rate": self.rate,
            "events_rejected": s.events_rejected,
            "late_sends": s.late_sends,
            "endpoint": self.endpoint,
        })
    }

    pub fn print(&self) {
        let s = &self.stats;
        let mode = match self.rate {
            Some(r) => format!("open loop, {r} events/s offered"),
            None => "closed loop".to_owned(),
        };
        println!(
            "hivewatch-load  {} {} ({}) -> {}",
            self.protocol, self.signal, self.encoding, self.endpoint
        );
        println!(
            "  mode        {mode}, concurrency {}, batch {}, {} s measured after {} s warmup",
            self.concurrency, self.batch, self.duration_s, self.warmup_s
        );
        println!("  requests    ok {}  err {}", s.requests_ok, s.requests_err);
        println!(
            "  events      ok {}  rejected {}",
            s.events_ok, s.events_rejected
        );
        println!(
            "  throughput  {:.1} req/s  {:.1} events/s",
            self.req_per_s(),
            self.events_per_s()
        );
        match self.latencies() {
            Some(l) => println!(
                "  latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                l.p50, l.p90, l.p99, l.p999, l.max
            ),
            None => println!("  latency ms  n/a (no successful request)"),
        }
        if self.rate.is_some() && s.late_sends > 0 {
            println!(
                "  late sends  {} requests were due while their sender was still busy (raise --concurrency to offer the full rate)",
                s.late_sends
            );
        }
        if !s.errors.is_empty() {
            println!("  errors (first {} distinct):", PRINTED_ERRORS);
            for (m, c) in s.errors.iter().take(PRINTED_ERRORS) {
                println!("    {c:>8} x {m}");
            }
            let hidden: u64 = s
                .errors
                .iter()
                .skip(PRINTED_ERRORS)
                .map(|(_, c)| c)
                .sum::<u64>()
                + s.errors_other;
            if hidden > 0 {
                println!("    {hidden:>8} x (other messages)");
            }
        }
        println!("RESULT {}", self.json());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_percentiles() {
        let mut a = WorkerStats::new();
        let mut b = WorkerStats::new();
        for i in 1..=1000u64 {
            a.ok(Duration::from_micros(i * 10), 10, 0);
        }
        b.ok(Duration::from_millis(50), 10, 2);
        b.err("HTTP 503".into());
        b.err("HTTP 503".into());
        a.err("boom".into());
        a.merge(b);
        assert_eq!(a.requests_ok, 1001);
        assert_eq!(a.requests_err, 3);
        assert_eq!(a.events_ok, 10_008);
        assert_eq!(a.events_rejected, 2);
        assert_eq!(
            a.errors,
            vec![("boom".to_owned(), 1), ("HTTP 503".to_owned(), 2)]
        );
        let r = Report {
            protocol: "http",
            signal: "logs",
            encoding: "protobuf",
            endpoint: "x".into(),
            concurrency: 1,
            batch: 10,
            duration_s: 2.0,
            warmup_s: 0.0,
            rate: None,
            stats: a,
        };
        let l = r.latencies().unwrap();
        assert!((l.p50 - 5.01).abs() < 0.01, "{}", l.p50);
        assert!((l.max - 50.0).abs() < 0.05, "{}", l.max);
        let j = r.json();
        assert_eq!(j["events_ok"], 10_008);
        assert_eq!(j["req_per_s"], 500.5);
    }
}
