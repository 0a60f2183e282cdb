//! Repository names as hivewatch keeps them: a remote URL in any of git's spellings becomes `host/owner/name`,
//! so that the same repository reached over https or ssh, with or without `.git`, is one value.

/// `host/owner/name` of a git remote URL (`https://host/owner/name.git`, `git@host:owner/name`,
/// `ssh://git@host:22/owner/name`, …); paths deeper than two (GitLab groups) are kept whole. `None` for a local
/// path or anything without a host.
pub fn normalize_repo_url(url: &str) -> Option<String> {
    let url = url.trim();
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        // A port is no part of the repository's name.
        let host = host.split(':').next()?;
        (host, path)
    } else {
        // scp-like: `[user@]host:path`, but not a Windows drive or a local path.
        let (authority, path) = url.split_once(':')?;
        if authority.contains('/') || authority.len() < 2 {
            return None;
        }
        (authority.rsplit('@').next()?, path)
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    if host.is_empty() || path.is_empty() || !path.contains('/') {
        return None;
    }
    Some(format!("{}/{path}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::normalize_repo_url as n;

    #[test]
    fn every_spelling_of_a_remote_is_one_name() {
        let want = Some("github.com/acme/widgets".to_string());
        for url in [
            "https://github.com/acme/widgets.git",
            "https://github.com/acme/widgets",
            "https://user:secret@GitHub.com/acme/widgets/",
            "git@github.com:acme/widgets.git",
            "ssh://git@github.com:22/acme/widgets.git",
            "git+ssh://git@github.com/acme/widgets",
        ] {
            assert_eq!(n(url), want, "{url}");
        }
        assert_eq!(
            n("https://gitlab.example.com/group/sub/proj.git").as_deref(),
            Some("gitlab.example.com/group/sub/proj")
        );
        for local in [
            "/srv/git/widgets.git",
            "file:///srv/git/w.git",
            "C:/repos/w",
            "widgets",
            "",
        ] {
            assert_eq!(n(local), None, "{local}");
        }
    }
}
