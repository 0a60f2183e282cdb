//! Where the events are stored: `--data-dir`, `--database-url` and the back-end's settings.

use std::path::PathBuf;

use clap::Args;

use super::ConfigError;
use super::secret::Secret;
use crate::store::{SqliteSync, StoreConfig};

/// `Debug` shows no database URL: it may hold a password ([`Secret`]).
#[derive(Args, Debug)]
#[command(next_help_heading = "Store")]
pub struct StoreArgs {
    /// Where hivewatch keeps its data (the SQLite database, unless --database-url says otherwise).
    #[arg(long, env = "HIVEWATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `postgres://user:password@host:port/database` selects Postgres; a `sqlite:` path or
    /// nothing means SQLite (in the data directory unless a path is given).
    #[arg(long, env = "HIVEWATCH_DATABASE_URL")]
    pub database_url: Option<Secret>,
    /// Postgres connections per process (the committer uses one at a time; the rest serve queries).
    #[arg(long, env = "HIVEWATCH_DATABASE_POOL_SIZE", default_value_t = 8)]
    pub database_pool_size: u32,
    /// SQLite durability: `full` fsyncs every commit (survives power loss), `normal` survives a process crash.
    #[arg(long, env = "HIVEWATCH_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteSync::Full)]
    pub sqlite_synchronous: SqliteSync,
}

impl StoreArgs {
    pub fn data_dir(&self) -> Result<PathBuf, ConfigError> {
        match &self.data_dir {
            Some(d) => Ok(d.clone()),
            None => dirs::data_dir()
                .map(|d| d.join("hivewatch"))
                .ok_or(ConfigError::NoDataDir),
        }
    }

    pub fn store_config(&self) -> Result<StoreConfig, ConfigError> {
        let path = match self
            .database_url
            .as_ref()
            .map(|u| u.0.as_str())
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => self.data_dir()?.join("hivewatch.db"),
            Some(url) => {
                if let Some(rest) = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                {
                    PathBuf::from(rest)
                } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    return Ok(StoreConfig::Postgres {
                        url: url.to_string(),
                        pool_size: self.database_pool_size.max(2),
                    });
                } else {
                    let scheme = url.split(':').next().unwrap_or_default();
                    return Err(ConfigError::UnsupportedDatabase(scheme.to_string()));
                }
            }
        };
        Ok(StoreConfig::Sqlite {
            path,
            synchronous: self.sqlite_synchronous,
        })
    }
}
