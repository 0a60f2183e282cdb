// The session view: opening a session (from a board card, a clicked event or the session filter), loading it from
// the API (timeline and tool calls, transcript) and again, throttled, while its events arrive live; its summary
// (state and how long, what it waits on, tokens and cost, counts), kept current by the board's updates; and the
// JSON of the selected event. Lanes, waterfall and transcript are drawn by their own modules.
import { getJSON } from './api.js';
import { sessionColor, typeColor } from './colors.js';
import { dom, el } from './dom.js';
import { clip, eventKey, eventTime, fmtAge, fmtDuration, shortId } from './format.js';
import { requestFrame } from './frame.js';
import { keepLaterState, state, stateLabel, stateOf } from './store.js';
import { renderTranscript, resetTranscript } from './transcript.js';
import { setHashParam } from './views.js';
import { renderWaterfall } from './waterfall.js';

const TOOL_EVENTS = new Set(['PreToolUse', 'PostToolUse', 'PostToolUseFailure', 'PermissionRequest']);
const TRANSCRIPT_EVENTS = new Set([
  'Stop', 'StopFailure', 'SubagentStop', 'UserPromptSubmit', 'PreCompact', 'PostCompact', 'SessionEnd',
]);

export const session = {
  id: null,
  data: null, // the session API's answer: the timeline, tool calls
  summary: null, // the session object: state, totals
  events: [],
  keys: new Set(),
  lanesDirty: false,
  seq: 0,
  reloadTimer: 0,
  lastLoadAt: 0,
  wantCalls: false,
  wantTranscript: false,
  laneEls: new Map(),
};

const openListeners = [];

// `fn(id)` after a session opens or (`null`) closes.
export function onSessionOpen(fn) {
  openListeners.push(fn);
}

function opened(id) {
  document.body.toggleAttribute('data-session-open', !!id);
  setHashParam('session', id);
  for (const fn of openListeners) fn(id);
}

// The session object in the session API's answer: its fields at the top level (beside `events` and `tool_calls`),
// or under `session`.
const sessionObject = (body) => (body && body.session && typeof body.session === 'object' ? body.session : body);

// The board learned something of the open session (a change of state, new totals).
export function sessionStateChanged(s) {
  if (!session.id || s.session_id !== session.id) return;
  session.summary = keepLaterState(session.summary, s);
  renderSummary();
}

function sessionAddEvent(ev) {
  const key = eventKey(ev);
  if (session.keys.has(key)) return false;
  session.keys.add(key);
  session.events.push(ev);
  session.lanesDirty = true;
  return true;
}

// An event of the open session arrived on the stream.
export function sessionLiveEvent(ev) {
  sessionAddEvent(ev);
  if (TOOL_EVENTS.has(ev.event_type) || ev.tool_use_id) session.wantCalls = true;
  if (TRANSCRIPT_EVENTS.has(ev.event_type)) session.wantTranscript = true;
  scheduleSessionReload(session.wantTranscript);
}

function scheduleSessionReload(withTranscript) {
  if (session.reloadTimer) return;
  const wait = Math.max(800, 3000 - (Date.now() - session.lastLoadAt));
  session.reloadTimer = setTimeout(() => {
    session.reloadTimer = 0;
    const transcript = withTranscript || session.wantTranscript;
    session.wantCalls = false;
    session.wantTranscript = false;
    loadSession(transcript);
  }, wait);
}

export function openSession(id, ev) {
  if (!id) return;
  const changed = session.id !== id;
  if (changed) {
    session.id = id;
    session.data = null;
    session.summary = null;
    session.events = [];
    session.keys = new Set();
    resetTranscript();
    clearTimeout(session.reloadTimer);
    session.reloadTimer = 0;
    dom.lanes.replaceChildren();
    session.laneEls.clear();
    dom.waterfall.replaceChildren(el('div', 'empty-note', 'loading…'));
    dom.transcript.replaceChildren(el('div', 'empty-note', 'loading…'));
    dom.sessionSummary.replaceChildren();
    dom.eventDetail.hidden = true;
    for (const e of state.events) if (e.session_id === id) sessionAddEvent(e);
  }
  dom.placeholder.hidden = true;
  dom.sessionView.hidden = false;
  dom.sessionView.dataset.session = id;
  dom.sessionChip.textContent = shortId(id);
  dom.sessionChip.style.setProperty('--session-color', sessionColor(id));
  dom.sessionChip.title = 'show only this session';
  dom.sessionTitle.textContent = id;
  if (ev) showEventDetail(ev);
  session.lanesDirty = true;
  requestFrame();
  if (changed) {
    opened(id);
    loadSession(true);
  }
}

function closeSession() {
  session.id = null;
  session.summary = null;
  session.seq++;
  clearTimeout(session.reloadTimer);
  session.reloadTimer = 0;
  dom.sessionView.hidden = true;
  delete dom.sessionView.dataset.session;
  dom.placeholder.hidden = false;
  state.selectedKey = null;
  opened(null);
  requestFrame();
}

dom.sessionClose.addEventListener('click', closeSession);
dom.sessionRefresh.addEventListener('click', () => loadSession(true));

