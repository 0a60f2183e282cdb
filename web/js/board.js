// The board, the page's opening view: the sessions hivewatch knows, grouped by what they need from the person —
// needs you (waiting for a permission or for input), working, idle, done/failed — one card each with the project,
// the model, how long the session has been in its state (ticking), what it waits on, the tool it runs, tokens and
// cost, and a failure's error kind. A click on a card opens the session.
//
// Kept live two ways: a `session_state` message from the stream applies at once; and the sessions list is read
// again, at most every REFRESH_MS while events arrive (tokens, cost and the running tool change without a change of
// state), when the stream (re)connects or dropped messages, and every QUIET_REFRESH_MS anyway. The stream carries
// the state changes of the sessions its filters follow: with the timeline filtered to a session or a source app,
// the board shown reads the list every NARROWED_REFRESH_MS instead.
import { getJSON } from './api.js';
import { sessionColor } from './colors.js';
import { dom, el } from './dom.js';
import { fmtAge, fmtCost, fmtTokens, shortId } from './format.js';
import { requestFrame } from './frame.js';
import { onSessionOpen, openSession, session, sessionStateChanged } from './session.js';
import { GROUPS, STATES, groupOf, keepLaterState, state, stateLabel, stateOf } from './store.js';
import { onViewChange, view } from './views.js';

const REFRESH_MS = 2000;
const QUIET_REFRESH_MS = 30000;
const NARROWED_REFRESH_MS = 3000;
// Finished sessions shown: the most recent ones. Every session not finished is shown.
const DONE_SHOWN = 50;
const ACTIVE_LIMIT = 1000;
// How long a card that changed group stays highlighted.
const FLASH_MS = 2500;

const stateNames = (group) => Object.keys(STATES).filter((s) => STATES[s][0] === group);
const ACTIVE_STATES = [...stateNames('needs'), ...stateNames('working'), ...stateNames('idle')];
const DONE_STATES = stateNames('done');

export const board = {
  sessions: new Map(), // session id -> the session object, with _since (ms), _liveAt, _movedAt
  cards: new Map(), // session id -> its card element
  dirty: true,
  loads: 0,
  liveStates: 0,
  loadedAt: 0,
  error: null,
};

// One section per group, in GROUPS order: its heading with a count, its cards.
const groupBoxes = {};
for (const [name, label] of GROUPS) {
  const section = el('section', 'board-group');
  section.dataset.group = name;
  const count = el('span', 'group-count', '0');
  const heading = el('h2', null, `${label} `);
  heading.append(count);
  const cards = el('div', 'cards');
  section.append(heading, cards);
  dom.board.append(section);
  groupBoxes[name] = { section, count, cards };
}

let loading = false;
let again = false;
let refreshTimer = 0;

// Takes one session object, from the list or from a `session_state` message (`live`).
function upsert(s, live) {
  if (!s || typeof s !== 'object' || !s.session_id) return;
  const id = s.session_id;
  const old = board.sessions.get(id);
  const merged = keepLaterState(old, s);
  const since = Date.parse(merged.state_since);
  const next = { ...merged, _since: isFinite(since) ? since : null, _liveAt: live ? Date.now() : old?._liveAt || 0 };
  next._movedAt = old && groupOf(old) !== groupOf(next) ? Date.now() : old?._movedAt || 0;
  board.sessions.set(id, next);
  board.dirty = true;
  if (session.id === id) sessionStateChanged(next);
}

// A `session_state` message of the stream.
export function boardSessionState(msg) {
  board.liveStates++;
  upsert(msg.session, true);
  requestFrame();
}

async function load() {
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  const startedAt = Date.now();
  try {
    const [active, done] = await Promise.all([
      getJSON(`api/v1/observability/sessions?state=${ACTIVE_STATES.join(',')}&limit=${ACTIVE_LIMIT}`),
      getJSON(`api/v1/observability/sessions?state=${DONE_STATES.join(',')}&limit=${DONE_SHOWN}`),
    ]);
    const fetched = new Map();
    for (const s of [...(active.sessions || []), ...(done.sessions || [])]) fetched.set(s.session_id, s);
    // Gone from the list (finished long ago, or pushed out by newer ones), unless a live message told of it since.
    for (const [id, old] of board.sessions) {
      if (!fetched.has(id) && old._liveAt < startedAt) {
        board.sessions.delete(id);
        board.dirty = true;
      }
    }
    for (const s of fetched.values()) upsert(s, false);
    board.error = null;
  } catch (err) {
    board.error = String(err.message || err);
    board.dirty = true;
  }
  board.loads++;
  board.loadedAt = Date.now();
  loading = false;
  requestFrame();
  if (again) {
    again = false;
    refreshBoardSoon();
  }
}

