// The live stream: the dashboard WebSocket, reconnected with backoff and jitter, pinged when silent; the filters
// the server applies (in the URL, then in subscribe messages); and reading back through the events API what the
// server dropped for this page. Events are queued in state.pending for the next frame; a session's change of state
// goes to the board at once, and the board reads the sessions again when the stream (re)opens or lost messages.
import { askForToken, auth, getJSON, tokenRefused } from './api.js';
import { boardSessionState, refreshBoard, refreshBoardSoon } from './board.js';
import { dom } from './dom.js';
import { clip, eventKey, jsonText } from './format.js';
import { requestFrame } from './frame.js';
import { setStatus, showBanner, showHeartbeat } from './status.js';
import { MAX_EVENTS, SERVER_FIELDS, state } from './store.js';

const BACKFILL = 500;
const REFILL_PAGES = 20;
// A connection silent this long is asked for a pong; one still silent PONG_WAIT_MS later is closed and reopened.
const QUIET_MS = 15000;
const PONG_WAIT_MS = 10000;

const conn = { ws: null, attempt: 0, retryTimer: 0, retryAt: 0, lastMessageAt: 0 };

function serverFilters() {
  const out = {};
  for (const [field, key] of SERVER_FIELDS) out[key] = state.filters[field] ? [state.filters[field]] : [];
  return out;
}

function streamUrl() {
  const u = new URL('observability/dashboard/stream', document.baseURI);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [field, , param] of SERVER_FIELDS) {
    if (state.filters[field]) u.searchParams.append(param, state.filters[field]);
  }
  u.searchParams.set('backfill', String(BACKFILL));
  // hivewatch compares the parameter as it appears in the query, undecoded: characters that are legal in a query
  // (base64's + / =) go as they are; only those that would end or garble the parameter are escaped.
  if (auth.token) u.search += `&access_token=${auth.token.replace(/[^A-Za-z0-9\-._~+/=!$'()*,;:@]/g, encodeURIComponent)}`;
  return u;
}

export function connect() {
  clearTimeout(conn.retryTimer);
  setStatus('connecting', conn.attempt ? `connecting (attempt ${conn.attempt + 1})…` : 'connecting…');
  let sock;
  try {
    sock = new WebSocket(streamUrl());
  } catch (err) {
    showBanner(`cannot open the live stream: ${err.message}`);
    scheduleReconnect();
    return;
  }
  sock._filters = JSON.stringify(serverFilters());
  conn.ws = sock;
  sock.onopen = () => {
    if (conn.ws !== sock) return;
    sock._opened = true;
    conn.attempt = 0;
    dom.auth.hidden = true;
    conn.lastMessageAt = Date.now();
    state.connects++;
    setStatus('open', 'live');
    refreshBoard(); // what changed while disconnected
    // The filters changed while connecting: the URL carried the old ones.
    if (sock._filters !== JSON.stringify(serverFilters())) sendSubscribe();
  };
  sock.onmessage = (m) => {
    if (conn.ws !== sock) return;
    conn.lastMessageAt = Date.now();
    sock._pingAt = 0;
    handleMessage(m.data);
  };
  sock.onclose = async () => {
    if (conn.ws !== sock) return;
    conn.ws = null;
    if (!sock._opened && (await tokenRefused())) {
      if (!conn.ws) askForToken();
      return;
    }
    if (!conn.ws) scheduleReconnect();
  };
}

// A new token: try again now, from the first attempt.
export function reconnectNow() {
  conn.attempt = 0;
  if (conn.ws) conn.ws.close();
  else connect();
}

// Closes the socket as a network failure would (for the browser test); the page reconnects by itself.
export function dropConnection() {
  return conn.ws && conn.ws.close();
}

function scheduleReconnect() {
  const base = Math.min(15000, 500 * 2 ** Math.min(conn.attempt, 10));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  conn.attempt++;
  conn.retryAt = Date.now() + delay;
  updateRetryText();
  conn.retryTimer = setTimeout(connect, delay);
}

