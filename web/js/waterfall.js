// The tool-call waterfall of the open session: one bar per tool call, placed by its start, as wide as its latency;
// failed calls red, running ones marked.
import { agentColor } from './colors.js';
import { dom, el } from './dom.js';
import { fmtDuration } from './format.js';

const WATERFALL_MAX_ROWS = 600;

// `calls`: the session's `tool_calls`, as the sessions API gives them.
export function renderWaterfall(calls) {
  calls = calls || [];
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
