//! Resolves the hook side's settings: the flag or `HIVEWATCH_*` variable (clap has merged those), then the
//! configuration file (`hook.json`), then the default.

use std::time::Duration;

use super::config::{self, DEFAULT_ENDPOINT, HookConfig};
use super::http::{Endpoint, Target};

pub struct Settings {
    pub endpoint_url: String,
    pub token: Option<String>,
    pub source_app: Option<String>,
}

impl Settings {
    pub fn resolve(
        endpoint: Option<String>,
        token: Option<String>,
        source_app: Option<String>,
    ) -> Settings {
        let file = HookConfig::load_from(&config::config_dir());
        Settings {
            endpoint_url: first_set(endpoint, file.endpoint)
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token: first_set(token, file.token),
            source_app: first_set(source_app, file.source_app),
        }
    }

    /// The receiver to deliver to; an endpoint this client cannot use (https, garbage) is an error message.
    pub fn target(&self, timeout: Duration) -> Result<Target, String> {
        Ok(Target {
            endpoint: Endpoint::parse(&self.endpoint_url)?,
            token: self.token.clone(),
            timeout,
        })
    }
}

/// An empty value counts as unset, as an empty variable does for clap.
fn first_set(preferred: Option<String>, fallback: Option<String>) -> Option<String> {
    let set = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    set(preferred).or_else(|| set(fallback))
}

/// Reads a numeric setting given as text; a bad value falls back to the default with one line on stderr,
/// because the hook must never fail on its configuration.
pub fn number_or(command: &str, name: &str, value: Option<&str>, default: u64, min: u64) -> u64 {
    let Some(text) = value.map(str::trim).filter(|s| !s.is_empty()) else {
        return default;
    };
    match text.replace('_', "").parse::<u64>() {
        Ok(n) => n.max(min),
        Err(_) => {
            say!("hivewatch {command}: {name} {text:?} is not a number; using {default}");
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_non_empty_wins() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(first_set(s("a"), s("b")), s("a"));
        assert_eq!(first_set(s(" "), s("b")), s("b"));
        assert_eq!(first_set(None, None), None);
    }

    #[test]
    fn numbers_fall_back() {
        assert_eq!(number_or("hook", "--timeout-ms", Some("100"), 250, 1), 100);
        assert_eq!(number_or("hook", "--timeout-ms", Some("0"), 250, 1), 1);
        assert_eq!(number_or("hook", "--timeout-ms", Some("soon"), 250, 1), 250);
        assert_eq!(number_or("hook", "--timeout-ms", None, 250, 1), 250);
    }
}
