//! The spool: events `hivewatch hook` could not deliver, kept under the state directory until
//! `hivewatch flush` delivers them.
//!
//! One file per event, `spool/<event id>.json`, holding exactly the JSON object the hook tried to send.
//! Many hook processes append at once, so each writes its own file (a temporary dot-name, then a rename):
//! no two writers ever touch the same file and no reader ever sees half an event. Event ids are UUIDv7, so
//! name order is time order, and flush delivers in name order. The receiver stores each event id once, so a
//! file delivered but not yet deleted when a flush dies is harmless.
//!
//! The size bound needs the spool's size, and summing a large spool (thousands of files) would cost the hook
//! more than its whole time budget. So the spool keeps a running total in `spool/.usage`, changed only under
//! `spool/.lock` (held for microseconds): an append checks and adds, a flush subtracts what it removed and,
//! at its start, recounts the files, which repairs the total after a process died between writing an event
//! and counting it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::files;

pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
const SUFFIX: &str = ".json";
/// Dot names: listings of the spool skip them.
const LOCK_FILE: &str = ".lock";
const USAGE_FILE: &str = ".usage";
/// How long a hook waits for the spool lock before it writes its event uncounted.
const APPEND_LOCK_WAIT: Duration = Duration::from_millis(20);

pub struct Spool {
    dir: PathBuf,
}

/// One spooled event.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub len: u64,
}

/// How much the spool holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub events: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({used} bytes of {max}; see HIVEWATCH_SPOOL_MAX_BYTES)")]
    Full { used: u64, max: u64 },
    #[error("cannot write to the spool in {0}: {1}")]
    Io(PathBuf, #[source] io::Error),
}

impl Spool {
    pub fn in_state_dir(state_dir: &Path) -> Spool {
        Spool {
            dir: state_dir.join("spool"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps one event (its whole delivery object) unless the spool already holds `max_bytes`.
    pub fn append(&self, event_id: Uuid, bytes: &[u8], max_bytes: u64) -> Result<(), SpoolError> {
        let io_err = |e| SpoolError::Io(self.dir.clone(), e);
        files::create_private_dir(&self.dir).map_err(io_err)?;
        // The hook must not wait on a flush that holds the lock (recounting a large spool, or stopped by the
        // user): past a short wait it writes the event uncounted; the next flush's recount counts it.
        let lock = self.lock_within(APPEND_LOCK_WAIT).map_err(io_err)?;
        let used = self.recorded_usage().unwrap_or_else(|| self.count());
        let len = bytes.len() as u64;
        if used.bytes.saturating_add(len) > max_bytes {
            return Err(SpoolError::Full {
                used: used.bytes,
                max: max_bytes,
            });
        }
        files::write_atomically(&self.dir, &format!("{event_id}{SUFFIX}"), bytes)
            .map_err(io_err)?;
        if lock.is_none() {
            return Ok(());
        }
        self.record_usage(Usage {
            events: used.events.saturating_add(1),
            bytes: used.bytes.saturating_add(len),
        })
        .map_err(io_err)
    }

    /// After a flush removed events: takes them off the running total.
    pub fn forget(&self, removed: Usage) -> io::Result<()> {
        let _lock = self.lock()?;
        let used = self.recorded_usage().unwrap_or_else(|| self.count());
        self.record_usage(Usage {
            events: used.events.saturating_sub(removed.events),
            bytes: used.bytes.saturating_sub(removed.bytes),
        })
    }

    /// Sets the running total to what the files add up to.
    pub fn recount(&self) -> io::Result<Usage> {
        if !self.dir.exists() {
            return Ok(Usage::default());
        }
        // Listing and stat-ing a large spool takes a while: do it before taking the lock hooks append under.
        let usage = self.count();
        let _lock = self.lock()?;
        self.record_usage(usage)?;
        Ok(usage)
    }

    pub fn is_empty(&self) -> bool {
        !files::has_visible_file(&self.dir)
    }

    /// The spooled events, oldest first.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for name in files::visible_names(&self.dir)? {
            if !name.ends_with(SUFFIX) {
                continue;
            }
            let path = self.dir.join(name);
            // A file may vanish between listing and stat: skip it.
            if let Ok(meta) = fs::metadata(&path) {
                out.push(Entry {
                    path,
                    len: meta.len(),
                });
            }
        }
        Ok(out)
    }

    /// What the files add up to: a scan, for flush and doctor, not for the hook.
    pub fn count(&self) -> Usage {
        let entries = self.entries().unwrap_or_default();
        Usage {
            events: entries.len() as u64,
            bytes: entries.iter().map(|e| e.len).sum(),
        }
    }

    fn lock(&self) -> io::Result<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))?;
        file.lock()?;
        Ok(file)
    }

    /// The lock, if it can be had within `wait`.
    fn lock_within(&self, wait: Duration) -> io::Result<Option<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
    }

    fn recorded_usage(&self) -> Option<Usage> {
        let bytes = fs::read(self.dir.join(USAGE_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn record_usage(&self, usage: Usage) -> io::Result<()> {
        let bytes = serde_json::to_vec(&usage).map_err(io::Error::other)?;
        files::write_atomically(&self.dir, USAGE_FILE, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_are_listed_in_id_order_and_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::in_state_dir(tmp.path());
        assert!(spool.is_empty());
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for id in ids.iter().rev() {
            spool.append(*id, b"{\"a\":1}", 1024).unwrap();
        }
        assert!(!spool.is_empty());
        let names: Vec<String> = spool
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        let want: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        assert_eq!(names, want);
        let three = Usage {
            events: 3,
            bytes: 21,
        };
        assert_eq!(spool.count(), three);
        assert_eq!(spool.recorded_usage(), Some(three));
        assert!(matches!(
            spool.append(Uuid::now_v7(), &[b' '; 1004], 1024),
            Err(SpoolError::Full { used: 21, .. })
        ));
    }

    #[test]
    fn the_running_total_follows_removals_and_recounts() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::in_state_dir(tmp.path());
        assert_eq!(spool.recount().unwrap(), Usage::default());
        for _ in 0..3 {
            spool.append(Uuid::now_v7(), b"{\"a\":1}", 1024).unwrap();
        }
        spool
            .forget(Usage {
                events: 1,
                bytes: 7,
            })
            .unwrap();
        let two = Usage {
            events: 2,
            bytes: 14,
        };
        assert_eq!(spool.recorded_usage(), Some(two));
        // No file was removed: the files are the truth.
        assert_eq!(spool.recount().unwrap().events, 3);
        assert_eq!(spool.recorded_usage().unwrap().events, 3);
    }
}
