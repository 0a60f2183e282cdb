// The page's two views, switched in the top bar: the board of sessions (the default) and the event timeline. The
// view and the open session are kept in the address's fragment (`#view=events&session=…`), so that a reload or a
// link shows the same; the read token, if one came in the fragment, has already been taken out of it (api.js).
import { dom } from './dom.js';
import { requestFrame } from './frame.js';

export const VIEWS = ['board', 'events'];
export const view = { current: 'board' };

const listeners = [];
let shown = false;

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

export function hashParam(name) {
  return hashParams().get(name);
}

// Sets (or, given no value, removes) one parameter of the fragment, in place: no history entry per click.
export function setHashParam(name, value) {
  const params = hashParams();
  if ((params.get(name) || null) === (value || null)) return;
  if (value) params.set(name, value);
  else params.delete(name);
  const url = new URL(location.href);
  url.hash = params.toString();
  history.replaceState(null, '', url);
}

export function onViewChange(fn) {
  listeners.push(fn);
}

export function setView(name) {
  const next = VIEWS.includes(name) ? name : 'board';
  const changed = !shown || next !== view.current;
  shown = true;
  view.current = next;
  document.body.dataset.view = next;
  for (const button of dom.viewButtons) button.setAttribute('aria-pressed', String(button.dataset.view === next));
  setHashParam('view', next === 'board' ? null : next);
  if (changed) for (const fn of listeners) fn(next);
  requestFrame();
}

for (const button of dom.viewButtons) button.addEventListener('click', () => setView(button.dataset.view));

// The fragment edited by hand, or history navigation.
window.addEventListener('hashchange', () => setView(hashParam('view')));
