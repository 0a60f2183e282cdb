//! The hook contract: every hook event of the newest Claude Code checked, whether hivewatch registers a hook for
//! it, with which matcher, and why. `install-hooks` registers from it, `doctor` checks installs against it, the
//! hook refuses the events it must not handle, and docs/HOOKS.md shows it ([`markdown_table`]).
//!
//! A Claude Code hook is not always an observer. For some events the hook's answer *is* the behaviour: a
//! `WorktreeCreate` hook must create the worktree and print its path, so an empty answer fails `claude
//! --worktree`. hivewatch registers only events where an empty answer, exit 0 and a short run change nothing,
//! and where a failed delivery (hivewatch down, for `type: "http"` hooks) shows at most a line to the user.
//! Each row was checked against the Claude Code CLI itself (tests/claude_code.rs runs the pinned versions).

/// What hivewatch does with one hook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Registered. `matcher` is written into the matcher group (`"*"` for tool events; none where the event
    /// matches nothing). `http`: also registered as a `type: "http"` hook (`install-hooks --http`); false where a
    /// failed request (hivewatch down) would reach the model, or where Claude Code runs no http hooks.
    Observe {
        matcher: Option<&'static str>,
        http: bool,
    },
    /// Not registered, because a registered hook costs the agent work for little to observe. A hook invoked for
    /// it anyway (an older install) stores the event, exits 0 and says on stderr how to fix the install.
    Skip,
    /// Never registered: Claude Code acts on the hook's answer (or on the mere presence of a hook), so an
    /// observer changes what the agent does. A hook invoked for it anyway says on stderr how to fix the install
    /// and exits 1, which makes Claude Code report the failure or fall back to its own behaviour instead of
    /// taking an empty answer for a decision.
    Never,
}

/// One hook event of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookEvent {
    pub name: &'static str,
    /// The oldest of the pinned Claude Code versions (tests/claude-code/package.json) that has the event.
    pub since: &'static str,
    pub registration: Registration,
    /// Why, in one sentence: what an empty answer, exit 0, a timeout or a failed request does.
    pub why: &'static str,
}

const OLDEST: &str = "2.1.197";
const NEWEST: &str = "2.1.337";

const TOOL: Registration = Registration::Observe {
    matcher: Some("*"),
    http: true,
};
const ALL: Registration = Registration::Observe {
    matcher: None,
    http: true,
};
const COMMAND_ONLY: Registration = Registration::Observe {
    matcher: None,
    http: false,
};

const fn ev(
    name: &'static str,
    since: &'static str,
    registration: Registration,
    why: &'static str,
) -> HookEvent {
    HookEvent {
        name,
        since,
        registration,
        why,
    }
}

