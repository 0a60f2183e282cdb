//! Personal hooks in `claude --worktree` sessions. Claude Code runs such a session in a new git worktree and
//! reads the worktree's own `.claude/` files; the personal `.claude/settings.local.json` is not in git, so it is
//! not there, and the session would go unobserved. Claude Code copies the files that `.worktreeinclude` (at the
//! repository's root, gitignore syntax) lists and git ignores into each new worktree: `install-hooks` lists the
//! personal settings file there and keeps both files out of git with the repository's own `.git/info/exclude`,
//! which is never committed. Nothing here runs `git`.

use std::path::{Path, PathBuf};

use crate::hook_client::claude_settings::LOCAL_SETTINGS;

const INCLUDE_FILE: &str = ".worktreeinclude";
/// The line naming the personal settings file, anchored at the root as gitignore patterns allow.
const LINE: &str = "/.claude/settings.local.json";
const HEADER: &str =
    "# Files Claude Code copies into new worktrees (added by `hivewatch install-hooks`)";

/// What [`include`] or [`exclude`] changed, for the user to read.
pub type Changes = Vec<String>;

/// The project's `.git/info/exclude` when the project is the root of a main checkout (a `.git` directory);
/// `None` for a linked worktree, a subdirectory or no git at all.
fn exclude_file(project: &Path) -> Option<PathBuf> {
    let git = project.join(".git");
    git.is_dir().then(|| git.join("info").join("exclude"))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Whether a gitignore-style line names the personal settings file.
fn names_local_settings(line: &str) -> bool {
    let l = line.trim();
    !l.starts_with('#')
        && (l.trim_start_matches('/') == LOCAL_SETTINGS
            || l.trim_start_matches('/') == "settings.local.json")
}

fn write_lines(path: &Path, lines: &[String]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text)
}

/// Makes new worktrees of `project` get its personal settings file. With `dry_run`, says what it would do.
pub fn include(project: &Path, dry_run: bool) -> std::io::Result<Changes> {
    let mut changes = Vec::new();
    let Some(exclude) = exclude_file(project) else {
        return Ok(changes);
    };
    let include = project.join(INCLUDE_FILE);
    let existed = include.exists();
    let mut listed = lines(&include);
    if !listed.iter().any(|l| names_local_settings(l)) {
        if !existed {
            listed.push(HEADER.to_string());
        }
        listed.push(LINE.to_string());
        if !dry_run {
            write_lines(&include, &listed)?;
        }
        changes.push(format!(
            "listed {LOCAL_SETTINGS} in {} so that `claude --worktree` sessions get these hooks too",
            include.display()
        ));
    }
    // Copied only when git ignores it; the include file we made stays out of git too.
    let gitignore = lines(&project.join(".gitignore"));
    let mut excluded = lines(&exclude);
    let mut add = Vec::new();
    if !gitignore
        .iter()
        .chain(&excluded)
        .any(|l| names_local_settings(l))
    {
        add.push(LINE);
    }
    if !existed && !excluded.iter().any(|l| l.trim() == "/.worktreeinclude") {
        add.push("/.worktreeinclude");
    }
    if !add.is_empty() {
        excluded.extend(add.iter().map(|s| s.to_string()));
        if !dry_run {
            write_lines(&exclude, &excluded)?;
        }
        changes.push(format!(
            "kept {} out of git in {} (not committed)",
            add.join(" and "),
            exclude.display()
        ));
    }
    Ok(changes)
}

/// Takes back what [`include`] added to `.worktreeinclude`: our line, and the file when nothing else is left in
/// it. The exclusions in `.git/info/exclude` stay (they only keep personal files out of git).
pub fn exclude(project: &Path, dry_run: bool) -> std::io::Result<Changes> {
    let include = project.join(INCLUDE_FILE);
    let listed = lines(&include);
    if !listed.iter().any(|l| l.trim() == LINE) {
        return Ok(Vec::new());
    }
    let kept: Vec<String> = listed
        .into_iter()
        .filter(|l| l.trim() != LINE && l != HEADER)
        .collect();
    if !dry_run {
        if kept.iter().all(|l| l.trim().is_empty()) {
            std::fs::remove_file(&include)?;
        } else {
            write_lines(&include, &kept)?;
        }
    }
    Ok(vec![format!(
        "took {LOCAL_SETTINGS} out of {}",
        include.display()
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_then_exclude_leaves_the_repository_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join(".git/info")).unwrap();
        std::fs::write(p.join(".git/info/exclude"), "# git's own\n").unwrap();
        assert_eq!(include(p, false).unwrap().len(), 2);
        assert!(lines(&p.join(INCLUDE_FILE)).contains(&LINE.to_string()));
        let excluded = lines(&p.join(".git/info/exclude"));
        assert!(
            excluded.contains(&LINE.to_string())
                && excluded.contains(&"/.worktreeinclude".to_string())
        );
        assert!(
            include(p, false).unwrap().is_empty(),
            "a second run changes nothing"
        );
        assert_eq!(exclude(p, false).unwrap().len(), 1);
        assert!(!p.join(INCLUDE_FILE).exists());

        // A user's own include file keeps its lines; a .gitignore that ignores the file is enough.
        std::fs::write(p.join(INCLUDE_FILE), ".env\n").unwrap();
        std::fs::write(p.join(".gitignore"), ".claude/settings.local.json\n").unwrap();
        std::fs::write(p.join(".git/info/exclude"), "").unwrap();
        include(p, false).unwrap();
        assert_eq!(lines(&p.join(INCLUDE_FILE)), [".env", LINE]);
        assert!(lines(&p.join(".git/info/exclude")).is_empty());
        exclude(p, false).unwrap();
        assert_eq!(lines(&p.join(INCLUDE_FILE)), [".env"]);
    }

    #[test]
    fn nothing_happens_outside_a_main_checkout() {
        let dir = tempfile::tempdir().unwrap();
        assert!(include(dir.path(), false).unwrap().is_empty());
        assert!(!dir.path().join(INCLUDE_FILE).exists());
    }
}
