// The page's fixed elements, looked up once, and el(), which makes the others. Everything that reaches the DOM
// goes through textContent or attributes, never innerHTML, because event payloads are whatever agents sent.

const $ = (id) => document.getElementById(id);

export const dom = {
  status: $('status'),
  countShown: $('count-shown'),
  countTotal: $('count-total'),
  missed: $('missed'),
  pulse: $('pulse'),
  pulseRate: $('pulse-rate'),
  pulseTotal: $('pulse-total'),
  banner: $('banner'),
  viewButtons: [...document.querySelectorAll('#views button[data-view]')],
  needsBadge: $('needs-badge'),
  board: $('board'),
  boardStatus: $('board-status'),
  boardEmpty: $('board-empty'),
  configFold: $('config-fold'),
  configFoldText: $('config-fold-text'),
  configToggle: $('config-toggle'),
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
  lanesConfig: $('lanes-config'),
  waterfall: $('waterfall'),
  waterfallInfo: $('waterfall-info'),
  transcript: $('transcript'),
  transcriptInfo: $('transcript-info'),
  auth: $('auth'),
  authToken: $('auth-token'),
  authMessage: $('auth-message'),
};

// The filter selects, by dashboard field.
export const selects = {
  source_app: $('filter-source-app'),
  session: $('filter-session'),
  agent: $('filter-agent'),
  event_type: $('filter-event-type'),
  tool: $('filter-tool'),
};

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