export async function loadSession(withTranscript) {
  const id = session.id;
  if (!id) return;
  const seq = ++session.seq;
  session.lastLoadAt = Date.now();
  dom.sessionView.dataset.loading = 'true';
  const enc = encodeURIComponent(id);
  const [timeline, transcript] = await Promise.allSettled([
    getJSON(`api/v1/observability/sessions/${enc}`),
    withTranscript ? getJSON(`api/v1/observability/sessions/${enc}/transcript`) : Promise.resolve(null),
  ]);
  if (seq !== session.seq || session.id !== id) return;
  delete dom.sessionView.dataset.loading;
  if (timeline.status === 'fulfilled') {
    session.data = timeline.value;
    session.summary = keepLaterState(session.summary, sessionObject(timeline.value));
    for (const ev of timeline.value.events || []) sessionAddEvent(ev);
    renderSummary();
    renderWaterfall(session.data && session.data.tool_calls);
  } else {
    const notYet = timeline.reason && timeline.reason.status === 404;
    dom.sessionSummary.replaceChildren(
      el('span', null, notYet ? 'not stored yet' : `could not load the session: ${timeline.reason.message}`),
    );
    dom.waterfall.replaceChildren(el('div', 'empty-note', notYet ? 'no tool calls yet' : 'unavailable'));
  }
  if (withTranscript) {
    if (transcript.status === 'fulfilled' && transcript.value) {
      renderTranscript(transcript.value.entries || []);
    } else if (transcript.status === 'rejected') {
      dom.transcript.replaceChildren(el('div', 'empty-note', `transcript unavailable: ${transcript.reason.message}`));
    }
  }
  dom.sessionView.dataset.loaded = String(seq);
  session.lanesDirty = true;
  requestFrame();
}

function renderSummary() {
  const s = session.summary;
  if (!s) return;
  const st = stateOf(s);
  const since = Date.parse(s.state_since);
  // [field, label, value]; tokens and cost always, zero included.
  const items = [
    ['state', 'state', stateLabel(s)],
    ['since', 'for', isFinite(since) ? fmtAge(Date.now() - since) : null],
    ['waiting_on', 'waits on', st.startsWith('waiting') ? s.waiting_on : null],
    ['current_tool', 'tool', s.current_tool],
    ['state_detail', st === 'failed' ? 'error' : 'detail', st === 'failed' ? s.state_detail || 'unknown' : null],
    ['tokens', 'tokens in/out',
      `${(Number(s.input_tokens) || 0).toLocaleString()} / ${(Number(s.output_tokens) || 0).toLocaleString()}`],
    ['cost', 'cost', `$${(Number(s.cost_usd) || 0).toFixed(4)}`],
    ['model', 'model', s.model],
    ['source_app', 'app', s.source_app],
    ['events', 'events', s.event_count],
    ['tool_calls', 'tool calls', s.tool_call_count],
    ['failures', 'failures', s.tool_failures],
    ['errors', 'errors', s.error_count],
    ['first', 'first', s.first_seen ? new Date(s.first_seen).toLocaleString() : null],
    ['last', 'last', s.last_seen ? new Date(s.last_seen).toLocaleString() : null],
    ['cwd', 'cwd', s.cwd],
  ];
  const frag = document.createDocumentFragment();
  for (const [field, label, v] of items) {
    if (v === null || v === undefined || v === '') continue;
    const item = el('span', null, `${label} `);
    item.dataset.field = field;
    const value = el('b', null, v);
    if (field === 'since') value.dataset.since = String(since);
    item.append(value);
    frag.append(item);
  }
  if (session.data && session.data.truncated) frag.append(el('span', null, '(timeline truncated)'));
  dom.sessionSummary.dataset.state = st;
  dom.sessionSummary.replaceChildren(frag);
}

// How long the open session has been in its state, ticking.
setInterval(() => {
  const b = dom.sessionSummary.querySelector('[data-since]');
  if (b && session.id) b.textContent = fmtAge(Date.now() - Number(b.dataset.since));
}, 1000);

export function showEventDetail(ev) {
  const box = dom.eventDetail;
  const head = el('header');
  head.style.setProperty('--type-color', typeColor(ev.event_type));
  const badge = el('span', 'type-badge', ev.event_type);
  badge.style.setProperty('--type-color', typeColor(ev.event_type));
  head.append(
    badge,
    el('span', null, new Date(eventTime(ev)).toLocaleString()),
    el('span', null, `agent ${ev.agent_id}`),
  );
  if (ev.tool_name) head.append(el('span', null, ev.tool_name));
  if (ev.latency_ms !== null && ev.latency_ms !== undefined) head.append(el('span', null, fmtDuration(ev.latency_ms)));
  if (ev.status === 'error') head.append(el('b', null, 'error'));
  const close = el('button', null, 'hide');
  close.type = 'button';
  close.addEventListener('click', () => {
    box.hidden = true;
  });
  head.append(close);
  const copy = {};
  for (const [k, v] of Object.entries(ev)) if (!k.startsWith('_')) copy[k] = v;
  const pre = el('pre', null, clip(JSON.stringify(copy, null, 2), 30000));
  box.replaceChildren(head, pre);
  box.dataset.eventId = ev.event_id || '';
  box.hidden = false;
}
