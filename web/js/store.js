// The state the modules share: the events received, the view the filters leave, the filters, the values each
// filter field has (for the select options), the stream's counters; and the compiled filter.
import { searchText } from './format.js';

export const MAX_EVENTS = 25000;

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

export function compileMatch() {
  const f = { ...state.filters };
  const q = f.q.trim().toLowerCase();
  state.match = (ev) =>
    (!f.source_app || ev.source_app === f.source_app) &&
    (!f.session || ev.session_id === f.session) &&
    (!f.agent || ev.agent_id === f.agent) &&
    (!f.event_type || ev.event_type === f.event_type) &&
    (!f.tool || ev.tool_name === f.tool) &&
    (!q || searchText(ev).includes(q));
}