// Read the list again now (first load, reconnect, dropped messages, the board shown).
export function refreshBoard() {
  clearTimeout(refreshTimer);
  refreshTimer = 0;
  load();
}

// Read the list again, at most every REFRESH_MS (events arriving).
export function refreshBoardSoon() {
  if (refreshTimer) return;
  const wait = Math.max(0, REFRESH_MS - (Date.now() - board.loadedAt));
  refreshTimer = setTimeout(() => {
    refreshTimer = 0;
    load();
  }, wait);
}

setInterval(() => {
  const narrowed = view.current === 'board' && (state.filters.session || state.filters.source_app);
  if (Date.now() - board.loadedAt >= (narrowed ? NARROWED_REFRESH_MS : QUIET_REFRESH_MS)) refreshBoardSoon();
}, 1000);

// Longest waiting first; the most recently active first; the most recently finished first.
const ORDER = {
  needs: (a, b) => (a._since ?? Infinity) - (b._since ?? Infinity),
  working: (a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen),
  idle: (a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen),
  done: (a, b) => (b._since ?? 0) - (a._since ?? 0),
};

const EMPTY = {
  needs: 'No session waits for you.',
  working: 'No session is working.',
  idle: 'No idle session.',
  done: 'No finished session yet.',
};

function projectName(s) {
  const cwd = (s.cwd || '').replace(/\/+$/, '');
  return cwd ? cwd.slice(cwd.lastIndexOf('/') + 1) || cwd : s.source_app || shortId(s.session_id);
}

function makeCard() {
  const card = el('article', 'card');
  card.tabIndex = 0;
  card.setAttribute('role', 'button');
  const head = el('div', 'card-head');
  const stateBadge = el('span', 'card-state');
  const since = el('span', 'card-since');
  since.dataset.field = 'since';
  const chip = el('span', 'session-chip');
  head.append(stateBadge, chip, since);
  const project = el('div', 'card-project');
  const name = el('span', 'card-name');
  const app = el('span', 'card-app');
  app.dataset.field = 'source_app';
  project.append(name, app);
  const cwd = el('div', 'card-cwd');
  cwd.dataset.field = 'cwd';
  const lines = el('div', 'card-lines');
  const foot = el('div', 'card-foot');
  const model = el('span', 'card-model');
  model.dataset.field = 'model';
  const tokens = el('span', 'card-tokens');
  tokens.dataset.field = 'tokens';
  const cost = el('span', 'card-cost');
  cost.dataset.field = 'cost';
  foot.append(model, tokens, cost);
  card.append(head, project, cwd, lines, foot);
  card._c = { stateBadge, since, name, app, cwd, lines, model, tokens, cost, chip };
  return card;
}

function line(field, label, value) {
  const node = el('div', `card-line ${field}`);
  node.dataset.field = field;
  node.append(el('span', 'card-label', label), el('span', 'card-value', value));
  node.title = `${label} ${value}`;
  return node;
}

