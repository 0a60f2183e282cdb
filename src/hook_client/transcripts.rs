//! Transcript shipping: the hook notes which transcript files changed, `hivewatch flush` sends their new lines
//! to `POST /api/v1/observability/transcripts`.
//!
//! The hook must stay cheap, so on `Stop`, `SubagentStop`, `PreCompact` and `SessionEnd` it only writes a
//! small job file, `transcripts/pending/<key>-<uuid>.json` (`key` = a hash of the transcript's path; the
//! uuid makes every job its own file, so concurrent hooks never write the same file and a job written while a
//! flush runs is never lost: the flush deletes only the job files it read). The flush, which holds the flush
//! lock, keeps per transcript the byte offset after the last complete line it shipped
//! (`transcripts/shipped/<key>.json`) and advances it only after the receiver accepted the lines. A line still
//! being written (no newline yet) waits for the next flush. The receiver keeps each (session, entry uuid)
//! once, so a crash between delivery and the offset update costs a resend, not a duplicate.
//!
//! Claude Code may write a transcript's last lines after the hook ran, so a flush also looks again at the
//! transcripts it shipped within the last day and sends what they gained.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::files;
use super::http::{Outcome, Target};
use crate::model::redact::redact_json;

pub const PATH: &str = "/api/v1/observability/transcripts";
const CHUNK_ENTRIES: usize = 500;
/// Well under the receiver's default body limit (8 MiB), so that only a single huge line can be refused.
const CHUNK_BYTES: usize = 2 * 1024 * 1024;
const RESCAN_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A transcript file to ship, and whose lines they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub path: PathBuf,
    pub session_id: String,
    /// `main`, or the subagent's id.
    pub agent_id: String,
}

/// What the flush has shipped of one transcript.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    #[serde(flatten)]
    job: Job,
    /// Byte offset just after the last complete line shipped.
    offset: u64,
}

#[derive(Debug, Default)]
pub struct Shipped {
    pub entries: usize,
    /// Transcripts with lines the receiver did not take.
    pub left: usize,
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error("not found")]
    Missing,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Undelivered(String),
}

pub struct Transcripts {
    pending: PathBuf,
    shipped: PathBuf,
}

impl Transcripts {
    pub fn in_state_dir(state_dir: &Path) -> Transcripts {
        let dir = state_dir.join("transcripts");
        Transcripts {
            pending: dir.join("pending"),
            shipped: dir.join("shipped"),
        }
    }

    /// The hook's part: note that `job`'s transcript has new lines.
    pub fn record(&self, job: &Job) -> io::Result<()> {
        let job = Job {
            // A flush may run in another directory.
            path: std::path::absolute(&job.path)?,
            ..job.clone()
        };
        files::create_private_dir(&self.pending)?;
        let name = format!("{}-{}.json", key(&job.path), Uuid::now_v7());
        let bytes = serde_json::to_vec(&job).map_err(io::Error::other)?;
        files::write_atomically(&self.pending, &name, &bytes)
    }

    pub fn has_pending(&self) -> bool {
        files::has_visible_file(&self.pending)
    }

    /// How many distinct transcripts wait to be shipped.
    pub fn pending_count(&self) -> usize {
        let names = files::visible_names(&self.pending).unwrap_or_default();
        names
            .iter()
            .filter_map(|n| n.split_once('-').map(|(k, _)| k))
            .collect::<HashSet<_>>()
            .len()
    }

    /// The flush's part (under the flush lock): ships what the pending jobs and recently shipped transcripts
    /// hold beyond their offsets. Stops at the first delivery failure: the receiver is down or refusing.
    pub fn ship_all(&self, target: &Target) -> Shipped {
        let mut report = Shipped::default();
        let mut receiver_down = false;
        let jobs = self.pending_jobs();
        for (key, (job, job_files)) in &jobs {
            if receiver_down {
                report.left += 1;
                continue;
            }
            match self.ship(key, job, target) {
                Ok(n) => report.entries += n,
                Err(ShipError::Missing) => say!(
                    "hivewatch flush: transcript {} not found; skipped",
                    job.path.display()
                ),
                Err(ShipError::Io(e)) => say!(
                    "hivewatch flush: cannot read transcript {}: {e}; skipped",
                    job.path.display()
                ),
                Err(ShipError::Undelivered(why)) => {
                    say!("hivewatch flush: transcripts not delivered: {why}");
                    receiver_down = true;
                    report.left += 1;
                    continue;
                }
            }
            for f in job_files {
                let _ = fs::remove_file(f);
            }
        }
        if !receiver_down {
            self.ship_recent(target, &jobs, &mut report);
        }
        report
    }