/// Every hook event of Claude Code 2.1.337, in Claude Code's own order.
pub const HOOK_EVENTS: &[HookEvent] = &[
    ev(
        "PreToolUse",
        OLDEST,
        TOOL,
        "No decision means the normal permission flow; a timeout or failure is a non-blocking error.",
    ),
    ev(
        "PostToolUse",
        OLDEST,
        TOOL,
        "Output is only read when it holds JSON; carries the call's duration.",
    ),
    ev(
        "PostToolUseFailure",
        OLDEST,
        TOOL,
        "Observational; a failure is shown to the user only.",
    ),
    ev(
        "PostToolBatch",
        OLDEST,
        ALL,
        "Runs once before the next model request; empty output adds nothing.",
    ),
    ev(
        "Notification",
        OLDEST,
        ALL,
        "The notification is sent when the hook returns, which is at once.",
    ),
    ev(
        "UserPromptSubmit",
        OLDEST,
        ALL,
        "Empty stdout adds no context to the prompt; the prompt waits only for the hook's run.",
    ),
    ev(
        "UserPromptExpansion",
        OLDEST,
        ALL,
        "Empty output leaves the expansion as it is.",
    ),
    ev(
        "SessionStart",
        OLDEST,
        COMMAND_ONLY,
        "Empty stdout adds no context; its `cwd` shows a `--worktree` session's worktree. Claude Code skips http \
         hooks for it.",
    ),
    ev(
        "SessionEnd",
        OLDEST,
        ALL,
        "Observational; Claude Code waits at most 1.5 s for it at exit.",
    ),
    ev(
        "Stop",
        OLDEST,
        ALL,
        "Exit 0 lets the turn end; exit 2 (never used) would continue it.",
    ),
    ev(
        "StopFailure",
        OLDEST,
        ALL,
        "Fired and forgotten: output and exit status are ignored.",
    ),
    ev(
        "Interrupt",
        NEWEST,
        ALL,
        "Fired and forgotten: output is ignored.",
    ),
    ev(
        "SubagentStart",
        OLDEST,
        ALL,
        "Empty output adds no context to the subagent.",
    ),
    ev(
        "SubagentStop",
        OLDEST,
        ALL,
        "Exit 0 lets the subagent stop.",
    ),
    ev(
        "PreCompact",
        OLDEST,
        ALL,
        "Empty stdout (or an http answer with an empty body) adds no compaction instructions.",
    ),
    ev(
        "PostCompact",
        OLDEST,
        ALL,
        "Observational; Claude Code shows one line that the hook ran.",
    ),
    ev(
        "PreModelSwitch",
        NEWEST,
        Registration::Never,
        "With any hook registered every model switch waits for it (the fast `/model` path is skipped) and a \
         timeout blocks the switch; PostModelSwitch tells the change.",
    ),
    ev(
        "PostModelSwitch",
        NEWEST,
        ALL,
        "Runs in the background after the switch.",
    ),
    ev(
        "PermissionRequest",
        OLDEST,
        TOOL,
        "No decision means the normal permission dialog (or the host is asked).",
    ),
    ev("PermissionDenied", OLDEST, TOOL, "Observational."),
    ev(
        "Setup",
        OLDEST,
        COMMAND_ONLY,
        "Runs only with --init or --maintenance; empty output changes nothing. Claude Code skips http hooks for \
         it.",
    ),
    ev(
        "TeammateIdle",
        OLDEST,
        ALL,
        "Exit 0 lets the teammate go idle; exit 2 (never used) would keep it working.",
    ),
    ev(
        "TaskCreated",
        OLDEST,
        ALL,
        "Exit 0 lets the task be created.",
    ),
    ev(
        "TaskCompleted",
        OLDEST,
        ALL,
        "Exit 0 lets the task complete.",
    ),
    ev(
        "Elicitation",
        OLDEST,
        ALL,
        "Empty output shows the MCP server's dialog as usual.",
    ),
    ev(
        "ElicitationResult",
        OLDEST,
        ALL,
        "Empty output leaves the answer as the user gave it.",
    ),
    ev("ConfigChange", OLDEST, ALL, "Exit 0 lets the change apply."),
    ev(
        "WorktreeCreate",
        OLDEST,
        Registration::Never,
        "The hook replaces Claude Code's worktree creation and must print the path: an empty answer fails \
         `claude --worktree`. SessionStart and CwdChanged show the worktree instead.",
    ),
    ev(
        "WorktreeRemove",
        OLDEST,
        Registration::Never,
        "The hook replaces Claude Code's worktree removal: after an empty answer the worktree stays on disk.",
    ),
    ev(
        "InstructionsLoaded",
        OLDEST,
        Registration::Skip,
        "A registered hook turns off Claude Code's read-ahead of CLAUDE.md files, which costs the agent time.",
    ),
    ev(
        "CwdChanged",
        OLDEST,
        ALL,
        "Observational; tells a session's new directory (a worktree entered, say).",
    ),
    ev(
        "FileChanged",
        OLDEST,
        Registration::Skip,
        "Fires only for the files a matcher names, which Claude Code then watches; hivewatch has no files to \
         watch.",
    ),
    ev(
        "DirectoryAdded",
        NEWEST,
        COMMAND_ONLY,
        "Empty output adds nothing, but a failed hook puts a note into the conversation: not as an http hook, \
         which fails while hivewatch is down.",
    ),
    ev(
        "MessageDisplay",
        OLDEST,
        Registration::Never,
        "With a hook registered Claude Code shows the model's text only as the hook's answers, line by line, \
         after waiting for each.",
    ),
    ev(
        "PreSkillShellCommand",
        NEWEST,
        COMMAND_ONLY,
        "Empty output lets the command run, but a failed hook adds a warning to the skill's output: not as an \
         http hook.",
    ),
];

