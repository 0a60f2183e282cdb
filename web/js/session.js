// The session view: opening a session (from a clicked event or the session filter), loading it from the API
// (timeline and tool calls, transcript) and again, throttled, while its events arrive live; its summary line and
// the JSON of the selected event. Lanes, waterfall and transcript are drawn by their own modules.
import { getJSON } from './api.js';
import { sessionColor, typeColor } from './colors.js';
import { dom, el } from './dom.js';
import { clip, eventKey, eventTime, fmtDuration, shortId } from './format.js';
import { requestFrame } from './frame.js';
import { state } from './store.js';
import { renderTranscript, resetTranscript } from './transcript.js';
import { renderWaterfall } from './waterfall.js';

const TOOL_EVENTS = new Set(['PreToolUse', 'PostToolUse', 'PostToolUseFailure', 'PermissionRequest']);
const TRANSCRIPT_EVENTS = new Set([
  'Stop', 'StopFailure', 'SubagentStop', 'UserPromptSubmit', 'PreCompact', 'PostCompact', 'SessionEnd',
]);

export const session = {
  id: null,
  data: null,
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
  if (changed) loadSession(true);
}

function closeSession() {
  session.id = null;
  session.seq++;
  clearTimeout(session.reloadTimer);
  session.reloadTimer = 0;
  dom.sessionView.hidden = true;
  delete dom.sessionView.dataset.session;
  dom.placeholder.hidden = false;
  state.selectedKey = null;
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
  const s = session.data || {};
  const items = [
    ['app', s.source_app],
    ['status', s.status],
    ['events', s.event_count],
    ['tool calls', s.tool_call_count],
    ['failures', s.tool_failures],
    ['errors', s.error_count],
    ['model', s.model],
    ['tokens in/out', s.input_tokens || s.output_tokens ? `${s.input_tokens ?? 0}/${s.output_tokens ?? 0}` : null],
    ['cost', s.cost_usd ? `$${Number(s.cost_usd).toFixed(4)}` : null],
    ['first', s.first_seen ? new Date(s.first_seen).toLocaleString() : null],
    ['last', s.last_seen ? new Date(s.last_seen).toLocaleString() : null],
    ['cwd', s.cwd],
  ];
  const frag = document.createDocumentFragment();
  for (const [k, v] of items) {
    if (v === null || v === undefined || v === '') continue;
    const item = el('span', null, `${k} `);
    item.append(el('b', null, v));
    frag.append(item);
  }
  if (s.truncated) frag.append(el('span', null, '(timeline truncated)'));
  dom.sessionSummary.replaceChildren(frag);
}

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
