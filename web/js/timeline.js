// The event timeline: a virtualized list of the events that pass the filters, newest first. Only the rows in view
// exist in the DOM (a pool of row elements, refilled as the list scrolls); a reader scrolled down keeps seeing the
// same rows while new events enter at the top. Configuration records are folded into one row above the list,
// which shows them on request.
import { sessionColor, typeColor } from './colors.js';
import { dom, el } from './dom.js';
import { clockTime, detailText, eventKey, eventTime, shortId } from './format.js';
import { requestFrame } from './frame.js';
import { CONFIG_TYPES, state } from './store.js';

const ROW_H = 26;
const OVERSCAN = 8;

const timelineRender = { pool: [], anchorShift: 0, resetScroll: false };

// New rows enter at the top: a reader scrolled down keeps seeing the same rows.
export function keepScrollAnchor(added) {
  if (dom.timeline.scrollTop > ROW_H / 2) {
    timelineRender.anchorShift += added * ROW_H;
  }
}

// The next rebuild of the view (a changed filter) starts from the newest event.
export function scrollToNewest() {
  timelineRender.resetScroll = true;
}

export function rebuildView() {
  const prevTop = dom.timeline.scrollTop;
  let folded = 0;
  state.view = state.events.filter((ev) => {
    if (state.match(ev)) return true;
    if (state.configFolded(ev)) folded++;
    return false;
  });
  state.configHidden = folded;
  state.viewDirty = false;
  // A changed filter starts from the newest event; a trim keeps the position.
  if (timelineRender.resetScroll) {
    dom.timeline.scrollTop = 0;
    timelineRender.resetScroll = false;
  } else {
    dom.timeline.scrollTop = prevTop;
  }
}

// The rows in the DOM now.
export function rowsInDom() {
  return timelineRender.pool.filter((r) => r.isConnected).length;
}

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

export function renderTimeline() {
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
  if (!n) {
    dom.empty.textContent = state.configHidden
      ? 'Only configuration records so far.'
      : state.events.length ? 'No events match the filters.' : 'Waiting for events…';
  }
  renderConfigFold();
}

// The row that stands for the folded configuration records (none when the event-type filter asks for one).
function renderConfigFold() {
  const asked = CONFIG_TYPES.has(state.filters.event_type);
  const hidden = state.configHidden;
  const fold = dom.configFold;
  fold.hidden = asked || (!hidden && !state.showConfig);
  fold.dataset.hidden = String(hidden);
  if (fold.hidden) return;
  dom.configFoldText.textContent = state.showConfig
    ? 'configuration records shown'
    : `${hidden.toLocaleString()} configuration record${hidden === 1 ? '' : 's'} folded`;
  dom.configToggle.textContent = state.showConfig ? 'fold them' : 'show';
  dom.configToggle.setAttribute('aria-pressed', String(state.showConfig));
}

// Clicks on a row: on its session chip, `onChip(ev)`; anywhere else, `onRow(ev)`.
export function onRowClick(onChip, onRow) {
  dom.timeline.addEventListener('click', (e) => {
    const row = e.target.closest('.event');
    if (!row || !row._ev) return;
    const ev = row._ev;
    if (e.target.closest('.session-chip')) {
      onChip(ev);
      return;
    }
    onRow(ev);
  });
}

dom.timeline.addEventListener('scroll', requestFrame, { passive: true });
new ResizeObserver(requestFrame).observe(dom.timeline);