    /// Transcripts shipped within the rescan window that were not in a job this time.
    fn ship_recent(
        &self,
        target: &Target,
        done: &BTreeMap<String, (Job, Vec<PathBuf>)>,
        report: &mut Shipped,
    ) {
        for (key, progress) in self.recent_progress() {
            if done.contains_key(&key) {
                continue;
            }
            match self.ship(&key, &progress.job, target) {
                Ok(n) => report.entries += n,
                // Gone (a deleted session): forget it quietly, nobody asked for it this time.
                Err(ShipError::Missing) => {
                    let _ = fs::remove_file(self.progress_path(&key));
                }
                Err(ShipError::Io(_)) => {}
                Err(ShipError::Undelivered(_)) => {
                    report.left += 1;
                    return;
                }
            }
        }
    }

    /// Pending jobs by transcript; the newest job's session and agent win.
    fn pending_jobs(&self) -> BTreeMap<String, (Job, Vec<PathBuf>)> {
        let mut jobs: BTreeMap<String, (Job, Vec<PathBuf>)> = BTreeMap::new();
        files::remove_stale_temp_files(&self.pending, Duration::from_secs(3600));
        for name in files::visible_names(&self.pending).unwrap_or_default() {
            let path = self.pending.join(&name);
            let job = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Job>(&b).ok());
            let Some(job) = job else {
                say!(
                    "hivewatch flush: {} is not a transcript job; removed",
                    path.display()
                );
                let _ = fs::remove_file(&path);
                continue;
            };
            let entry = jobs
                .entry(key(&job.path))
                .or_insert_with(|| (job.clone(), Vec::new()));
            entry.0 = job;
            entry.1.push(path);
        }
        jobs
    }

    fn recent_progress(&self) -> Vec<(String, Progress)> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for name in files::visible_names(&self.shipped).unwrap_or_default() {
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            let path = self.shipped.join(&name);
            let recent = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age < RESCAN_WINDOW);
            if recent && let Some(p) = self.load_progress(key) {
                out.push((key.to_string(), p));
            }
        }
        out
    }

    fn progress_path(&self, key: &str) -> PathBuf {
        self.shipped.join(format!("{key}.json"))
    }

    fn load_progress(&self, key: &str) -> Option<Progress> {
        let bytes = fs::read(self.progress_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save_progress(&self, key: &str, progress: &Progress) -> io::Result<()> {
        files::create_private_dir(&self.shipped)?;
        let bytes = serde_json::to_vec(progress).map_err(io::Error::other)?;
        files::write_atomically(&self.shipped, &format!("{key}.json"), &bytes)
    }

    /// Ships the complete lines of one transcript past its offset; returns the entries delivered.
    fn ship(&self, key: &str, job: &Job, target: &Target) -> Result<usize, ShipError> {
        let mut file = File::open(&job.path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ShipError::Missing,
            _ => ShipError::Io(e),
        })?;
        let len = file.metadata()?.len();
        let offset = match self.load_progress(key) {
            // Shorter than what was shipped: the file was replaced, start over (the receiver dedups).
            Some(p) if p.job.path == job.path && p.offset <= len => p.offset,
            _ => 0,
        };
        let mut progress = Progress {
            job: job.clone(),
            offset,
        };
        if len == offset {
            return Ok(0);
        }
        file.seek(SeekFrom::Start(offset))?;
        // Only what exists now: a file still growing is finished by the next flush.
        let reader = BufReader::new(file.take(len - offset));
        let mut shipper = Shipper {
            transcripts: self,
            key,
            target,
            progress: &mut progress,
            chunk: Chunk::default(),
            delivered: 0,
        };
        let unparseable = shipper.ship_lines(reader, offset)?;
        if unparseable > 0 {
            say!(
                "hivewatch flush: skipped {unparseable} lines of {} that are not JSON objects",
                job.path.display()
            );
        }
        Ok(shipper.delivered)
    }
}

/// Entries read but not yet sent, and where the last line read ends.
#[derive(Default)]
struct Chunk {
    entries: Vec<Value>,
    bytes: usize,
    end: u64,
}

/// Reads one transcript's lines into chunks and sends each, advancing the offset after each delivery.
struct Shipper<'a> {
    transcripts: &'a Transcripts,
    key: &'a str,
    target: &'a Target,
    progress: &'a mut Progress,
    chunk: Chunk,
    delivered: usize,
}

enum Line {
    Blank,
    Entry(Value),
    Unparseable,
}