function updateRetryText() {
  if (conn.ws || !conn.retryAt) return;
  const left = Math.max(0, Math.ceil((conn.retryAt - Date.now()) / 1000));
  setStatus('reconnecting', `disconnected · retry in ${left} s`);
}

function sendSubscribe() {
  const sock = conn.ws;
  if (!sock || sock.readyState !== WebSocket.OPEN) return; // the next connection's URL carries the filters
  const filters = serverFilters();
  sock._filters = JSON.stringify(filters);
  sock.send(JSON.stringify({ type: 'subscribe', filters, backfill: BACKFILL }));
}

// After the server dropped events for this page (it read too slowly), the events matching the server-side filters
// are read back through the events API, newest first, back to a little before the earliest event time seen live
// since the last read-back (at most every 5 s, at most REFILL_PAGES pages).
let refillTimer = 0;
let lastRefillAt = 0;
function refillSoon() {
  if (refillTimer) return;
  const wait = Math.max(1500, 5000 - (Date.now() - lastRefillAt));
  refillTimer = setTimeout(async () => {
    try {
      await refill();
    } catch (err) {
      state.refillError = String(err.message || err); // the next `missed` tries again
    }
    lastRefillAt = Date.now();
    refillTimer = 0;
  }, wait);
}

async function refill() {
  state.refills++;
  const from = state.liveSince;
  state.liveSince = Infinity;
  const params = new URLSearchParams({ order: 'desc', limit: '1000' });
  if (isFinite(from)) params.set('since', new Date(from - 5000).toISOString());
  const f = state.filters;
  if (f.session) params.set('session_id', f.session);
  if (f.agent) params.set('agent_id', f.agent);
  if (f.event_type) params.set('event_type', f.event_type);
  if (f.source_app) params.set('source_app', f.source_app);
  for (let page = 0; page < REFILL_PAGES; page++) {
    const body = await getJSON(`api/v1/observability/events?${params}`);
    const events = body.events || [];
    const fresh = events.filter((ev) => !state.byKey.has(eventKey(ev)));
    for (const ev of fresh) state.pending.push({ ev, live: false });
    state.refilled += fresh.length;
    requestFrame();
    if (!body.next_cursor) break;
    params.set('cursor', body.next_cursor);
  }
}

// Filter changes made together (the clear button) go out as one subscribe.
let subscribeQueued = false;
export function subscribeSoon() {
  if (subscribeQueued) return;
  subscribeQueued = true;
  queueMicrotask(() => {
    subscribeQueued = false;
    sendSubscribe();
  });
}

function handleMessage(data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return;
  }
  switch (msg.type) {
    case 'backfill':
      state.backfills++;
      for (const ev of msg.events || []) state.pending.push({ ev, live: false });
      break;
    case 'event':
      state.pending.push({ ev: msg.event, live: true });
      if (state.pending.length > MAX_EVENTS) {
        // The tab is hidden (no frames): keep the newest.
        const over = state.pending.length - MAX_EVENTS;
        state.pending.splice(0, over);
        state.missed += over;
      }
      break;
    case 'heartbeat':
      showHeartbeat(msg.time);
      break;
    case 'session_state':
      boardSessionState(msg);
      break;
    case 'missed':
      state.missed += Number(msg.count) || 0;
      refillSoon();
      refreshBoardSoon();
      break;
    case 'broadcast':
      showBanner(`broadcast: ${clip(jsonText(msg.message), 500)}`);
      break;
    case 'error':
      showBanner(`live stream: ${msg.message}`);
      break;
    default:
      break;
  }
  requestFrame();
}

setInterval(() => {
  const sock = conn.ws;
  if (sock && sock.readyState === WebSocket.OPEN) {
    const now = Date.now();
    if (sock._pingAt && now - sock._pingAt > PONG_WAIT_MS) {
      sock.close(); // the connection is dead without knowing it
    } else if (!sock._pingAt && now - conn.lastMessageAt > QUIET_MS) {
      sock._pingAt = now;
      sock.send(JSON.stringify({ type: 'ping' }));
    }
  }
  updateRetryText();
}, 1000);