/// The contract's row for `name`; `None` for an event this table does not know (newer than this hivewatch).
pub fn lookup(name: &str) -> Option<&'static HookEvent> {
    HOOK_EVENTS.iter().find(|e| e.name == name)
}

impl HookEvent {
    /// The matcher group's matcher when hivewatch registers the event as `kind`, `None` when it does not.
    pub fn registered_as(&self, kind: HandlerKind) -> Option<Option<&'static str>> {
        match self.registration {
            Registration::Observe { matcher, http } if http || kind == HandlerKind::Command => {
                Some(matcher)
            }
            _ => None,
        }
    }
}

/// The two kinds of hook handler hivewatch installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    /// `type: "command"`: `hivewatch hook`.
    Command,
    /// `type: "http"`: Claude Code posts to the hook endpoint itself.
    Http,
}

/// The events hivewatch registers as `kind`, with their matcher.
pub fn registered(kind: HandlerKind) -> impl Iterator<Item = (&'static str, Option<&'static str>)> {
    HOOK_EVENTS
        .iter()
        .filter_map(move |e| Some((e.name, e.registered_as(kind)?)))
}

/// The contract as the Markdown table in docs/HOOKS.md.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| event | since | hivewatch registers | matcher | why |\n| --- | --- | --- | --- | --- |\n",
    );
    for e in HOOK_EVENTS {
        let (registers, matcher) = match e.registration {
            Registration::Observe { matcher, http } => (
                if http { "yes" } else { "command hooks only" },
                matcher
                    .map(|m| format!("`{m}`"))
                    .unwrap_or_else(|| "none".into()),
            ),
            Registration::Skip => ("no (not worth its cost)", "-".into()),
            Registration::Never => ("**never**", "-".into()),
        };
        out.push_str(&format!(
            "| `{}` | {} | {registers} | {matcher} | {} |\n",
            e.name, e.since, e.why
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_known_traps_are_never_registered() {
        let mut names: Vec<_> = HOOK_EVENTS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HOOK_EVENTS.len());
        assert_eq!(
            HOOK_EVENTS.len(),
            35,
            "Claude Code 2.1.337 has 35 hook events"
        );
        for trap in [
            "WorktreeCreate",
            "WorktreeRemove",
            "MessageDisplay",
            "PreModelSwitch",
        ] {
            assert_eq!(
                lookup(trap).map(|e| e.registration),
                Some(Registration::Never)
            );
            assert!(!registered(HandlerKind::Command).any(|(n, _)| n == trap));
        }
    }

    #[test]
    fn http_hooks_leave_out_events_whose_failure_reaches_the_model() {
        let command: Vec<_> = registered(HandlerKind::Command).map(|(n, _)| n).collect();
        let http: Vec<_> = registered(HandlerKind::Http).map(|(n, _)| n).collect();
        assert!(command.contains(&"DirectoryAdded") && !http.contains(&"DirectoryAdded"));
        assert!(http.iter().all(|n| command.contains(n)));
        assert_eq!(
            registered(HandlerKind::Command).find(|(n, _)| *n == "PreToolUse"),
            Some(("PreToolUse", Some("*")))
        );
        assert_eq!(
            registered(HandlerKind::Command).find(|(n, _)| *n == "Stop"),
            Some(("Stop", None))
        );
    }

    #[test]
    fn the_table_names_every_event() {
        let table = markdown_table();
        for e in HOOK_EVENTS {
            assert!(table.contains(&format!("| `{}` |", e.name)));
        }
    }
}