impl Shipper<'_> {
    /// Returns how many complete lines were not JSON objects (they are skipped, not retried).
    fn ship_lines(&mut self, mut reader: impl BufRead, start: u64) -> Result<usize, ShipError> {
        let mut pos = start;
        let mut unparseable = 0;
        let mut line = Vec::new();
        self.chunk.end = start;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            pos += n as u64;
            match parse_line(&line) {
                Line::Blank => {}
                Line::Unparseable => unparseable += 1,
                Line::Entry(entry) => {
                    if !self.chunk.entries.is_empty() && self.chunk.bytes + n > CHUNK_BYTES {
                        self.send()?;
                    }
                    self.chunk.entries.push(entry);
                    self.chunk.bytes += n;
                }
            }
            self.chunk.end = pos;
            if self.chunk.entries.len() >= CHUNK_ENTRIES {
                self.send()?;
            }
        }
        if self.chunk.end > self.progress.offset {
            self.send()?;
        }
        Ok(unparseable)
    }

    /// Sends the chunk (if it holds entries) and moves the offset past it.
    fn send(&mut self) -> Result<(), ShipError> {
        let chunk = std::mem::take(&mut self.chunk);
        let n = chunk.entries.len();
        if n > 0 {
            let body = json!({
                "session_id": self.progress.job.session_id,
                "agent_id": self.progress.job.agent_id,
                "entries": chunk.entries,
            });
            let body = serde_json::to_vec(&body).map_err(io::Error::other)?;
            match self.target.post_json(PATH, &body) {
                Outcome::Delivered => self.delivered += n,
                // Retrying cannot help (a line too large for the receiver): skip it rather than stall forever.
                Outcome::Rejected(code) => say!(
                    "hivewatch flush: the receiver refused {n} entries of {} (HTTP {code}); skipped",
                    self.progress.job.path.display()
                ),
                Outcome::Retry(why) => return Err(ShipError::Undelivered(why)),
            }
        }
        self.progress.offset = chunk.end;
        self.chunk.end = chunk.end;
        self.transcripts.save_progress(self.key, self.progress)?;
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Line {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(mut entry @ Value::Object(_)) => {
            redact_json(&mut entry);
            Line::Entry(entry)
        }
        _ => Line::Unparseable,
    }
}

/// A file name for a transcript path: the first 128 bits of its SHA-256, in hex.
fn key(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..16])
}

/// The transcripts a hook payload names, on the events after which a transcript has new lines.
pub fn jobs_for(payload: &Value) -> Vec<Job> {
    let text = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let Some(event) = text("hook_event_name") else {
        return Vec::new();
    };
    if !matches!(event, "Stop" | "SubagentStop" | "PreCompact" | "SessionEnd") {
        return Vec::new();
    }
    let Some(session_id) = text("session_id") else {
        return Vec::new();
    };
    let job = |path: &str, agent_id: &str| Job {
        path: PathBuf::from(path),
        session_id: session_id.to_string(),
        agent_id: agent_id.to_string(),
    };
    let mut jobs = Vec::new();
    if let Some(path) = text("transcript_path") {
        jobs.push(job(path, "main"));
    }
    if event == "SubagentStop"
        && let (Some(path), Some(agent)) = (text("agent_transcript_path"), text("agent_id"))
    {
        jobs.push(job(path, agent));
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_events_name_their_transcripts() {
        let stop =
            json!({"hook_event_name": "Stop", "session_id": "s", "transcript_path": "/t/s.jsonl"});
        assert_eq!(jobs_for(&stop).len(), 1);
        let sub = json!({"hook_event_name": "SubagentStop", "session_id": "s", "transcript_path": "/t/s.jsonl",
                         "agent_id": "a1", "agent_transcript_path": "/t/s/subagents/agent-a1.jsonl"});
        let jobs = jobs_for(&sub);
        assert_eq!(jobs[1].agent_id, "a1");
        assert_eq!(jobs[0].agent_id, "main");
        let pre = json!({"hook_event_name": "PreToolUse", "session_id": "s", "transcript_path": "/t/s.jsonl"});
        assert!(jobs_for(&pre).is_empty());
    }

    #[test]
    fn lines_parse_and_redact() {
        assert!(matches!(parse_line(b"  \n"), Line::Blank));
        assert!(matches!(parse_line(b"[1]\n"), Line::Unparseable));
        assert!(matches!(parse_line(b"{oops\n"), Line::Unparseable));
        let Line::Entry(e) =
            parse_line(b"{\"uuid\":\"u\",\"text\":\"sk-ant-api03-aaaaaaaaaaaaaaaaaaaaaaaa\"}\n")
        else {
            panic!("an object is an entry");
        };
        assert_eq!(e["text"], "[REDACTED]");
    }

    #[test]
    fn jobs_are_counted_per_transcript() {
        let tmp = tempfile::tempdir().unwrap();
        let t = Transcripts::in_state_dir(tmp.path());
        assert!(!t.has_pending());
        let job = Job {
            path: "/t/s.jsonl".into(),
            session_id: "s".into(),
            agent_id: "main".into(),
        };
        t.record(&job).unwrap();
        t.record(&job).unwrap();
        assert!(t.has_pending());
        assert_eq!(t.pending_count(), 1);
        let jobs = t.pending_jobs();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs.values().next().unwrap().1.len(), 2);
    }
}
