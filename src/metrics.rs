//! `/metrics`: hivewatch's OpenTelemetry meters exported to a Prometheus registry, in the Prometheus text format.
//!
//! Instruments read state the rest of the program keeps anyway (atomics of the stream publisher), through
//! observable callbacks at scrape time: nothing per event on the ingest path.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

use crate::stream::StreamStatus;

#[derive(Clone)]
pub struct Metrics {
    registry: prometheus::Registry,
    // Keeps the instruments' callbacks registered.
    _provider: SdkMeterProvider,
}

impl Metrics {
    pub fn new(stream: Option<Arc<StreamStatus>>) -> anyhow::Result<Metrics> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .without_target_info()
            .build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("hivewatch");
        if let Some(s) = stream {
            let status = s.clone();
            meter
                .u64_observable_gauge("hivewatch_stream_behind")
                .with_description(
                    "1 while the Redis stream is behind the store (Redis failing, or the outbox being drained)",
                )
                .with_callback(move |o| o.observe(status.behind.load(Ordering::Acquire) as u64, &[]))
                .build();
            let status = s.clone();
            meter
                .i64_observable_gauge("hivewatch_outbox_pending_events")
                .with_description("Committed events not yet on the Redis stream, as last counted")
                .with_callback(move |o| o.observe(status.backlog.load(Ordering::Acquire), &[]))
                .build();
            let status = s.clone();
            meter
                .u64_observable_counter("hivewatch_stream_published_events")
                .with_description("Events added to the Redis stream")
                .with_callback(move |o| o.observe(status.published.load(Ordering::Relaxed), &[]))
                .build();
            let status = s;
            meter
                .u64_observable_counter("hivewatch_stream_errors")
                .with_description("Failed attempts to publish to the Redis stream")
                .with_callback(move |o| o.observe(status.errors.load(Ordering::Relaxed), &[]))
                .build();
        }
        Ok(Metrics {
            registry,
            _provider: provider,
        })
    }

    /// The current values in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families; a failure leaves what was written.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
