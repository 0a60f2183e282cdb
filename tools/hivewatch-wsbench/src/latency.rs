//! Delivery latency, recorded by thousands of clients at once: one histogram per (phase, shard), each client
//! writing to its own shard so that locks are rarely contended. The measured events are split by sequence
//! number into `PHASES` equal phases (quarters of the run): a p99 that grows from one to the next means a queue
//! that keeps growing, not a steady state.

use std::sync::Mutex;

use hdrhistogram::Histogram;

pub const PHASES: usize = 4;
const SHARDS: usize = 16;
/// Values are microseconds, 1 µs .. 1 h, 3 significant digits.
const MAX_MICROS: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

pub struct Latency {
    /// Events before this sequence number are warm-up: delivered and counted, not timed.
    warmup_events: u64,
    measured_events: u64,
    cells: Vec<Mutex<Histogram<u64>>>,
}

impl Latency {
    pub fn new(warmup_events: u64, measured_events: u64) -> Latency {
        Latency {
            warmup_events,
            measured_events: measured_events.max(1),
            cells: (0..PHASES * SHARDS)
                .map(|_| Mutex::new(histogram()))
                .collect(),
        }
    }

    /// The phase of event `seq`, `None` for a warm-up event.
    pub fn phase(&self, seq: u64) -> Option<usize> {
        let n = seq.checked_sub(self.warmup_events)?;
        Some(((n as u128 * PHASES as u128 / self.measured_events as u128) as usize).min(PHASES - 1))
    }

    /// Records that client `client` received event `seq` `micros` after it was sent.
    pub fn record(&self, client: usize, seq: u64, micros: u64) {
        let Some(phase) = self.phase(seq) else {
            return;
        };
        let cell = &self.cells[phase * SHARDS + client % SHARDS];
        let mut h = cell.lock().unwrap_or_else(|p| p.into_inner());
        h.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// All phases together, and each phase alone.
    pub fn merged(&self) -> (Histogram<u64>, Vec<Histogram<u64>>) {
        let mut all = histogram();
        let mut phases = Vec::with_capacity(PHASES);
        for phase in self.cells.chunks(SHARDS) {
            let mut h = histogram();
            for cell in phase {
                let cell = cell.lock().unwrap_or_else(|p| p.into_inner());
                h.add(&*cell).expect("same bounds");
            }
            all.add(&h).expect("same bounds");
            phases.push(h);
        }
        (all, phases)
    }
}

/// A histogram of microseconds as `{count, p50_ms, p90_ms, p99_ms, p999_ms, max_ms}`.
pub fn summary(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |q: f64| {
        if h.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(round3(h.value_at_quantile(q) as f64 / 1000.0))
        }
    };
    serde_json::json!({
        "count": h.len(),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": if h.is_empty() { serde_json::Value::Null } else { serde_json::json!(round3(h.max() as f64 / 1000.0)) },
    })
}

pub fn p99_ms(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| round3(h.value_at_quantile(0.99) as f64 / 1000.0))
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_not_timed_and_phases_split_the_rest() {
        let l = Latency::new(100, 400);
        assert_eq!(l.phase(99), None);
        assert_eq!(l.phase(100), Some(0));
        assert_eq!(l.phase(199), Some(0));
        assert_eq!(l.phase(200), Some(1));
        assert_eq!(l.phase(499), Some(3));
        // Past the plan (should not happen) still lands in the last phase.
        assert_eq!(l.phase(10_000), Some(3));

        l.record(0, 50, 1_000);
        l.record(1, 150, 2_000);
        l.record(17, 450, 40_000);
        let (all, phases) = l.merged();
        assert_eq!(all.len(), 2);
        assert_eq!(phases[0].len(), 1);
        assert_eq!(phases[3].len(), 1);
        assert_eq!(p99_ms(&phases[1]), None);
        let s = summary(&all);
        assert_eq!(s["count"], 2);
        assert!((s["max_ms"].as_f64().unwrap() - 40.0).abs() < 0.1);
    }
}
