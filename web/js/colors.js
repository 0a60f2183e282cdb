// Colors: one per event type (fixed ones for the types Claude Code sends, a stable hue for any other), one per
// session (in order of first sight) and one per agent, cached.

const TYPE_COLORS = {
  PreToolUse: '#4e9af1',
  PostToolUse: '#2bb673',
  PostToolUseFailure: '#ef4444',
  PostToolBatch: '#7fc8a9',
  PermissionRequest: '#f5a524',
  PermissionDenied: '#d9480f',
  Notification: '#f0d43a',
  UserPromptSubmit: '#a970ff',
  UserPromptExpansion: '#d0b3ff',
  Stop: '#9aa4b8',
  StopFailure: '#b4232c',
  SubagentStart: '#12b5cb',
  SubagentStop: '#0b7f8f',
  PreCompact: '#ff8fab',
  PostCompact: '#ff5d8f',
  SessionStart: '#e8edf5',
  SessionEnd: '#5f6878',
  InstructionsLoaded: '#b5a06b',
  TaskCreated: '#ffb86b',
  TaskCompleted: '#c97d3a',
  span: '#7c8cff',
  api_request: '#38d9a9',
  api_error: '#fa5252',
  tool_result: '#94d82d',
  tool_decision: '#fcc419',
  user_prompt: '#da77f2',
};

export function hashHue(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % 360;
}

const colorCache = new Map();
function cachedColor(key, make) {
  let c = colorCache.get(key);
  if (c === undefined) {
    c = make();
    colorCache.set(key, c);
  }
  return c;
}

export const typeColor = (t) => cachedColor('t:' + t, () => TYPE_COLORS[t] || `hsl(${hashHue(t)}, 70%, 62%)`);
// Sessions take hues by order of first sight, a golden angle apart, so that the sessions on screen differ.
let sessionsColored = 0;
export const sessionColor = (id) =>
  cachedColor('s:' + id, () => {
    const n = sessionsColored++;
    const hue = Math.round((hashHue(id) % 30) + n * 137.508) % 360;
    return `hsl(${hue}, 68%, ${n % 2 ? 62 : 52}%)`;
  });
export const agentColor = (id) =>
  cachedColor('a:' + id, () => (id === 'main' ? '#9aa4b8' : `hsl(${hashHue('agent:' + id)}, 60%, 62%)`));
