//! Session states and notifications: when sessions count as abandoned or idle, and where people are told that a
//! session needs them.

use std::time::Duration;

use clap::Args;

use super::{ConfigError, Secret, parse_duration};
use crate::attention::notify::{NotifyFormat, describe_target};
use crate::store::SweepPolicy;
use crate::store::notifications::NotifyRules;

#[derive(Debug, Args)]
#[command(next_help_heading = "Session states and notifications")]
pub struct AttentionArgs {
    /// A session with no event for this long and no SessionEnd becomes `abandoned`.
    #[arg(long = "session-abandon-after", env = "HIVEWATCH_SESSION_ABANDON_AFTER", value_parser = parse_duration, default_value = "30m")]
    pub abandon_after: Duration,
    /// A session known from native telemetry only (no hooks, so no Stop) that was working and sent nothing for
    /// this long becomes `idle`.
    #[arg(long = "session-idle-after", env = "HIVEWATCH_SESSION_IDLE_AFTER", value_parser = parse_duration, default_value = "5m")]
    pub idle_after: Duration,
    /// How often timed state changes are applied and notifications queued (every replica may run it).
    #[arg(long = "session-sweep-interval", env = "HIVEWATCH_SESSION_SWEEP_INTERVAL", value_parser = parse_duration, default_value = "10s")]
    pub sweep_interval: Duration,
    /// Where notifications are POSTed (repeatable; comma-separated in the variable): a session waiting for a
    /// person longer than --notify-after, a failed one, and with --notify-finished an ended one.
    #[arg(
        long = "notify-url",
        env = "HIVEWATCH_NOTIFY_URL",
        value_delimiter = ','
    )]
    pub notify_urls: Vec<Secret>,
    /// The body: `json` (hivewatch's documented document) or `slack` (Slack and Mattermost incoming webhooks).
    #[arg(
        long = "notify-format",
        env = "HIVEWATCH_NOTIFY_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub notify_format: NotifyFormat,
    /// How long a session waits for a person before anyone is notified.
    #[arg(long = "notify-after", env = "HIVEWATCH_NOTIFY_AFTER", value_parser = parse_duration, default_value = "2m")]
    pub notify_after: Duration,
    /// Signs each body with HMAC-SHA256 under this secret, in the `X-Hivewatch-Signature: sha256=<hex>` header.
    #[arg(long = "notify-secret", env = "HIVEWATCH_NOTIFY_SECRET")]
    pub notify_secret: Option<Secret>,
    /// Also notify when a session ends (SessionEnd).
    #[arg(long = "notify-finished", env = "HIVEWATCH_NOTIFY_FINISHED")]
    pub notify_finished: bool,
}

impl AttentionArgs {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.abandon_after.is_zero()
            || self.idle_after.is_zero()
            || self.sweep_interval.is_zero()
        {
            return Err(ConfigError::Invalid(
                "--session-abandon-after, --session-idle-after and --session-sweep-interval must be longer \
                 than zero"
                    .into(),
            ));
        }
        for url in &self.notify_urls {
            let parsed: Result<http::Uri, _> = url.0.parse();
            let ok = parsed.as_ref().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            });
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "--notify-url {} is not an http:// or https:// URL",
                    describe_target(&url.0)
                )));
            }
        }
        Ok(())
    }

    /// The notification rules, when a target is configured.
    pub fn rules(&self) -> Option<NotifyRules> {
        (!self.notify_urls.is_empty()).then(|| NotifyRules {
            after: self.notify_after,
            finished: self.notify_finished,
            targets: self.notify_urls.iter().map(|u| u.0.clone()).collect(),
        })
    }

    pub fn policy(&self) -> SweepPolicy {
        SweepPolicy {
            abandon_after: self.abandon_after,
            idle_after: self.idle_after,
        }
    }
}
