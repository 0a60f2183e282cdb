// The top bar's readouts: the live-stream indicator (#status), the banner for messages from the stream, and the
// event counters.
import { dom } from './dom.js';
import { state } from './store.js';

// What the indicator shows: the stream's state (`connecting`, `open`, `reconnecting`, `closed`), the last heartbeat.
export const indicator = { state: '', heartbeat: null };

export function setStatus(s, text) {
  indicator.state = s;
  dom.status.dataset.state = s;
  dom.status.textContent = text;
  dom.status.title = indicator.heartbeat ? `last heartbeat ${indicator.heartbeat}` : 'live stream';
}

export function showHeartbeat(time) {
  indicator.heartbeat = time;
  dom.status.title = `last heartbeat ${time}`;
}

let bannerTimer = 0;
export function showBanner(text) {
  dom.banner.textContent = text;
  dom.banner.title = text;
  dom.banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => {
    dom.banner.hidden = true;
  }, 15000);
}

export function renderCounters() {
  dom.countShown.textContent = state.view.length.toLocaleString();
  dom.countTotal.textContent = state.events.length.toLocaleString();
  dom.missed.hidden = !state.missed;
  if (state.missed) {
    dom.missed.textContent = `${state.missed.toLocaleString()} dropped by the server (slow client)` +
      (state.refilled ? `, ${state.refilled.toLocaleString()} read back` : '');
  }
}
