//! `hivewatch flush`: delivers the spool, then the pending transcripts, under the flush lock.
//!
//! The lock is `flush.lock` in the state directory, held with `File::lock` (an `flock`, released by the
//! kernel when the process dies, so a killed flush never leaves it stuck). Only one flush delivers at a time,
//! so no spooled event or transcript line is ever in flight twice. A background flush (started by the hook)
//! gives up at once when another one holds the lock; a flush run by hand waits for it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::FlushArgs;
use super::config;
use super::files;
use super::hook::EVENT_PATH;
use super::http::{Outcome, Target};
use super::settings::Settings;
use super::spool::{Entry, Spool, Usage};
use super::transcripts::Transcripts;

const BATCH_EVENTS: usize = 500;
/// Half the receiver's default body limit.
const BATCH_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Default)]
struct Report {
    events: usize,
    entries: usize,
    left: usize,
}

pub fn run(args: FlushArgs) -> ExitCode {
    let settings = Settings::resolve(args.endpoint, args.token, None);
    let state_dir = config::state_dir();
    let _lock = match acquire_lock(&state_dir, !args.background) {
        Ok(Lock::Held(file)) => file,
        Ok(Lock::Busy) => return ExitCode::SUCCESS,
        Ok(Lock::NoState) => {
            if !args.background {
                say!("flushed 0 events, 0 transcript entries; 0 left");
            }
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            say!(
                "hivewatch flush: cannot lock {}: {e}",
                state_dir.join("flush.lock").display()
            );
            return ExitCode::FAILURE;
        }
    };
    let report = match settings.target(Duration::from_millis(args.timeout_ms.max(1))) {
        Ok(target) => deliver_all(&state_dir, &target),
        Err(problem) => {
            say!("hivewatch flush: {problem}");
            Report {
                left: Spool::in_state_dir(&state_dir).count().events as usize
                    + Transcripts::in_state_dir(&state_dir).pending_count(),
                ..Report::default()
            }
        }
    };
    if !args.background {
        say!(
            "flushed {} events, {} transcript entries; {} left",
            report.events,
            report.entries,
            report.left
        );
    }
    if report.left == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

enum Lock {
    /// Ours until the file is closed.
    Held(File),
    /// Another flush holds it and we were asked not to wait.
    Busy,
    /// No state directory: no hook ever ran, or it was removed under a background flush; nothing to do.
    NoState,
}

fn acquire_lock(state_dir: &Path, wait: bool) -> io::Result<Lock> {
    // Not created here: a background flush must not bring back a state directory someone just removed.
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir.join("flush.lock"))
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Lock::NoState),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Lock::Held(file)),
        Err(TryLockError::WouldBlock) if wait => {
            say!("hivewatch flush: another flush is running; waiting for it");
            file.lock()?;
            Ok(Lock::Held(file))
        }
        Err(TryLockError::WouldBlock) => Ok(Lock::Busy),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

fn deliver_all(state_dir: &Path, target: &Target) -> Report {
    let spool = Spool::in_state_dir(state_dir);
    let transcripts = Transcripts::in_state_dir(state_dir);
    let (events, left) = flush_spool(&spool, target);
    if left > 0 {
        // The receiver just failed: do not spend another timeout per transcript on it.
        return Report {
            events,
            entries: 0,
            left: left + transcripts.pending_count(),
        };
    }
    let shipped = transcripts.ship_all(target);
    Report {
        events,
        entries: shipped.entries,
        left: shipped.left,
    }
}

/// Delivers the spool oldest first, in batches; returns (delivered, left). Stops at the first failure.
fn flush_spool(spool: &Spool, target: &Target) -> (usize, usize) {
    files::remove_stale_temp_files(spool.dir(), Duration::from_secs(3600));
    if let Err(e) = spool.recount() {
        say!("hivewatch flush: cannot recount the spool: {e}");
    }
    let entries = match spool.entries() {
        Ok(entries) => entries,
        Err(e) => {
            say!(
                "hivewatch flush: cannot read the spool {}: {e}",
                spool.dir().display()
            );
            return (0, 1);
        }
    };
    let mut delivered = 0;
    let mut rest = entries.as_slice();
    while !rest.is_empty() {
        let n = batch_len(rest);
        match send_batch(spool, &rest[..n], target) {
            Ok(count) => delivered += count,
            Err(why) => {
                say!("hivewatch flush: spooled events not delivered: {why}");
                return (delivered, rest.len());
            }
        }
        rest = &rest[n..];
    }
    (delivered, 0)
}

