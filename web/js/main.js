// hivewatch dashboard: a live view of the sessions and the events hivewatch commits, over the dashboard WebSocket
// stream. It opens on the board (sessions by what they need from the person); the event timeline is the other view.
//
// Plain JavaScript modules, no build step, no dependencies. Everything that reaches the DOM goes through textContent
// or attributes, never innerHTML, because event payloads are whatever agents sent.
//
// Rendering is batched: messages from the socket are queued and applied once per animation frame, the timeline is
// virtualized (only the rows in view exist in the DOM), and the agent lanes and the pulse chart are canvases, so
// tens of thousands of events stay cheap.
//
// This is the entry: what each frame does, the handlers that join one part of the page to another, window.hivewatch,
// and the start.
import { initToken, saveToken } from './api.js';
import { board, refreshBoard, renderBoard } from './board.js';
import { dom } from './dom.js';
import { loadKnownSessions, optionsStale, renderOptions, setFilter, showConfig } from './filters.js';
import { eventKey } from './format.js';
import { requestFrame, setFrameHandler } from './frame.js';
import { ingest } from './ingest.js';
import { renderLanes } from './lanes.js';
import { drawPulse } from './pulse.js';
import { loadSession, openSession, session } from './session.js';
import { indicator, renderCounters } from './status.js';
import { compileMatch, state } from './store.js';
import { connect, dropConnection, reconnectNow } from './stream.js';
import { onRowClick, rebuildView, renderTimeline, rowsInDom } from './timeline.js';
import { hashParam, setView, view } from './views.js';

// ---------------------------------------------------------------------------------------------------------------
// Frame: apply what arrived, then render the view shown; the filter options and the lanes at most every 400 and
// 250 ms.

let lastOptionsAt = 0;
let optionsTimer = 0;
let lastLanesAt = 0;
let lanesTimer = 0;
function flush() {
  const t0 = performance.now();
  if (state.pending.length) ingest(state.pending.splice(0));
  if (state.viewDirty) rebuildView();
  if (view.current === 'events') renderTimeline();
  renderBoard();
  const now = performance.now();
  if (optionsStale()) {
    if (now - lastOptionsAt > 400) {
      lastOptionsAt = now;
      renderOptions();
    } else if (!optionsTimer) {
      optionsTimer = setTimeout(() => {
        optionsTimer = 0;
        requestFrame();
      }, 420);
    }
  }
  renderCounters();
  if (session.lanesDirty) {
    if (now - lastLanesAt > 250) {
      lastLanesAt = now;
      renderLanes();
    } else if (!lanesTimer) {
      lanesTimer = setTimeout(() => {
        lanesTimer = 0;
        requestFrame();
      }, 260);
    }
  }
  state.lastFlushMs = performance.now() - t0;
  state.maxFlushMs = Math.max(state.maxFlushMs, state.lastFlushMs);
}
setFrameHandler(flush);

// ---------------------------------------------------------------------------------------------------------------
// Handlers across modules

// A session chip in the timeline filters by its session; a click elsewhere on a row opens the event's session.
onRowClick(
  (ev) => setFilter('session', ev.session_id),
  (ev) => {
    state.selectedKey = eventKey(ev);
    openSession(ev.session_id, ev);
    requestFrame();
  },
);

dom.sessionChip.addEventListener('click', () => session.id && setFilter('session', session.id));

// A read token entered: reconnect with it, and read again what needed it.
dom.auth.addEventListener('submit', (e) => {
  e.preventDefault();
  saveToken(dom.authToken.value.trim());
  dom.authToken.value = '';
  dom.auth.hidden = true;
  reconnectNow();
  loadKnownSessions();
  refreshBoard();
  if (session.id) loadSession(true);
});

// ---------------------------------------------------------------------------------------------------------------
// Start

// A small handle for debugging from the console and for the browser test.
window.hivewatch = {
  stats: () => ({
    stored: state.events.length,
    shown: state.view.length,
    live: state.live,
    pending: state.pending.length,
    missed: state.missed,
    refilled: state.refilled,
    refills: state.refills,
    refillError: state.refillError,
    backfills: state.backfills,
    connects: state.connects,
    connection: indicator.state,
    rows: rowsInDom(),
    lastFlushMs: Math.round(state.lastFlushMs * 10) / 10,
    maxFlushMs: Math.round(state.maxFlushMs * 10) / 10,
    filters: { ...state.filters },
    view: view.current,
    configHidden: state.configHidden,
    board: {
      sessions: board.sessions.size,
      loads: board.loads,
      liveStates: board.liveStates,
      error: board.error,
    },
  }),
  has: (eventId) => state.byKey.has(eventId),
  dropConnection,
  setFilter,
  setView,
  showConfig,
  openSession,
};

initToken();
setView(hashParam('view'));
compileMatch();
if (hashParam('session')) openSession(hashParam('session'));
refreshBoard();
loadKnownSessions();
connect();
drawPulse();
requestFrame();
