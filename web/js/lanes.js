// The agent swim lanes of the open session: one canvas per agent (main first, then by first event), the session's
// events placed by time on a shared axis, errors marked; a click near an event shows it. Configuration records are
// left out unless asked for, and counted beside the heading.
import { agentColor, hashHue, typeColor } from './colors.js';
import { dom, el } from './dom.js';
import { clip, clockTime, eventKey, eventTime, fmtDuration } from './format.js';
import { requestFrame } from './frame.js';
import { session, showEventDetail } from './session.js';
import { isConfig, showingConfig, state } from './store.js';

function renderLanesFold(folded, configs) {
  const b = dom.lanesConfig;
  b.hidden = !folded && !(state.showConfig && configs);
  b.dataset.hidden = String(folded);
  b.textContent = folded
    ? `${folded.toLocaleString()} configuration record${folded === 1 ? '' : 's'} folded · show`
    : 'fold configuration records';
  b.setAttribute('aria-pressed', String(!folded));
}

export function renderLanes() {
  session.lanesDirty = false;
  if (!session.id) return;
  const shown = showingConfig();
  const configs = session.events.reduce((n, ev) => n + (isConfig(ev) ? 1 : 0), 0);
  const events = shown ? session.events : session.events.filter((ev) => !isConfig(ev));
  renderLanesFold(shown ? 0 : configs, configs);
  if (!events.length) {
    const note = configs ? 'only configuration records so far' : 'no events of this session received yet';
    dom.lanes.replaceChildren(el('div', 'empty-note', note));
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

window.addEventListener('resize', () => {
  session.lanesDirty = true;
  requestFrame();
});