/// How many of the next entries go in one request: at least one, at most the count and size bounds.
fn batch_len(entries: &[Entry]) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for e in entries.iter().take(BATCH_EVENTS) {
        if n > 0 && bytes + e.len > BATCH_BYTES {
            break;
        }
        bytes += e.len;
        n += 1;
    }
    n
}

/// Sends spooled events as one JSON array and removes their files once the receiver has them. Returns how
/// many were delivered, or why none could be.
fn send_batch(spool: &Spool, batch: &[Entry], target: &Target) -> Result<usize, String> {
    let (items, read) = read_items(spool, batch);
    if items.is_empty() {
        return Ok(0);
    }
    match target.post_json(EVENT_PATH, &json_array(&items)) {
        Outcome::Delivered => {
            remove(spool, &read);
            Ok(items.len())
        }
        // Too large as a batch: one by one, so that only an event too large on its own is dropped.
        Outcome::Rejected(413) if batch.len() > 1 => batch
            .iter()
            .map(|e| send_batch(spool, std::slice::from_ref(e), target))
            .sum(),
        Outcome::Rejected(code) => {
            say!(
                "hivewatch flush: the receiver refused {} spooled events (HTTP {code}); removed",
                items.len()
            );
            remove(spool, &read);
            Ok(0)
        }
        Outcome::Retry(why) => Err(why),
    }
}

/// The spooled events' bytes; a file that is not a JSON object is removed (it can only be damage).
fn read_items<'a>(spool: &Spool, batch: &'a [Entry]) -> (Vec<Vec<u8>>, Vec<&'a Entry>) {
    let mut items = Vec::with_capacity(batch.len());
    let mut read = Vec::with_capacity(batch.len());
    for entry in batch {
        match fs::read(&entry.path) {
            Ok(bytes) if is_json_object(&bytes) => {
                items.push(bytes);
                read.push(entry);
            }
            Ok(_) => {
                say!(
                    "hivewatch flush: {} is not a spooled event; removed",
                    entry.path.display()
                );
                remove(spool, &[entry]);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => say!("hivewatch flush: cannot read {}: {e}", entry.path.display()),
        }
    }
    (items, read)
}

fn is_json_object(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

fn json_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item);
    }
    body.push(b']');
    body
}

/// Removes spooled events and takes them off the spool's running total.
fn remove(spool: &Spool, entries: &[&Entry]) {
    let mut removed = Usage::default();
    for e in entries {
        if fs::remove_file(&e.path).is_ok() {
            removed.events += 1;
            removed.bytes += e.len;
        }
    }
    if let Err(e) = spool.forget(removed) {
        say!("hivewatch flush: cannot update the spool's size: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(len: u64) -> Entry {
        Entry {
            path: "/x".into(),
            len,
        }
    }

    #[test]
    fn batches_respect_both_bounds() {
        let small: Vec<Entry> = (0..BATCH_EVENTS + 5).map(|_| entry(10)).collect();
        assert_eq!(batch_len(&small), BATCH_EVENTS);
        let big = vec![entry(BATCH_BYTES), entry(1)];
        assert_eq!(batch_len(&big), 1);
        let huge = vec![entry(BATCH_BYTES * 3)];
        assert_eq!(batch_len(&huge), 1);
    }

    #[test]
    fn arrays_join_raw_items() {
        assert_eq!(
            json_array(&[b"{}".to_vec(), b"{\"a\":1}".to_vec()]),
            b"[{},{\"a\":1}]"
        );
        assert!(is_json_object(b"{\"a\":1}"));
        assert!(!is_json_object(b"{\"a\":"));
        assert!(!is_json_object(b"[]"));
    }
}