function fillCard(card, s) {
  const c = card._c;
  const state = stateOf(s);
  const group = groupOf(s);
  card._s = s;
  card.dataset.session = s.session_id;
  card.dataset.state = state;
  card.dataset.group = group;
  card.style.setProperty('--session-color', sessionColor(s.session_id));
  card.classList.toggle('moved', !!s._movedAt && Date.now() - s._movedAt < FLASH_MS);
  card.classList.toggle('selected', session.id === s.session_id);
  c.stateBadge.textContent = stateLabel(s);
  c.since.dataset.since = s.state_since || '';
  c.since.title = s.state_since ? `in this state since ${new Date(s.state_since).toLocaleString()}` : '';
  tickCard(card);
  c.name.textContent = projectName(s);
  c.app.textContent = s.source_app || '';
  c.cwd.textContent = s.cwd || '';
  c.cwd.title = s.cwd || '';
  const lines = [];
  if (group === 'needs' && s.waiting_on) lines.push(line('waiting_on', 'waits on', s.waiting_on));
  if (s.current_tool) lines.push(line('current_tool', 'tool', s.current_tool));
  if (s.running_subagents > 0 && group !== 'done') lines.push(line('running_subagents', 'subagents', s.running_subagents));
  if (state === 'failed') lines.push(line('state_detail', 'error', s.state_detail || 'unknown'));
  c.lines.replaceChildren(...lines);
  c.model.textContent = s.model || 'model unknown';
  const tin = Number(s.input_tokens) || 0;
  const tout = Number(s.output_tokens) || 0;
  c.tokens.textContent = `${fmtTokens(tin)} in / ${fmtTokens(tout)} out`;
  c.tokens.title = `${tin.toLocaleString()} input tokens, ${tout.toLocaleString()} output tokens`;
  c.cost.textContent = fmtCost(s.cost_usd);
  c.cost.title = `$${Number(s.cost_usd) || 0}`;
  c.chip.textContent = shortId(s.session_id);
  c.chip.title = s.session_id;
  card.title = `${stateLabel(s)} · ${s.session_id}${s.cwd ? ' · ' + s.cwd : ''} — open the session`;
}

function tickCard(card) {
  const s = card._s;
  card._c.since.textContent = s._since === null ? '' : fmtAge(Date.now() - s._since);
}

// The needs-you count in the top bar and the page title, whichever view is shown.
function renderNeeds(n) {
  dom.needsBadge.textContent = n ? String(n) : '';
  dom.needsBadge.hidden = !n;
  document.title = n ? `(${n}) hivewatch` : 'hivewatch';
}

export function renderBoard() {
  if (!board.dirty) return;
  const byGroup = Object.fromEntries(GROUPS.map(([g]) => [g, []]));
  for (const s of board.sessions.values()) byGroup[groupOf(s)].push(s);
  renderNeeds(byGroup.needs.length);
  if (view.current !== 'board') return; // drawn when shown
  board.dirty = false;
  for (const [g] of GROUPS) {
    const list = byGroup[g].sort(ORDER[g]);
    const box = groupBoxes[g];
    box.count.textContent = String(list.length);
    box.section.dataset.count = String(list.length);
    const cards = list.map((s) => {
      let card = board.cards.get(s.session_id);
      if (!card) {
        card = makeCard();
        board.cards.set(s.session_id, card);
      }
      fillCard(card, s);
      return card;
    });
    if (!cards.length) box.cards.replaceChildren(el('div', 'empty-note', EMPTY[g]));
    else box.cards.replaceChildren(...cards);
  }
  for (const [id, card] of board.cards) {
    if (!board.sessions.has(id)) {
      card.remove();
      board.cards.delete(id);
    }
  }
  dom.boardStatus.hidden = !board.error;
  dom.boardStatus.textContent = board.error ? `could not read the sessions: ${board.error}` : '';
  dom.boardEmpty.hidden = board.sessions.size > 0 || !board.loads;
}

// The open session is marked on the board.
export function boardSelectionChanged() {
  for (const [id, card] of board.cards) card.classList.toggle('selected', session.id === id);
}

setInterval(() => {
  if (view.current !== 'board') return;
  for (const card of board.cards.values()) {
    tickCard(card);
    if (card.classList.contains('moved') && Date.now() - card._s._movedAt >= FLASH_MS) card.classList.remove('moved');
  }
}, 1000);

function cardActivated(e) {
  const card = e.target.closest('.card');
  if (!card || !card._s) return;
  openSession(card._s.session_id);
  boardSelectionChanged();
}

onSessionOpen(boardSelectionChanged);
onViewChange((name) => {
  if (name !== 'board') return;
  board.dirty = true;
  refreshBoardSoon(); // the stream may have been filtered to other sessions meanwhile
});

dom.board.addEventListener('click', cardActivated);
dom.board.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    cardActivated(e);
  }
});
