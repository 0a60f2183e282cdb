// The filter bar: the select options (the values seen, sessions and agents most recent first), the event-type
// legend, free-text search, clear; setFilter(), which refilters the timeline, resubscribes the stream for the
// fields the server filters, and opens a chosen session; and the sessions list that seeds the session filter.
import { getJSON } from './api.js';
import { typeColor } from './colors.js';
import { dom, el, selects } from './dom.js';
import { shortId } from './format.js';
import { requestFrame } from './frame.js';
import { openSession, session } from './session.js';
import { SELECT_FIELDS, SERVER_FIELDS, compileMatch, state } from './store.js';
import { subscribeSoon } from './stream.js';
import { scrollToNewest } from './timeline.js';

const OPTIONS_MAX = 300;

const renderedVersions = {};

// Values came or went since the options were last rendered.
export function optionsStale() {
  return SELECT_FIELDS.some((f) => renderedVersions[f] !== state.versions[f]);
}

function optionLabel(field, value) {
  if (field === 'session') {
    const app = state.sessionApps.get(value);
    return app ? `${shortId(value)} · ${app}` : shortId(value);
  }
  if (field === 'agent') return value === 'main' ? 'main' : value;
  return value;
}

export function renderOptions() {
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

export function setFilter(field, value) {
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
  session.lanesDirty = true;
  scrollToNewest();
  requestFrame();
  if (SERVER_FIELDS.some(([f]) => f === field)) subscribeSoon();
  if (field === 'session' && value) openSession(value);
}

for (const f of SELECT_FIELDS) {
  selects[f].addEventListener('change', () => setFilter(f, selects[f].value));
}

// Configuration records shown in the timelines, or folded away.
export function showConfig(on) {
  state.showConfig = !!on;
  compileMatch();
  state.viewDirty = true;
  session.lanesDirty = true;
  requestFrame();
}

dom.configToggle.addEventListener('click', () => showConfig(!state.showConfig));
dom.lanesConfig.addEventListener('click', () => showConfig(!state.showConfig));

let searchTimer = 0;
dom.search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => setFilter('q', dom.search.value), 120);
});

dom.clear.addEventListener('click', () => {
  for (const f of Object.keys(state.filters)) setFilter(f, '');
});

// The sessions the server knows, for the session filter before their events arrive.
export async function loadKnownSessions() {
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
