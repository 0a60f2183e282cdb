//! Where the hook side keeps its state and configuration, and the configuration file `install-hooks` writes.
//!
//! Precedence for every setting: command-line flag, then `HIVEWATCH_*` variable, then the file, then the default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318";
pub const CONFIG_FILE: &str = "hook.json";

/// `$HIVEWATCH_STATE_DIR`, else the user's state directory (`~/.local/state/hivewatch`): spool, locks, offsets.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HIVEWATCH_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("hivewatch")
}

/// `$HIVEWATCH_CONFIG_DIR`, else the user's configuration directory (`~/.config/hivewatch`).
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HIVEWATCH_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    dirs::config_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("hivewatch")
}

/// The hook side's configuration file (`hook.json` in the configuration directory).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Bearer token for ingest; kept out of settings.json, which is often committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_app: Option<String>,
}

impl std::fmt::Debug for HookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookConfig")
            .field("endpoint", &self.endpoint)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("source_app", &self.source_app)
            .finish()
    }
}

impl HookConfig {
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(CONFIG_FILE)
    }

    /// Reads the file; a missing or unreadable file is an empty configuration (the hook must never fail).
    pub fn load_from(dir: &Path) -> HookConfig {
        std::fs::read(Self::path_in(dir))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn save_to(&self, dir: &Path) -> std::io::Result<PathBuf> {
        use std::io::Write;
        std::fs::create_dir_all(dir)?;
        let path = Self::path_in(dir);
        // A name of this process's own, created private from the start: the file may hold a token.
        let tmp = dir.join(format!(".{CONFIG_FILE}.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(self).expect("a config serializes"))?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}
