// Small formatting helpers: event keys and times, clock times and durations, clipped text, and the one-line
// description and the search text of an event (both cached on the event).

export const shortId = (id) => (id ? String(id).slice(0, 8) : '');
export const eventKey = (ev) => ev.event_id || 'id:' + ev.id;

export function eventTime(ev) {
  if (ev._ms === undefined) ev._ms = Date.parse(ev.created_at) || 0;
  return ev._ms;
}

export function clockTime(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export function fmtDuration(ms) {
  if (ms == null || !isFinite(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  if (ms < 3600000) return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  return `${(ms / 3600000).toFixed(1)} h`;
}

// How long something has lasted, to the second, as a ticking display shows it: `42 s`, `3 min 05 s`, `2 h 07 min`.
export function fmtAge(ms) {
  if (ms == null || !isFinite(ms)) return '';
  const s = Math.max(0, Math.floor(ms / 1000));
  const p = (n) => String(n).padStart(2, '0');
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${p(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${p(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// A token count, short: `950`, `12.3k`, `4.1M`.
export function fmtTokens(n) {
  n = Number(n) || 0;
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

// A cost in US dollars: cents for a dollar or more, four decimals below.
export function fmtCost(usd) {
  usd = Number(usd) || 0;
  return usd >= 1 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(4)}`;
}

export function clip(s, n) {
  s = String(s);
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

export function jsonText(v) {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v);
  } catch {
    return String(v);
  }
}

// A one-line description of what an event is about.
export function detailText(ev) {
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
export function searchText(ev) {
  if (ev._q === undefined) {
    ev._q = [
      ev.event_type, ev.source, ev.source_app, ev.session_id, ev.agent_id, ev.tool_name, ev.tool_use_id,
      ev.prompt_id, ev.status, ev.severity, detailText(ev), jsonText(ev.payload).slice(0, 1500),
    ].join('\u0001').toLowerCase();
  }
  return ev._q;
}
