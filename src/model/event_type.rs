//! An event's type: every hook event of today's Claude Code and the native log events hivewatch knows by name,
//! and [`EventType::Other`] for anything else, kept exactly as sent (a newer hook, another sender's log names).
//! Code matches on the variants, never on strings; the text is what is stored, queried and shown.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($variant,)*
            /// A name hivewatch does not know, as sent.
            Other(String),
        }

        impl EventType {
            /// Every known type, in this order.
            pub const KNOWN: &[EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(&self) -> &str {
                match self {
                    $(EventType::$variant => $name,)*
                    EventType::Other(name) => name,
                }
            }

            pub fn parse(name: &str) -> EventType {
                match name {
                    $($name => EventType::$variant,)*
                    other => EventType::Other(other.to_string()),
                }
            }
        }
    };
}

event_types! {
    // Claude Code's hook events (the hook contract lists whether each is hooked).
    PreToolUse => "PreToolUse",
    PostToolUse => "PostToolUse",
    PostToolUseFailure => "PostToolUseFailure",
    PostToolBatch => "PostToolBatch",
    Notification => "Notification",
    UserPromptSubmit => "UserPromptSubmit",
    UserPromptExpansion => "UserPromptExpansion",
    SessionStart => "SessionStart",
    SessionEnd => "SessionEnd",
    Stop => "Stop",
    StopFailure => "StopFailure",
    Interrupt => "Interrupt",
    SubagentStart => "SubagentStart",
    SubagentStop => "SubagentStop",
    PreCompact => "PreCompact",
    PostCompact => "PostCompact",
    PreModelSwitch => "PreModelSwitch",
    PostModelSwitch => "PostModelSwitch",
    PermissionRequest => "PermissionRequest",
    PermissionDenied => "PermissionDenied",
    Setup => "Setup",
    TeammateIdle => "TeammateIdle",
    TaskCreated => "TaskCreated",
    TaskCompleted => "TaskCompleted",
    Elicitation => "Elicitation",
    ElicitationResult => "ElicitationResult",
    ConfigChange => "ConfigChange",
    WorktreeCreate => "WorktreeCreate",
    WorktreeRemove => "WorktreeRemove",
    InstructionsLoaded => "InstructionsLoaded",
    CwdChanged => "CwdChanged",
    FileChanged => "FileChanged",
    DirectoryAdded => "DirectoryAdded",
    MessageDisplay => "MessageDisplay",
    PreSkillShellCommand => "PreSkillShellCommand",
    // Any OTLP span.
    Span => "span",
    // Claude Code's native log events (`event.name`).
    UserPrompt => "user_prompt",
    ToolResult => "tool_result",
    ToolDecision => "tool_decision",
    ApiRequest => "api_request",
    ApiError => "api_error",
    ApiRetriesExhausted => "api_retries_exhausted",
    ApiRefusal => "api_refusal",
    AssistantResponse => "assistant_response",
    Compaction => "compaction",
    HookRegistered => "hook_registered",
    HookExecutionStart => "hook_execution_start",
    HookExecutionComplete => "hook_execution_complete",
    ManagedSettingsResolved => "managed_settings_resolved",
    SafetyEvent => "safety_event",
    PluginLoaded => "plugin_loaded",
    SkillActivated => "skill_activated",
    SubagentCompleted => "subagent_completed",
}

impl EventType {
    /// Whether the type has a metric label value of its own (unknown ones are counted as `other`, so that labels
    /// stay bounded whatever arrives).
    pub fn is_known(&self) -> bool {
        !matches!(self, EventType::Other(_))
    }

    /// A PreToolUse: the start of a tool call that a PostToolUse or PostToolUseFailure finishes.
    pub fn is_tool_start(&self) -> bool {
        *self == EventType::PreToolUse
    }

    pub fn is_tool_finish(&self) -> bool {
        matches!(self, EventType::PostToolUse | EventType::PostToolUseFailure)
    }

    /// A hook event that reports a failure: the known ones, and any unknown hook name ending in `Failure`.
    pub fn is_failure(&self) -> bool {
        match self {
            EventType::PostToolUseFailure | EventType::StopFailure => true,
            EventType::Other(name) => name.ends_with("Failure"),
            _ => false,
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for EventType {
    fn from(name: &str) -> Self {
        EventType::parse(name)
    }
}

impl From<String> for EventType {
    fn from(name: String) -> Self {
        match EventType::parse(&name) {
            EventType::Other(_) => EventType::Other(name),
            known => known,
        }
    }
}

impl PartialEq<str> for EventType {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(EventType::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_kept() {
        for known in EventType::KNOWN {
            assert_eq!(&EventType::parse(known.as_str()), known);
            assert!(known.is_known());
        }
        let other = EventType::parse("SomethingNew");
        assert_eq!(other, EventType::Other("SomethingNew".into()));
        assert_eq!(other.as_str(), "SomethingNew");
        assert!(!other.is_known());
        assert!(EventType::parse("FutureFailure").is_failure());
        assert!(!EventType::parse("api_error").is_failure());
        let json = serde_json::to_string(&EventType::PostModelSwitch).unwrap();
        assert_eq!(json, "\"PostModelSwitch\"");
        assert_eq!(
            serde_json::from_str::<EventType>(&json).unwrap(),
            EventType::PostModelSwitch
        );
    }

    #[test]
    fn every_event_of_the_hook_contract_is_known() {
        for e in crate::model::hook_events::HOOK_EVENTS {
            assert!(EventType::parse(e.name).is_known(), "{}", e.name);
        }
    }
}
