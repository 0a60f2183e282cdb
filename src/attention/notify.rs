//! Sending notifications: rows the store persisted (see `store::notifications`) are leased, POSTed to their
//! target, and marked sent on a 2xx answer; anything else is retried with exponential backoff (1 s doubling to
//! 10 min), for as long as it takes. The sender is its own task with its own HTTP client and a timeout per
//! attempt: a target that is down or slow delays other notifications at most, never ingest.
//!
//! Each POST carries `X-Hivewatch-Delivery` (the same for every attempt of one notification: delivery is at least
//! once, receivers may see a retry after a lost answer) and, with `--notify-secret`, `X-Hivewatch-Signature:
//! sha256=<hex HMAC-SHA256 of the body>`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::KeyValue;
use sha2::Sha256;

use crate::metrics::Instruments;
use crate::model::notification::slack_body;
use crate::store::Store;
use crate::store::notifications::{Attempt, PendingNotification};

/// Notifications sent at once, at most, per pass.
const BATCH: i64 = 20;
/// How long one attempt may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a leased notification is this sender's; another takes it over after (this one died mid-send).
const LEASE: Duration = Duration::from_secs(60);
/// How often due notifications are looked for when nothing wakes the sender.
const POLL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

pub const SIGNATURE_HEADER: &str = "x-hivewatch-signature";
pub const DELIVERY_HEADER: &str = "x-hivewatch-delivery";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NotifyFormat {
    /// hivewatch's own document (docs/NOTIFICATIONS.md).
    Json,
    /// `{"text": …}`, as Slack and Mattermost incoming webhooks take it.
    Slack,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct Notifier {
    store: Store,
    format: NotifyFormat,
    secret: Option<String>,
    /// The target URLs this process sends to.
    targets: Vec<String>,
    client: HttpsClient,
    instruments: Arc<Instruments>,
    wake: Arc<tokio::sync::Notify>,
}

impl Notifier {
    pub fn new(
        store: Store,
        format: NotifyFormat,
        secret: Option<String>,
        targets: Vec<String>,
        instruments: Arc<Instruments>,
        wake: Arc<tokio::sync::Notify>,
    ) -> anyhow::Result<Notifier> {
        // ring builds with a plain C compiler; its lack of post-quantum key exchange (the deprecation) does not
        // matter for a webhook POST.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .context("cannot load the system's root certificates for HTTPS notifications")?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Notifier {
            store,
            format,
            secret,
            targets,
            client,
            instruments,
            wake,
        })
    }

    /// Sends what is due whenever woken, and at least every second, until aborted.
    pub async fn run(self) {
        loop {
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
            self.deliver_due().await;
        }
    }

    /// One pass: leases what is due, sends it all at once, records each outcome. Returns how many were sent.
    pub async fn deliver_due(&self) -> usize {
        let leased = match self
            .store
            .lease_notifications(chrono::Utc::now(), LEASE, BATCH, self.targets.clone())
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due notifications; trying again shortly");
                return 0;
            }
        };
        let results = futures_util::future::join_all(leased.iter().map(|n| self.attempt(n))).await;
        let sent = results.iter().filter(|ok| **ok).count();
        if let Ok(n) = self.store.notifications_pending().await {
            self.instruments
                .notifications_pending
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
        sent
    }

    async fn attempt(&self, n: &PendingNotification) -> bool {
        let kind = [KeyValue::new("kind", n.kind.clone())];
        let outcome = match self.send(n).await {
            Ok(()) => {
                self.instruments.notifications_sent.add(1, &kind);
                tracing::info!(session = %n.session_id, kind = %n.kind, target = %describe_target(&n.target), "notification sent");
                Attempt::Sent
            }
            Err(error) => {
                self.instruments.notifications_failed.add(1, &kind);
                let wait = backoff(n.attempts);
                tracing::warn!(session = %n.session_id, kind = %n.kind, target = %describe_target(&n.target),
                    %error, retry_in = ?wait, "notification not accepted; will retry");
                Attempt::Failed {
                    error,
                    retry_at: chrono::Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
                }
            }
        };
        let sent = outcome == Attempt::Sent;
        if let Err(e) = self
            .store
            .record_attempt(n.id, chrono::Utc::now(), outcome)
            .await
        {
            // Not recorded: the lease runs out and the notification is sent again (at least once).
            tracing::warn!(error = %e, "cannot record a notification attempt");
        }
        sent
    }

    async fn send(&self, n: &PendingNotification) -> Result<(), String> {
        let body = match self.format {
            NotifyFormat::Json => n.body.clone(),
            NotifyFormat::Slack => {
                let doc = serde_json::from_str(&n.body).unwrap_or_default();
                slack_body(&doc).to_string()
            }
        };
        let mut request = http::Request::post(n.target.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("hivewatch/", env!("CARGO_PKG_VERSION")),
            )
            .header(DELIVERY_HEADER, n.id.to_string());
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, body.as_bytes()));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad target URL: {}", strip_urls(&e.to_string())))?;
        let answer = tokio::time::timeout(ATTEMPT_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| format!("no answer in {ATTEMPT_TIMEOUT:?}"))?
            .map_err(|e| describe_error(&e))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before the next attempt after `attempts` failed ones: 1 s, 2 s, 4 s, … up to 10 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let secs = 1u64
        .checked_shl(attempts.clamp(0, 30) as u32)
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// A target as logs may show it: scheme, host and port (the path of a webhook URL is its secret).
pub fn describe_target(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme_str().unwrap_or("?"),
            u.host().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(unparseable URL)".into(),
    }
}

/// An HTTP client error with its causes, without any URL it might print (which may hold a webhook's secret).
fn describe_error(e: &hyper_util::client::legacy::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        detail = c.to_string();
        cause = c.source();
    }
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {}", strip_urls(&detail))
    }
}

/// Text with every `scheme://…` run cut to its scheme and host.
fn strip_urls(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            if w.contains("://") {
                describe_target(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(
            [0, 1, 3, 9, 10, 50].map(|a| backoff(a).as_secs()),
            [1, 2, 8, 512, 600, 600]
        );
    }

    #[test]
    fn a_target_is_shown_without_its_path() {
        assert_eq!(
            describe_target("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            describe_target("http://127.0.0.1:9000/hook"),
            "http://127.0.0.1:9000/…"
        );
    }
}
