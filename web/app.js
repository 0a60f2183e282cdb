// hivewatch dashboard: a live view of the events hivewatch commits, over the dashboard WebSocket stream.
//
// Plain JavaScript, no build step, no dependencies. Everything that reaches the DOM goes through textContent or
// attributes, never innerHTML, because event payloads are whatever agents sent.
//
// Rendering is batched: messages from the socket are queued and applied once per animation frame, the timeline is
// virtualized (only the rows in view exist in the DOM), and the agent lanes and the pulse chart are canvases, so
// tens of thousands of events stay cheap.
'use strict';

(() => {
  const ROW_H = 26;
  const OVERSCAN = 8;
  const MAX_EVENTS = 25000;
  const BACKFILL = 500;
  const REFILL_PAGES = 20;
  const OPTIONS_MAX = 300;
  const PULSE_SECONDS = 60;
  const WATERFALL_MAX_ROWS = 600;
  const TRANSCRIPT_PAGE = 200;
  const TEXT_MAX = 4000;
  // A connection silent this long is asked for a pong; one still silent PONG_WAIT_MS later is closed and reopened.
  const QUIET_MS = 15000;
  const PONG_WAIT_MS = 10000;

  // Filters the server applies too: the dashboard field, its key in a subscribe message, its query parameter.
  const SERVER_FIELDS = [
    ['source_app', 'source_apps', 'source_app'],
    ['session', 'sessions', 'session_id'],
    ['agent', 'agents', 'agent_id'],
    ['event_type', 'event_types', 'event_type'],
  ];
  const SELECT_FIELDS = ['source_app', 'session', 'agent', 'event_type', 'tool'];
  const TOOL_EVENTS = new Set(['PreToolUse', 'PostToolUse', 'PostToolUseFailure', 'PermissionRequest']);
  const TRANSCRIPT_EVENTS = new Set([
    'Stop', 'StopFailure', 'SubagentStop', 'UserPromptSubmit', 'PreCompact', 'PostCompact', 'SessionEnd',
  ]);

  // One color per event type: fixed ones for the types Claude Code sends, a stable hue for any other.
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

  const $ = (id) => document.getElementById(id);
  const dom = {
    status: $('status'),
    countShown: $('count-shown'),
    countTotal: $('count-total'),
    missed: $('missed'),
    pulse: $('pulse'),
    pulseRate: $('pulse-rate'),
    pulseTotal: $('pulse-total'),
    banner: $('banner'),
    timeline: $('timeline'),
    spacer: $('timeline-spacer'),
    empty: $('timeline-empty'),
    legend: $('legend'),
    search: $('filter-search'),
    clear: $('filter-clear'),
    placeholder: $('session-placeholder'),
    sessionView: $('session-view'),
    sessionChip: $('session-chip'),
    sessionTitle: $('session-title'),
    sessionSummary: $('session-summary'),
    sessionClose: $('session-close'),
    sessionRefresh: $('session-refresh'),
    eventDetail: $('event-detail'),
    lanes: $('lanes'),
    lanesSpan: $('lanes-span'),
    waterfall: $('waterfall'),
    waterfallInfo: $('waterfall-info'),
    transcript: $('transcript'),
    transcriptInfo: $('transcript-info'),
    auth: $('auth'),
    authToken: $('auth-token'),
    authMessage: $('auth-message'),
  };
  const selects = {
    source_app: $('filter-source-app'),
    session: $('filter-session'),
    agent: $('filter-agent'),
    event_type: $('filter-event-type'),
    tool: $('filter-tool'),
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function hashHue(s) {
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
  const typeColor = (t) => cachedColor('t:' + t, () => TYPE_COLORS[t] || `hsl(${hashHue(t)}, 70%, 62%)`);
  // Sessions take hues by order of first sight, a golden angle apart, so that the sessions on screen differ.
  let sessionsColored = 0;
  const sessionColor = (id) =>
    cachedColor('s:' + id, () => {
      const n = sessionsColored++;
      const hue = Math.round((hashHue(id) % 30) + n * 137.508) % 360;
      return `hsl(${hue}, 68%, ${n % 2 ? 62 : 52}%)`;
    });
  const agentColor = (id) =>
    cachedColor('a:' + id, () => (id === 'main' ? '#9aa4b8' : `hsl(${hashHue('agent:' + id)}, 60%, 62%)`));

  const shortId = (id) => (id ? String(id).slice(0, 8) : '');
  const eventKey = (ev) => ev.event_id || 'id:' + ev.id;

  function eventTime(ev) {
    if (ev._ms === undefined) ev._ms = Date.parse(ev.created_at) || 0;
    return ev._ms;
  }

  function clockTime(ms) {
    const d = new Date(ms);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function fmtDuration(ms) {
    if (ms == null || !isFinite(ms)) return '';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    if (ms < 3600000) return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
    return `${(ms / 3600000).toFixed(1)} h`;
  }

  function clip(s, n) {
    s = String(s);
    return s.length > n ? s.slice(0, n - 1) + '…' : s;
  }

  function jsonText(v) {
    try {
      return typeof v === 'string' ? v : JSON.stringify(v);
    } catch {
      return String(v);
    }
  }

  // A one-line description of what an event is about.
  function detailText(ev) {
    if (ev._d !== undefined) return ev._d;
    const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
    const attrs = p.attributes && typeof p.attributes === 'object' ? p.attributes : null;
    let s = '';
    const input = p.tool_input;
    if (input && typeof input === 'object') {
      s = input.command ?? input.file_path ?? input.pattern ?? input.url ?? input.description ?? input.prompt ??
        input.subject ?? jsonText(input);
    } else if (typeof p.prompt === 'string') {
      s = p.prompt;
    } else if (typeof p.message === 'string') {
      s = p.message;
    } else if (typeof p.error === 'string') {
      s = p.error;
    } else if (ev.source === 'otlp_span' && p.name) {
      s = p.name;
    } else if (attrs) {
      const bits = [];
      for (const k of ['hook_name', 'tool_name', 'decision', 'model', 'error', 'cost_usd', 'duration_ms']) {
        if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== '') bits.push(`${k}=${jsonText(attrs[k])}`);
      }
      s = bits.length ? bits.join(' ') : p.body !== undefined ? jsonText(p.body) : '';
    } else if (p.body !== undefined) {
      s = jsonText(p.body);
    } else if (typeof p.reason === 'string') {
      s = p.reason;
    } else if (typeof p.source === 'string') {
      s = p.source;
    }
    if (ev.latency_ms !== null && ev.latency_ms !== undefined) s = `${fmtDuration(ev.latency_ms)} · ${s}`;
    ev._d = clip(String(s ?? '').replace(/\s+/g, ' '), 240);
    return ev._d;
  }

  // What free-text search looks through: the event's fields and the start of its payload.
  function searchText(ev) {
    if (ev._q === undefined) {
      ev._q = [
        ev.event_type, ev.source, ev.source_app, ev.session_id, ev.agent_id, ev.tool_name, ev.tool_use_id,
        ev.prompt_id, ev.status, ev.severity, detailText(ev), jsonText(ev.payload).slice(0, 1500),
      ].join('\u0001').toLowerCase();
    }
    return ev._q;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // State

  const state = {
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

  function countValues(ev, delta) {
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

  function compileMatch() {
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

  function ingest(batch) {
    const events = state.events;
    let lastId = events.length ? events[events.length - 1].id : -Infinity;
    let outOfOrder = false;
    let liveNew = 0;
    const forView = [];
    for (const { ev, live } of batch) {
      if (!ev || typeof ev !== 'object') continue;
      const key = eventKey(ev);
      if (state.byKey.has(key)) continue;
      state.byKey.set(key, ev);
      if (typeof ev.id !== 'number') ev.id = lastId === -Infinity ? 0 : lastId + 1e-6;
      if (ev.id < lastId) outOfOrder = true;
      else lastId = ev.id;
      events.push(ev);
      countValues(ev, 1);
      if (live) {
        liveNew++;
        const t = eventTime(ev);
        if (t < state.liveSince) state.liveSince = t;
      }
      if (state.match(ev)) forView.push(ev);
      if (session.id && ev.session_id === session.id) sessionLiveEvent(ev);
    }
    if (outOfOrder) events.sort((a, b) => a.id - b.id);
    if (events.length > MAX_EVENTS) {
      const dropped = events.splice(0, events.length - Math.floor(MAX_EVENTS * 0.9));
      for (const ev of dropped) {
        state.byKey.delete(eventKey(ev));
        countValues(ev, -1);
      }
      state.viewDirty = true;
    }
    if (outOfOrder) state.viewDirty = true;
    if (!state.viewDirty && forView.length) {
      for (const ev of forView) state.view.push(ev);
      keepScrollAnchor(forView.length);
    }
    state.live += liveNew;
    if (liveNew) pulseAdd(liveNew);
  }

  // New rows enter at the top: a reader scrolled down keeps seeing the same rows.
  function keepScrollAnchor(added) {
    if (dom.timeline.scrollTop > ROW_H / 2) {
      timelineRender.anchorShift += added * ROW_H;
    }
  }

  function rebuildView() {
    const prevTop = dom.timeline.scrollTop;
    state.view = state.events.filter(state.match);
    state.viewDirty = false;
    // A changed filter starts from the newest event; a trim keeps the position.
    if (timelineRender.resetScroll) {
      dom.timeline.scrollTop = 0;
      timelineRender.resetScroll = false;
    } else {
      dom.timeline.scrollTop = prevTop;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Frame loop

  let frameRequested = false;
  function requestFrame() {
    if (!frameRequested) {
      frameRequested = true;
      requestAnimationFrame(flush);
    }
  }

  let lastOptionsAt = 0;
  let optionsTimer = 0;
  let lastLanesAt = 0;
  let lanesTimer = 0;
  let renderedVersions = {};
  function flush() {
    frameRequested = false;
    const t0 = performance.now();
    if (state.pending.length) ingest(state.pending.splice(0));
    if (state.viewDirty) rebuildView();
    renderTimeline();
    const now = performance.now();
    if (SELECT_FIELDS.some((f) => renderedVersions[f] !== state.versions[f])) {
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

  // ---------------------------------------------------------------------------------------------------------------
  // Timeline: a virtualized list, newest first

  const timelineRender = { pool: [], anchorShift: 0, resetScroll: false };

  function makeRow() {
    const row = el('div', 'event row-grid');
    row.setAttribute('role', 'listitem');
    const time = el('span', 'time');
    const typeCell = el('span', 'type');
    const badge = el('span', 'type-badge');
    typeCell.append(badge);
    const sessionCell = el('span', 'session');
    const chip = el('span', 'session-chip');
    chip.title = 'show only this session';
    sessionCell.append(chip);
    const agent = el('span', 'agent');
    const tool = el('span', 'tool');
    const detail = el('span', 'detail');
    row.append(time, typeCell, sessionCell, agent, tool, detail);
    row._cells = { time, badge, chip, agent, tool, detail };
    return row;
  }

  function fillRow(row, ev) {
    row._ev = ev;
    const c = row._cells;
    const ds = row.dataset;
    ds.eventType = ev.event_type;
    ds.session = ev.session_id;
    ds.agent = ev.agent_id;
    ds.status = ev.status;
    ds.source = ev.source;
    ds.id = ev.id;
    ds.tool = ev.tool_name || '';
    row.style.setProperty('--type-color', typeColor(ev.event_type));
    row.style.setProperty('--session-color', sessionColor(ev.session_id));
    c.time.textContent = clockTime(eventTime(ev));
    c.time.title = `${ev.created_at} (received ${ev.received_at})`;
    c.badge.textContent = ev.event_type;
    c.badge.title = `${ev.event_type} · ${ev.source}`;
    c.chip.textContent = shortId(ev.session_id);
    c.chip.title = `${ev.session_id} · ${ev.source_app} — show only this session`;
    c.agent.textContent = ev.agent_id === 'main' ? 'main' : shortId(ev.agent_id);
    c.agent.title = ev.agent_id;
    c.tool.textContent = ev.tool_name || '';
    const d = detailText(ev);
    c.detail.textContent = d;
    c.detail.title = d;
  }

  function renderTimeline() {
    const tl = dom.timeline;
    const view = state.view;
    const n = view.length;
    dom.spacer.style.height = `${n * ROW_H}px`;
    if (timelineRender.anchorShift) {
      tl.scrollTop += timelineRender.anchorShift;
      timelineRender.anchorShift = 0;
    }
    const top = tl.scrollTop;
    const height = tl.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    const pool = timelineRender.pool;
    const need = Math.max(0, last - first);
    while (pool.length < need) {
      const row = makeRow();
      pool.push(row);
      dom.spacer.append(row);
    }
    for (let j = 0; j < pool.length; j++) {
      const row = pool[j];
      if (j >= need) {
        if (row.isConnected) row.remove();
        row._ev = null;
        continue;
      }
      if (!row.isConnected) dom.spacer.append(row);
      const i = first + j;
      const ev = view[n - 1 - i];
      if (row._ev !== ev) fillRow(row, ev);
      row.classList.toggle('selected', eventKey(ev) === state.selectedKey);
      const y = i * ROW_H;
      if (row._y !== y) {
        row._y = y;
        row.style.transform = `translateY(${y}px)`;
      }
    }
    dom.empty.hidden = n > 0;
    if (!n) dom.empty.textContent = state.events.length ? 'No events match the filters.' : 'Waiting for events…';
  }

  dom.timeline.addEventListener('scroll', requestFrame, { passive: true });
  new ResizeObserver(requestFrame).observe(dom.timeline);

  dom.timeline.addEventListener('click', (e) => {
    const row = e.target.closest('.event');
    if (!row || !row._ev) return;
    const ev = row._ev;
    if (e.target.closest('.session-chip')) {
      setFilter('session', ev.session_id);
      return;
    }
    state.selectedKey = eventKey(ev);
    openSession(ev.session_id, ev);
    requestFrame();
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Filters

  function optionLabel(field, value) {
    if (field === 'session') {
      const app = state.sessionApps.get(value);
      return app ? `${shortId(value)} · ${app}` : shortId(value);
    }
    if (field === 'agent') return value === 'main' ? 'main' : value;
    return value;
  }

  function renderOptions() {
    for (const f of SELECT_FIELDS) {
      if (renderedVersions[f] === state.versions[f]) continue;
      renderedVersions[f] = state.versions[f];
      const sel = selects[f];
      const current = state.filters[f];
      const values = new Set(state.values[f].keys());
      if (f === 'session') for (const id of state.sessionApps.keys()) values.add(id);
      let sorted;
      if (f === 'session' || f === 'agent') {
        // Most recent first; sessions known only from the sessions list keep its order, after them.
        const last = state.lastSeen[f];
        const rank = (v) => (v === 'main' ? Infinity : last.has(v) ? last.get(v) : -Infinity);
        sorted = [...values].sort((a, b) => rank(b) - rank(a));
      } else {
        sorted = [...values].sort((a, b) => a.localeCompare(b));
      }
      sorted = sorted.slice(0, OPTIONS_MAX);
      if (current && !sorted.includes(current)) sorted.unshift(current);
      const frag = document.createDocumentFragment();
      const all = el('option', null, 'all');
      all.value = '';
      frag.append(all);
      for (const v of sorted) {
        const o = el('option', null, optionLabel(f, v));
        o.value = v;
        frag.append(o);
      }
      sel.replaceChildren(frag);
      sel.value = current;
      if (f === 'event_type') renderLegend(sorted);
    }
  }

  function renderLegend(types) {
    const frag = document.createDocumentFragment();
    for (const t of types) {
      const item = el('span', 'legend-item', t);
      item.dataset.eventType = t;
      item.style.setProperty('--type-color', typeColor(t));
      item.title = `show only ${t}`;
      frag.append(item);
    }
    dom.legend.replaceChildren(frag);
  }

  dom.legend.addEventListener('click', (e) => {
    const item = e.target.closest('.legend-item');
    if (!item) return;
    const t = item.dataset.eventType;
    setFilter('event_type', state.filters.event_type === t ? '' : t);
  });

  function setFilter(field, value) {
    value = value || '';
    if (state.filters[field] === value) return;
    state.filters[field] = value;
    if (selects[field]) {
      if (value && ![...selects[field].options].some((o) => o.value === value)) {
        state.versions[field]++;
        renderOptions();
      }
      selects[field].value = value;
      selects[field].classList.toggle('active', !!value);
    } else if (field === 'q') {
      dom.search.classList.toggle('active', !!value);
      if (dom.search.value !== value) dom.search.value = value;
    }
    compileMatch();
    state.viewDirty = true;
    timelineRender.resetScroll = true;
    requestFrame();
    if (SERVER_FIELDS.some(([f]) => f === field)) subscribeSoon();
    if (field === 'session' && value) openSession(value);
  }

  for (const f of SELECT_FIELDS) {
    selects[f].addEventListener('change', () => setFilter(f, selects[f].value));
  }

  let searchTimer = 0;
  dom.search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => setFilter('q', dom.search.value), 120);
  });

  dom.clear.addEventListener('click', () => {
    for (const f of Object.keys(state.filters)) setFilter(f, '');
  });

  function serverFilters() {
    const out = {};
    for (const [field, key] of SERVER_FIELDS) out[key] = state.filters[field] ? [state.filters[field]] : [];
    return out;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Read token: a hivewatch started with --read-token wants it on every API request (a bearer header) and on the
  // live stream (the access_token parameter: browsers cannot set headers on a WebSocket). The page takes it from
  // its own address once (`/?access_token=…` or `/#access_token=…`), keeps it in this browser's storage and
  // removes it from the address bar; or asks for it when the server answers 401.

  const TOKEN_KEY = 'hivewatch.readToken';
  const auth = { token: null };

  function initToken() {
    const url = new URL(location.href);
    const hash = new URLSearchParams(url.hash.slice(1));
    const given = url.searchParams.get('access_token') || hash.get('access_token');
    if (given) {
      saveToken(given);
      url.searchParams.delete('access_token');
      hash.delete('access_token');
      url.hash = hash.toString();
      history.replaceState(null, '', url);
    } else {
      try {
        auth.token = localStorage.getItem(TOKEN_KEY);
      } catch {
        auth.token = null;
      }
    }
  }

  function saveToken(token) {
    auth.token = token || null;
    try {
      if (auth.token) localStorage.setItem(TOKEN_KEY, auth.token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage may be disabled: the token lasts as long as the page
    }
  }

  function authHeaders() {
    return auth.token ? { authorization: `Bearer ${auth.token}` } : {};
  }

  function showAuth(message) {
    dom.authMessage.textContent = message;
    dom.auth.hidden = false;
    setStatus('closed', 'read token needed');
    dom.authToken.focus();
  }

  // After a connection failed before opening: is it the token? (Otherwise hivewatch is down or restarting.)
  async function tokenRefused() {
    try {
      const resp = await fetch(new URL('api/v1/observability/sessions?limit=1', document.baseURI), {
        headers: authHeaders(),
      });
      return resp.status === 401;
    } catch {
      return false;
    }
  }

  dom.auth.addEventListener('submit', (e) => {
    e.preventDefault();
    saveToken(dom.authToken.value.trim());
    dom.authToken.value = '';
    dom.auth.hidden = true;
    conn.attempt = 0;
    if (conn.ws) conn.ws.close();
    else connect();
    loadKnownSessions();
    if (session.id) loadSession(true);
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Live stream

  const conn = { ws: null, attempt: 0, retryTimer: 0, retryAt: 0, lastMessageAt: 0, heartbeat: null, state: '' };

  function setStatus(s, text) {
    conn.state = s;
    dom.status.dataset.state = s;
    dom.status.textContent = text;
    dom.status.title = conn.heartbeat ? `last heartbeat ${conn.heartbeat}` : 'live stream';
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

  function connect() {
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
        if (!conn.ws) showAuth(auth.token ? 'The read token was refused; enter the right one.' : 'This hivewatch needs its read token.');
        return;
      }
      if (!conn.ws) scheduleReconnect();
    };
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
  function subscribeSoon() {
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
        conn.heartbeat = msg.time;
        dom.status.title = `last heartbeat ${msg.time}`;
        break;
      case 'missed':
        state.missed += Number(msg.count) || 0;
        refillSoon();
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

  let bannerTimer = 0;
  function showBanner(text) {
    dom.banner.textContent = text;
    dom.banner.title = text;
    dom.banner.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => {
      dom.banner.hidden = true;
    }, 15000);
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

  function renderCounters() {
    dom.countShown.textContent = state.view.length.toLocaleString();
    dom.countTotal.textContent = state.events.length.toLocaleString();
    dom.missed.hidden = !state.missed;
    if (state.missed) {
      dom.missed.textContent = `${state.missed.toLocaleString()} dropped by the server (slow client)` +
        (state.refilled ? `, ${state.refilled.toLocaleString()} read back` : '');
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Pulse: live events per second over the last minute

  const pulse = { secs: new Float64Array(PULSE_SECONDS).fill(-1), counts: new Uint32Array(PULSE_SECONDS), drawn: 0 };

  function pulseAdd(n) {
    const s = Math.floor(Date.now() / 1000);
    const i = s % PULSE_SECONDS;
    if (pulse.secs[i] !== s) {
      pulse.secs[i] = s;
      pulse.counts[i] = 0;
    }
    pulse.counts[i] += n;
    if (performance.now() - pulse.drawn > 250) drawPulse();
  }

  function drawPulse() {
    pulse.drawn = performance.now();
    const canvas = dom.pulse;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(60, canvas.clientWidth || 240);
    const h = Math.max(20, canvas.clientHeight || 40);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const now = Math.floor(Date.now() / 1000);
    const series = [];
    for (let k = PULSE_SECONDS - 1; k >= 0; k--) {
      const s = now - k;
      const i = s % PULSE_SECONDS;
      series.push(pulse.secs[i] === s ? pulse.counts[i] : 0);
    }
    const max = Math.max(1, ...series);
    const total = series.reduce((a, b) => a + b, 0);
    const bw = w / PULSE_SECONDS;
    ctx.fillStyle = '#5c9cff';
    for (let k = 0; k < series.length; k++) {
      if (!series[k]) continue;
      const bh = Math.max(1, (series[k] / max) * (h - 6));
      ctx.fillRect(k * bw + 0.5, h - bh, Math.max(1, bw - 1), bh);
    }
    ctx.fillStyle = '#8b93a5';
    ctx.font = '10px system-ui, sans-serif';
    ctx.fillText(`${max}/s`, 3, 10);
    const rate = series[series.length - 2]; // the last whole second
    dom.pulseRate.textContent = rate.toLocaleString();
    dom.pulseTotal.textContent = total.toLocaleString();
    canvas.dataset.rate = rate;
    canvas.dataset.total = total;
    canvas.dataset.max = max;
  }

  setInterval(drawPulse, 1000);

  // ---------------------------------------------------------------------------------------------------------------
  // Session view: agent lanes, tool-call waterfall, transcript

  const session = {
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
    transcriptShown: 0,
    entries: [],
  };

  async function getJSON(path) {
    const resp = await fetch(new URL(path, document.baseURI), {
      headers: { accept: 'application/json', ...authHeaders() },
    });
    const body = await resp.json().catch(() => null);
    if (resp.status === 401) showAuth(auth.token ? 'The read token was refused; enter the right one.' : 'This hivewatch needs its read token.');
    if (!resp.ok) {
      const err = new Error((body && body.error) || `${resp.status} ${resp.statusText}`);
      err.status = resp.status;
      throw err;
    }
    return body;
  }

  function sessionAddEvent(ev) {
    const key = eventKey(ev);
    if (session.keys.has(key)) return false;
    session.keys.add(key);
    session.events.push(ev);
    session.lanesDirty = true;
    return true;
  }

  function sessionLiveEvent(ev) {
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

  function openSession(id, ev) {
    if (!id) return;
    const changed = session.id !== id;
    if (changed) {
      session.id = id;
      session.data = null;
      session.events = [];
      session.keys = new Set();
      session.entries = [];
      session.transcriptShown = 0;
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
  dom.sessionChip.addEventListener('click', () => session.id && setFilter('session', session.id));

  async function loadSession(withTranscript) {
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
      renderWaterfall();
    } else {
      const notYet = timeline.reason && timeline.reason.status === 404;
      dom.sessionSummary.replaceChildren(
        el('span', null, notYet ? 'not stored yet' : `could not load the session: ${timeline.reason.message}`),
      );
      dom.waterfall.replaceChildren(el('div', 'empty-note', notYet ? 'no tool calls yet' : 'unavailable'));
    }
    if (withTranscript) {
      if (transcript.status === 'fulfilled' && transcript.value) {
        session.entries = transcript.value.entries || [];
        renderTranscript();
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

  function showEventDetail(ev) {
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

  // Lanes: one canvas per agent, events placed by time on a shared axis.
  function renderLanes() {
    session.lanesDirty = false;
    if (!session.id) return;
    const events = session.events;
    if (!events.length) {
      dom.lanes.replaceChildren(el('div', 'empty-note', 'no events of this session received yet'));
      session.laneEls.clear();
      dom.lanesSpan.textContent = '';
      return;
    }
    let t0 = Infinity;
    let t1 = -Infinity;
    const byAgent = new Map();
    for (const ev of events) {
      const t = eventTime(ev);
      if (t < t0) t0 = t;
      if (t > t1) t1 = t;
      const a = ev.agent_id || 'main';
      let list = byAgent.get(a);
      if (!list) byAgent.set(a, (list = []));
      list.push(ev);
    }
    const span = Math.max(1, t1 - t0);
    const agents = [...byAgent.keys()].sort((a, b) => {
      if (a === 'main') return -1;
      if (b === 'main') return 1;
      return eventTime(byAgent.get(a)[0]) - eventTime(byAgent.get(b)[0]);
    });
    if (dom.lanes.querySelector('.empty-note')) dom.lanes.replaceChildren();
    let axis = dom.lanes.querySelector('.lane-axis');
    if (!axis) {
      axis = el('div', 'lane-axis');
      axis.append(el('span'), el('span'));
    }
    axis.firstChild.textContent = clockTime(t0);
    axis.lastChild.textContent = clockTime(t1);
    const order = [];
    for (const agent of agents) {
      let lane = session.laneEls.get(agent);
      if (!lane) {
        lane = el('div', 'lane');
        lane.dataset.agent = agent;
        const label = el('div', 'lane-label');
        label.style.borderLeft = `3px solid ${agentColor(agent)}`;
        label.style.paddingLeft = '5px';
        const canvas = el('canvas');
        canvas.addEventListener('click', (e) => laneClick(lane, e));
        lane.append(label, canvas);
        lane._label = label;
        lane._canvas = canvas;
        session.laneEls.set(agent, lane);
      }
      const list = byAgent.get(agent);
      list.sort((a, b) => eventTime(a) - eventTime(b));
      lane._events = list;
      lane._t0 = t0;
      lane._span = span;
      lane.dataset.count = list.length;
      lane._label.replaceChildren(
        document.createTextNode(agent === 'main' ? 'main ' : `${clip(agent, 14)} `),
        el('small', null, `${list.length}`),
      );
      lane._label.title = `agent ${agent}: ${list.length} events`;
      order.push(lane);
    }
    for (const [agent, lane] of session.laneEls) {
      if (!byAgent.has(agent)) {
        lane.remove();
        session.laneEls.delete(agent);
      }
    }
    dom.lanes.replaceChildren(...order, axis);
    for (const lane of order) drawLane(lane);
    dom.lanesSpan.textContent = `${agents.length} agent${agents.length === 1 ? '' : 's'} · ${events.length} events · ${fmtDuration(span)}`;
  }

  function drawLane(lane) {
    const canvas = lane._canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(50, canvas.clientWidth || 400);
    const h = Math.max(10, canvas.clientHeight || 22);
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const seen = new Set();
    const errors = [];
    for (const ev of lane._events) {
      const x = Math.round(2 + ((eventTime(ev) - lane._t0) / lane._span) * (w - 4));
      const key = x * 1000 + (hashHue(ev.event_type) % 1000);
      if (ev.status === 'error') errors.push(x);
      if (seen.has(key)) continue;
      seen.add(key);
      ctx.fillStyle = typeColor(ev.event_type);
      ctx.fillRect(x - 1, 3, 2, h - 6);
    }
    ctx.fillStyle = '#ef4444';
    for (const x of errors) ctx.fillRect(x - 2, 0, 4, 3);
  }

  function laneClick(lane, e) {
    const rect = lane._canvas.getBoundingClientRect();
    const w = rect.width;
    const t = lane._t0 + ((e.clientX - rect.left - 2) / Math.max(1, w - 4)) * lane._span;
    let best = null;
    let bestDist = Infinity;
    for (const ev of lane._events) {
      const d = Math.abs(eventTime(ev) - t);
      if (d < bestDist) {
        bestDist = d;
        best = ev;
      }
    }
    if (best && (bestDist / lane._span) * w < 8) {
      state.selectedKey = eventKey(best);
      showEventDetail(best);
      requestFrame();
    }
  }

  // Waterfall: one bar per tool call, placed by start, as wide as its latency; failures red.
  function renderWaterfall() {
    const calls = (session.data && session.data.tool_calls) || [];
    if (!calls.length) {
      dom.waterfall.replaceChildren(el('div', 'empty-note', 'no tool calls'));
      dom.waterfallInfo.textContent = '';
      return;
    }
    const now = Date.now();
    const rows = [];
    for (const c of calls) {
      const fin = c.finished_at ? Date.parse(c.finished_at) : null;
      let start = c.started_at ? Date.parse(c.started_at) : null;
      if (start === null && fin !== null) start = fin - (c.latency_ms || 0);
      if (start === null) continue;
      let end = fin;
      if (end === null) end = c.status === 'running' ? Math.max(start, now) : start + (c.latency_ms || 0);
      rows.push({ c, start, end });
    }
    rows.sort((a, b) => a.start - b.start);
    let t0 = Infinity;
    let t1 = -Infinity;
    for (const r of rows) {
      t0 = Math.min(t0, r.start);
      t1 = Math.max(t1, r.end);
    }
    const span = Math.max(1, t1 - t0);
    const failed = rows.filter((r) => r.c.status === 'error').length;
    const running = rows.filter((r) => r.c.status === 'running').length;
    dom.waterfallInfo.textContent =
      `${rows.length} call${rows.length === 1 ? '' : 's'} · ${failed} failed` +
      (running ? ` · ${running} running` : '') +
      ` · ${fmtDuration(span)}` +
      (rows.length > WATERFALL_MAX_ROWS ? ` · first ${WATERFALL_MAX_ROWS} shown` : '');
    const frag = document.createDocumentFragment();
    for (const { c, start, end } of rows.slice(0, WATERFALL_MAX_ROWS)) {
      const row = el('div', 'wf-row');
      row.dataset.toolUseId = c.tool_use_id;
      const label = el('div', 'wf-label', c.tool_name || '(tool)');
      label.style.setProperty('--agent-color', agentColor(c.agent_id || 'main'));
      label.title = `${c.tool_name || ''} · ${c.tool_use_id} · agent ${c.agent_id}`;
      const track = el('div', 'wf-track');
      const left = ((start - t0) / span) * 100;
      const width = Math.max(0.3, ((end - start) / span) * 100);
      const bar = el('div', 'bar');
      if (c.status === 'error') bar.classList.add('failed');
      if (c.status === 'running') bar.classList.add('running');
      bar.dataset.status = c.status;
      bar.dataset.tool = c.tool_name || '';
      bar.dataset.toolUseId = c.tool_use_id;
      bar.dataset.agent = c.agent_id || 'main';
      bar.style.left = `${left}%`;
      bar.style.width = `${Math.min(width, 100 - left)}%`;
      const latency = c.latency_ms !== null && c.latency_ms !== undefined ? fmtDuration(c.latency_ms) : c.status;
      bar.title = `${c.tool_name || ''} ${latency} (${c.status}) started ${c.started_at || '?'}`;
      const text = el('span', 'bar-text', `${latency}${c.status === 'error' ? ' · failed' : ''}`);
      if (left + width < 82) {
        text.style.left = `${left + width}%`;
      } else if (width > 20) {
        text.style.left = `${left}%`;
        text.classList.add('inside');
      } else {
        text.style.right = `${100 - left}%`;
        text.style.paddingRight = '4px';
      }
      track.append(bar, text);
      row.append(label, track);
      frag.append(row);
    }
    dom.waterfall.replaceChildren(frag);
  }

  // Transcript: text as is, tool blocks summarized.
  function renderTranscript() {
    const entries = session.entries;
    const agents = new Set(entries.map((e) => e.agent_id));
    dom.transcriptInfo.textContent = entries.length
      ? `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} · ${agents.size} agent${agents.size === 1 ? '' : 's'}`
      : '';
    if (!entries.length) {
      dom.transcript.replaceChildren(el('div', 'empty-note', 'no transcript stored for this session'));
      session.transcriptShown = 0;
      return;
    }
    session.transcriptShown = 0;
    dom.transcript.replaceChildren();
    appendTranscript(TRANSCRIPT_PAGE);
  }

  function appendTranscript(count) {
    const entries = session.entries;
    const old = dom.transcript.querySelector('.more-button');
    if (old) old.remove();
    const frag = document.createDocumentFragment();
    const end = Math.min(entries.length, session.transcriptShown + count);
    for (let i = session.transcriptShown; i < end; i++) frag.append(renderEntry(entries[i]));
    session.transcriptShown = end;
    if (end < entries.length) {
      const more = el('button', 'more-button', `show ${Math.min(TRANSCRIPT_PAGE, entries.length - end)} more of ${entries.length - end}`);
      more.type = 'button';
      more.addEventListener('click', () => appendTranscript(TRANSCRIPT_PAGE));
      frag.append(more);
    }
    dom.transcript.append(frag);
  }

  function renderEntry(entry) {
    const node = el('div', 'entry');
    node.dataset.role = entry.role;
    node.dataset.agent = entry.agent_id;
    const head = el('div', 'entry-head');
    head.append(el('span', 'role', entry.role));
    if (entry.agent_id && entry.agent_id !== 'main') {
      const a = el('span', null, `agent ${clip(entry.agent_id, 14)}`);
      a.style.color = agentColor(entry.agent_id);
      head.append(a);
    }
    if (entry.model) head.append(el('span', null, entry.model));
    if (entry.input_tokens || entry.output_tokens) {
      head.append(el('span', null, `${entry.input_tokens ?? 0} in / ${entry.output_tokens ?? 0} out`));
    }
    if (entry.created_at) head.append(el('span', null, new Date(entry.created_at).toLocaleTimeString()));
    node.append(head);
    for (const block of contentBlocks(entry.content)) node.append(block);
    return node;
  }

  function textBlock(text, cls) {
    text = String(text);
    if (text.length <= TEXT_MAX) return el('div', `block ${cls}`, text);
    const details = el('details', `block ${cls}`);
    details.append(el('summary', null, `${clip(text, 300)} (${text.length.toLocaleString()} characters)`));
    details.append(document.createTextNode(text.slice(0, 100000)));
    return details;
  }

  function summarizeInput(input) {
    if (!input || typeof input !== 'object') return input === undefined ? '' : jsonText(input);
    const main = input.command ?? input.file_path ?? input.pattern ?? input.url ?? input.description ?? input.prompt;
    return clip(main !== undefined ? jsonText(main) : jsonText(input), 300);
  }

  function resultText(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content.map((b) => (b && b.type === 'text' ? b.text : b && b.type ? `[${b.type}]` : jsonText(b))).join('\n');
    }
    return content === undefined || content === null ? '' : jsonText(content);
  }

  function contentBlocks(content) {
    if (typeof content === 'string') return [textBlock(content, 'text')];
    if (Array.isArray(content)) {
      const out = [];
      for (const b of content) {
        if (!b || typeof b !== 'object') {
          out.push(textBlock(jsonText(b), 'text'));
          continue;
        }
        switch (b.type) {
          case 'text':
            out.push(textBlock(b.text ?? '', 'text'));
            break;
          case 'tool_use':
            out.push(el('div', 'block tool-use', `→ ${b.name || 'tool'}: ${summarizeInput(b.input)}`));
            break;
          case 'tool_result': {
            const text = resultText(b.content);
            const node = el('div', 'block tool-result', `← ${b.is_error ? 'error' : 'result'}: ${clip(text, 400)}`);
            if (b.is_error) node.classList.add('error');
            node.title = clip(text, 4000);
            out.push(node);
            break;
          }
          case 'thinking':
          case 'redacted_thinking': {
            const d = el('details', 'block meta');
            d.append(el('summary', null, 'thinking'));
            d.append(document.createTextNode(clip(b.thinking ?? '', 20000)));
            out.push(d);
            break;
          }
          case 'image':
            out.push(el('div', 'block meta', '[image]'));
            break;
          default:
            out.push(el('div', 'block meta', `[${b.type || 'block'}] ${clip(jsonText(b), 200)}`));
        }
      }
      return out;
    }
    if (content && typeof content === 'object') {
      // A transcript line without message content (an attachment, a system note): what kind it is.
      const a = content.attachment;
      if (a && typeof a === 'object') return [el('div', 'block meta', `attachment: ${a.type || 'unknown'}`)];
      if (typeof content.content === 'string') return [textBlock(content.content, 'meta')];
      const kind = [content.type, content.subtype].filter(Boolean).join(' ');
      return [el('div', 'block meta', clip(kind || jsonText(content), 300))];
    }
    return [el('div', 'block meta', content === undefined || content === null ? '' : String(content))];
  }

  window.addEventListener('resize', () => {
    session.lanesDirty = true;
    requestFrame();
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Start

  async function loadKnownSessions() {
    try {
      const body = await getJSON('api/v1/observability/sessions?limit=200');
      for (const s of body.sessions || []) {
        if (!state.sessionApps.has(s.session_id)) {
          state.sessionApps.set(s.session_id, s.source_app);
          state.versions.session++;
        }
      }
      requestFrame();
    } catch {
      // the list is a convenience; the stream fills the filters anyway
    }
  }

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
      connection: conn.state,
      rows: timelineRender.pool.filter((r) => r.isConnected).length,
      lastFlushMs: Math.round(state.lastFlushMs * 10) / 10,
      maxFlushMs: Math.round(state.maxFlushMs * 10) / 10,
      filters: { ...state.filters },
    }),
    has: (eventId) => state.byKey.has(eventId),
    dropConnection: () => conn.ws && conn.ws.close(),
    setFilter,
    openSession,
  };

  initToken();
  compileMatch();
  loadKnownSessions();
  connect();
  drawPulse();
  requestFrame();
})();
