//! Small file helpers shared by the spool and the transcript bookkeeping: private directories, and writes
//! that readers only ever see whole (write a temporary name, then rename over the final one).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Hook payloads hold prompts and tool output: keep the state directory to the user.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `bytes` to `dir/name` so that no reader sees a partial file: a dot-prefixed temporary file first
/// (readers skip dot files), then a rename, which is atomic within a directory.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write_new(&tmp, bytes).and_then(|()| fs::rename(&tmp, dir.join(name)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

/// Names of the visible (not dot-prefixed) files in `dir`, sorted; a missing directory is empty.
pub fn visible_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in read_dir_or_empty(dir)? {
        let name = entry?.file_name();
        if let Some(name) = name.to_str().filter(|n| !n.starts_with('.')) {
            names.push(name.to_string());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Whether `dir` holds any visible file; stops at the first one, so it stays cheap on a large spool.
pub fn has_visible_file(dir: &Path) -> bool {
    let Ok(entries) = read_dir_or_empty(dir) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
}

/// Removes temporary files left by a process that died between write and rename.
pub fn remove_stale_temp_files(dir: &Path, older_than: Duration) {
    let Ok(entries) = read_dir_or_empty(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if !(name.starts_with(b".") && name.ends_with(b".tmp")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > older_than);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn read_dir_or_empty(dir: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}
