// The state the modules share: the events received, the view the filters leave, the filters, the values each
// filter field has (for the select options), the stream's counters; and the compiled filter. Also the two tables
// several modules read: the configuration record types that timelines fold away, and the session states with the
// board group and the words of each.
import { searchText } from './format.js';

export const MAX_EVENTS = 25000;

// Records of how the agent is configured (hooks registered and run, plugins, settings, instructions): many per
// session, rarely what anyone looks for. Timelines fold them away unless asked (the toggle, or their type chosen in
// the event-type filter).
export const CONFIG_TYPES = new Set([
  'hook_registered', 'plugin_loaded', 'managed_settings_resolved', 'hook_execution_start', 'hook_execution_complete',
  'InstructionsLoaded', 'ConfigChange', 'Setup',
]);
export const isConfig = (ev) => CONFIG_TYPES.has(ev.event_type);

// The board's groups, in the order shown, and each session state's group and words.
export const GROUPS = [
  ['needs', 'needs you'],
  ['working', 'working'],
  ['idle', 'idle'],
  ['done', 'done / failed'],
];
export const STATES = {
  waiting_for_permission: ['needs', 'waiting for permission'],
  waiting_for_input: ['needs', 'waiting for input'],
  working: ['working', 'working'],
  compacting: ['working', 'compacting'],
  idle: ['idle', 'idle'],
  failed: ['done', 'failed'],
  interrupted: ['done', 'interrupted'],
  ended: ['done', 'ended'],
  abandoned: ['done', 'abandoned'],
};
// A session's state; from a server without states, what its status says.
export const stateOf = (s) => (STATES[s.state] ? s.state : s.status === 'ended' ? 'ended' : 'idle');
export const groupOf = (s) => STATES[stateOf(s)][0];
export const stateLabel = (s) => STATES[stateOf(s)][1];

const STATE_FIELDS = ['state', 'state_since', 'waiting_on', 'state_detail', 'current_tool'];

// `next`, a fresher read of a session, but with the state of `prev` if that state began later: a list or an answer
// read before a live change of state must not undo it.
export function keepLaterState(prev, next) {
  if (!prev) return next;
  const tp = Date.parse(prev.state_since);
  const tn = Date.parse(next.state_since);
  if (!(isFinite(tp) && (!isFinite(tn) || tp > tn))) return next;
  const out = { ...next };
  for (const k of STATE_FIELDS) out[k] = prev[k];
  return out;
}

// Filters the server applies too: the dashboard field, its key in a subscribe message, its query parameter.
export const SERVER_FIELDS = [
  ['source_app', 'source_apps', 'source_app'],
  ['session', 'sessions', 'session_id'],
  ['agent', 'agents', 'agent_id'],
  ['event_type', 'event_types', 'event_type'],
];
export const SELECT_FIELDS = ['source_app', 'session', 'agent', 'event_type', 'tool'];

export const state = {
  events: [], // everything received, by commit id (`id`), oldest first
  byKey: new Map(),
  view: [], // the events that pass the filters, oldest first; the timeline shows it newest first
  viewDirty: false,
  filters: { source_app: '', session: '', agent: '', event_type: '', tool: '', q: '' },
  match: () => true,
  showConfig: false, // configuration records shown in the timelines
  configFolded: () => false, // an event the filters pass that is folded away as configuration
  configHidden: 0, // events of the view folded away as configuration
  values: Object.fromEntries(SELECT_FIELDS.map((f) => [f, new Map()])), // value -> events holding it
  lastSeen: Object.fromEntries(SELECT_FIELDS.map((f) => [f, new Map()])), // value -> id of its latest event
  versions: Object.fromEntries(SELECT_FIELDS.map((f) => [f, 0])),
  sessionApps: new Map(), // session id -> source app, from events and the sessions list
  pending: [],
  selectedKey: null,
  live: 0,
  missed: 0,
  backfills: 0,
  refilled: 0,
  refills: 0,
  refillError: null,
  liveSince: Infinity, // earliest event time received live since the last read-back
  connects: 0,
  lastFlushMs: 0,
  maxFlushMs: 0,
};

const fieldOf = {
  source_app: (ev) => ev.source_app,
  session: (ev) => ev.session_id,
  agent: (ev) => ev.agent_id,
  event_type: (ev) => ev.event_type,
  tool: (ev) => ev.tool_name,
};

export function countValues(ev, delta) {
  for (const f of SELECT_FIELDS) {
    const v = fieldOf[f](ev);
    if (v === null || v === undefined || v === '') continue;
    const m = state.values[f];
    const n = (m.get(v) || 0) + delta;
    if (n > 0) {
      if (!m.has(v)) state.versions[f]++;
      m.set(v, n);
      if (delta > 0 && !(state.lastSeen[f].get(v) > ev.id)) state.lastSeen[f].set(v, ev.id);
    } else if (m.delete(v)) {
      state.lastSeen[f].delete(v);
      state.versions[f]++;
    }
  }
  if (delta > 0 && ev.session_id && !state.sessionApps.has(ev.session_id)) {
    state.sessionApps.set(ev.session_id, ev.source_app);
    state.versions.session++;
  }
}

// Configuration records are folded away unless the toggle shows them or the event-type filter asks for one.
export const showingConfig = () => state.showConfig || CONFIG_TYPES.has(state.filters.event_type);

export function compileMatch() {
  const f = { ...state.filters };
  const q = f.q.trim().toLowerCase();
  const filtered = (ev) =>
    (!f.source_app || ev.source_app === f.source_app) &&
    (!f.session || ev.session_id === f.session) &&
    (!f.agent || ev.agent_id === f.agent) &&
    (!f.event_type || ev.event_type === f.event_type) &&
    (!f.tool || ev.tool_name === f.tool) &&
    (!q || searchText(ev).includes(q));
  if (showingConfig()) {
    state.match = filtered;
    state.configFolded = () => false;
  } else {
    state.match = (ev) => !isConfig(ev) && filtered(ev);
    state.configFolded = (ev) => isConfig(ev) && filtered(ev);
  }
}
