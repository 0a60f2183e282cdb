// Applying the messages queued since the last frame: each event once (by event id), kept in commit order, the
// oldest trimmed past MAX_EVENTS; added to the timeline view, the open session and the pulse. Live events also
// tell the board to read the sessions again soon (their tokens, cost, running tool).
import { refreshBoardSoon } from './board.js';
import { eventKey, eventTime } from './format.js';
import { pulseAdd } from './pulse.js';
import { session, sessionLiveEvent } from './session.js';
import { MAX_EVENTS, countValues, state } from './store.js';
import { keepScrollAnchor } from './timeline.js';

// `batch`: `{ ev, live }` items, `live` for events pushed by the stream as they were committed.
export function ingest(batch) {
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
    else if (state.configFolded(ev)) state.configHidden++;
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
  if (liveNew) {
    pulseAdd(liveNew);
    refreshBoardSoon();
  }
}
