// Drives hivewatch's built-in dashboard in headless Chromium against a running hivewatch.
//
//   node tests/browser/dashboard.mjs http://127.0.0.1:4318 target/test-artifacts
//   node tests/browser/dashboard.mjs http://127.0.0.1:4318 target/test-artifacts --read-token=SECRET
//
// First the board, the page's opening view: a session driven through its states with hook events (idle, working,
// waiting for permission, working, ended) and another that fails, each change seen live on its card (group, what
// it waits on, time in the state, tokens and cost from an OTLP api_request); a click on the card opens the session
// with its tokens and cost; the event timeline is one click away, with configuration records folded unless asked
// for; a reload keeps the view. Then it sends recorded Claude Code payloads (OTLP JSON exports, hook payloads,
// transcripts) and checks the event timeline: colored rows, the session filter, the session view (agent lanes,
// tool-call waterfall with the failed call marked, transcript), the pulse chart, reconnect with the filters kept,
// that 10,000 events keep the page responsive, and their sessions on the board. With --read-token (a hivewatch started with that --read-token),
// checks instead that the page asks for the token, then works with it, and takes it from its address. Exits 0 when
// every check passes; saves screenshots into the artifact directory.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const READ_TOKEN = (args.find((a) => a.startsWith('--read-token=')) || '').slice('--read-token='.length);
const [baseArg, artifactArg] = args.filter((a) => !a.startsWith('--'));
if (!baseArg) {
  console.error('usage: node dashboard.mjs <hivewatch http url> [artifact dir]');
  process.exit(2);
}
const BASE = baseArg.replace(/\/$/, '');
const ARTIFACTS = path.resolve(artifactArg || '.');
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/claude-code');
const CHROMIUM = process.env.HIVEWATCH_CHROMIUM || '/usr/bin/chromium';
const LOAD_EVENTS = Number(process.env.HIVEWATCH_DASHBOARD_LOAD || 10000);

const S_OK = '0fbc6975-e498-4c0d-a2a2-497077c17a19'; // a Bash call, OTLP logs and spans
const S_FAIL = '04128219-b9d9-4a0f-898a-7a3abb4d3e00'; // a failing Bash call
const S_SUB = '1d03709e-189a-498d-a6ca-69950cf4473b'; // a subagent, with transcripts
const SUBAGENT = 'a828a481a9d4da57f';
const FAILED_CALL = 'toolu_d48d22869260437182bd91e4';
// The configuration record types the timelines fold away (web/js/store.js).
const CONFIG_TYPES = [
  'hook_registered', 'plugin_loaded', 'managed_settings_resolved', 'hook_execution_start', 'hook_execution_complete',
  'InstructionsLoaded', 'ConfigChange', 'Setup',
];

const started = Date.now();
const figures = {};
const log = (...a) => console.log(`[dashboard +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  log('ok:', what);
}

const readJson = (rel) => JSON.parse(fs.readFileSync(path.join(FIXTURES, rel), 'utf8'));
const readLines = (rel) =>
  fs
    .readFileSync(path.join(FIXTURES, rel), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));

async function post(p, body, headers = {}) {
  const resp = await fetch(BASE + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`POST ${p}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// One hook event of `session`, stamped now (the session's state changes from its time).
async function hookNow(session, name, fields = {}) {
  const id = randomUUID();
  await post(
    '/api/v1/observability/event',
    { session_id: session, hook_event_name: name, ...fields },
    { 'x-hivewatch-time': new Date().toISOString(), 'x-hivewatch-event-id': id },
  );
  return id;
}

// One Claude Code native log event (`event.name` = `name`) of `session` over OTLP/HTTP JSON, stamped now.
async function otlpLogNow(session, name, attributes) {
  const now = Date.now();
  const value = (v) =>
    typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }) : { stringValue: String(v) };
  const attrs = { 'session.id': session, 'event.name': name, 'event.timestamp': new Date(now).toISOString(), ...attributes };
  await post('/v1/logs', {
    resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'claude-code' } }] },
      scopeLogs: [{
        scope: { name: 'com.anthropic.claude_code.events' },
        logRecords: [{
          timeUnixNano: String(BigInt(now) * 1000000n),
          body: { stringValue: `claude_code.${name}` },
          attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: value(v) })),
        }],
      }],
    }],
  });
}

// The hook payloads of some sessions, in the order a session produces them, stamped a few hundred ms apart.
const LIFECYCLE = [
  'SessionStart', 'InstructionsLoaded', 'UserPromptSubmit', 'UserPromptExpansion', 'SubagentStart', 'PreToolUse',
  'PermissionRequest', 'Notification', 'PostToolUse', 'PostToolUseFailure', 'PostToolBatch', 'TaskCreated',
  'TaskCompleted', 'SubagentStop', 'Stop', 'StopFailure', 'PreCompact', 'PostCompact', 'SessionEnd',
];
function hookPayloads(sessions) {
  const out = [];
  for (const name of LIFECYCLE) {
    for (const item of readJson(`hooks/${name}.json`)) if (sessions.includes(item.session_id)) out.push(item);
  }
  const t0 = Date.now() - out.length * 300;
  return out.map((item, i) => ({ item, at: new Date(t0 + i * 300).toISOString(), id: randomUUID() }));
}

async function launch() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

async function newPage(browser, pageErrors, { expect401 = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, locale: 'en-US' });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    // Chromium logs refused requests; with a read token configured, the first ones are expected to be.
    if (m.type() === 'error' && !(expect401 && /401|WebSocket connection/.test(m.text()))) {
      pageErrors.push(`console: ${m.text()}`);
    }
  });
  return page;
}

// A hivewatch with --read-token: the page asks for the token, then reads everything with it.
async function tokenChecks() {
  const browser = await launch();
  const pageErrors = [];
  const page = await newPage(browser, pageErrors, { expect401: true });
  try {
    const id = randomUUID();
    await post(
      '/api/v1/observability/event',
      { session_id: S_OK, hook_event_name: 'UserPromptSubmit', prompt: 'token check', cwd: '/home/dev/projects/demo' },
      { 'x-hivewatch-event-id': id },
    );
    const resp = await page.goto(`${BASE}/`);
    check(resp.ok(), 'the page itself is served without a token');
    await page.waitForSelector('#auth:not([hidden])', { timeout: 15000 });
    check((await page.getAttribute('#status', 'data-state')) !== 'open', 'without the token the stream stays closed');
    check(true, 'the page asks for the read token');
    await page.fill('#auth-token', 'not-the-token');
    await page.click('#auth button[type="submit"]');
    await page.waitForFunction(() => /refused/.test(document.getElementById('auth-message').textContent) &&
      !document.getElementById('auth').hidden);
    check(true, 'a wrong token is refused and asked again');
    await page.fill('#auth-token', READ_TOKEN);
    await page.click('#auth button[type="submit"]');
    await page.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
    await page.waitForFunction((eid) => window.hivewatch.has(eid), id);
    check(await page.$eval('#auth', (f) => f.hidden), 'with the token the stream opens and backfills');
    await page.click(`#board .card[data-session="${S_OK}"]`);
    await page.waitForFunction(() => /events/.test(document.getElementById('session-summary').textContent));
    check(true, 'the board and the session view read the API with the token');
    await page.click('#views button[data-view="events"]');
    await (await page.waitForSelector('#timeline .event[data-event-type="UserPromptSubmit"]')).click();
    await page.waitForSelector('#event-detail:not([hidden])');
    check(true, 'the event timeline reads the stream with the token');
    await page.context().close();

    // The token in the address: taken, kept, removed from the address bar.
    const second = await newPage(browser, pageErrors);
    await second.goto(`${BASE}/?access_token=${encodeURIComponent(READ_TOKEN)}`);
    await second.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
    check(!second.url().includes(READ_TOKEN), 'a token given in the address works and leaves the address bar');
    await second.reload();
    await second.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
    check(true, 'the token is remembered across a reload');
    await second.screenshot({ path: path.join(ARTIFACTS, 'dashboard-token.png') });
    check(pageErrors.length === 0, `no errors in the page${pageErrors.length ? ': ' + pageErrors.join(' | ') : ''}`);
    log('all token checks passed');
  } catch (e) {
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-token-failure.png') }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

// The board: one session driven through its states, another that fails, all seen live on their cards; the session
// view from a card; the event timeline one click away, configuration records folded there and in the session's
// lanes; a reload keeps the view and the open session.
async function boardChecks(page, stats, waitStats) {
  const S = randomUUID();
  const S_FAILS = randomUUID();
  const APP = 'board-test';
  const CWD = '/home/dev/projects/board-demo';
  const common = { source_app: APP, cwd: CWD };
  const card = (id) => `#board .card[data-session="${id}"]`;
  const inGroup = (group, id) => `#board .board-group[data-group="${group}"] .card[data-session="${id}"]`;
  const cardField = (id, field) => page.textContent(`${card(id)} [data-field="${field}"]`);
  // Seconds in the state, as the card shows them (`12 s`; a minute or more would be `1 min 02 s`).
  const sinceSeconds = (id) =>
    page.$eval(`${card(id)} [data-field="since"]`, (n) => {
      const m = /^(\d+) s$/.exec(n.textContent.trim());
      return m ? Number(m[1]) : Infinity;
    });
  // Posts, then waits for the card in `group`: the time it took is reported.
  const moveTo = async (group, id, what, send) => {
    const before = (await stats()).board.liveStates;
    const t = Date.now();
    await send();
    await page.waitForSelector(inGroup(group, id), { timeout: 10000 }).catch(async (e) => {
      throw new Error(`${what}: ${e.message.split('\n')[0]}; stats ${JSON.stringify(await stats())}`);
    });
    figures[`board_${what.replace(/\W+/g, '_')}_ms`] = Date.now() - t;
    await waitStats((n) => window.hivewatch.stats().board.liveStates > n, before, `${what}: a session_state message`);
  };

  check(
    (await page.getAttribute('body', 'data-view')) === 'board' && (await page.isVisible('#board-pane')) &&
      !(await page.isVisible('#timeline-pane')) && !(await page.isVisible('#filters')),
    'the page opens on the board, the event timeline out of view',
  );
  // A reload would lose this: the board must change in place.
  await page.evaluate(() => {
    window.__noReload = true;
  });
  // The groups the session's card was seen in, in order.
  await page.evaluate((id) => {
    window.__trail = [];
    const note = () => {
      const c = document.querySelector(`#board .card[data-session="${id}"]`);
      if (c && window.__trail.at(-1) !== c.dataset.group) window.__trail.push(c.dataset.group);
    };
    new MutationObserver(note).observe(document.getElementById('board'), {
      subtree: true, childList: true, attributes: true, attributeFilter: ['data-group'],
    });
  }, S);

  await moveTo('idle', S, 'session start: idle', () =>
    hookNow(S, 'SessionStart', { ...common, source: 'startup', model: 'claude-opus-4-8' }));
  check((await cardField(S, 'cwd')) === CWD && (await page.textContent(`${card(S)} .card-name`)) === 'board-demo',
    'the card names the project (the cwd and its last part)');
  check((await cardField(S, 'source_app')).length > 0, `the card shows the source app (${await cardField(S, 'source_app')})`);

  await moveTo('working', S, 'prompt: working', () =>
    hookNow(S, 'UserPromptSubmit', { ...common, prompt: 'make the board', prompt_id: 'p-board' }));
  // Working still (no change of state): the card learns the tool from the sessions list read again.
  await hookNow(S, 'PreToolUse', {
    ...common, prompt_id: 'p-board', tool_name: 'Bash', tool_use_id: 'toolu_board_1',
    tool_input: { command: 'touch board.txt' },
  });
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent.includes('Bash'),
    `${card(S)} [data-field="current_tool"]`, { timeout: 10000 });
  check(true, 'the card shows the tool running (Bash)');

  // Tokens and cost come with a model request (OTLP), not with a change of state: the board reads them again.
  await otlpLogNow(S, 'api_request', {
    'prompt.id': 'p-board', model: 'claude-opus-4-8', input_tokens: 1234, output_tokens: 567, cost_usd: 0.0421,
    duration_ms: 80,
  });
  // A configuration record of the session, which timelines fold away.
  await otlpLogNow(S, 'hook_registered', { hook_event: 'PreToolUse', hook_type: 'command' });
  const t0 = Date.now();
  await page.waitForFunction(
    (sel) => document.querySelector(`${sel} [data-field="tokens"]`)?.textContent === '1.2k in / 567 out' &&
      document.querySelector(`${sel} [data-field="cost"]`)?.textContent === '$0.0421',
    card(S), { timeout: 10000 },
  ).catch(async (e) => {
    throw new Error(`tokens and cost on the card: ${e.message.split('\n')[0]}; card ${await page.textContent(card(S))}`);
  });
  figures.board_tokens_ms = Date.now() - t0;
  check(true, `the card shows tokens and cost without a change of state (${figures.board_tokens_ms} ms)`);
  check((await cardField(S, 'model')) === 'claude-opus-4-8', 'the card shows the model');

  // Needs you: the permission request, what it waits on, for how long (ticking).
  await moveTo('needs', S, 'permission request: needs you', () =>
    hookNow(S, 'PermissionRequest', {
      ...common, prompt_id: 'p-board', tool_name: 'Bash', tool_input: { command: 'touch board.txt' },
    }));
  check((await cardField(S, 'waiting_on')).includes('Bash'), `the card says what it waits on: ${await cardField(S, 'waiting_on')}`);
  check((await page.getAttribute(card(S), 'data-state')) === 'waiting_for_permission' &&
    /waiting for permission/.test(await page.textContent(`${card(S)} .card-state`)), 'the card says waiting for permission');
  const waited = await sinceSeconds(S);
  check(waited <= 10, `the time in the state starts from the request (${waited} s)`);
  await page.waitForFunction(
    ([sel, from]) => {
      const m = /^(\d+) s$/.exec(document.querySelector(sel)?.textContent.trim() || '');
      return m && Number(m[1]) >= from + 2;
    },
    [`${card(S)} [data-field="since"]`, waited], { timeout: 10000 },
  );
  check(true, `the time in the state ticks (${await sinceSeconds(S)} s)`);
  check((await page.textContent('#needs-badge')) === '1' && (await page.title()).startsWith('(1)'),
    'the Board switch and the page title count the session that needs you');
  await page.screenshot({ path: path.join(ARTIFACTS, 'board-needs-you.png') });

  // Back to work: the wait is over, the time starts again.
  await moveTo('working', S, 'tool ran: working', () =>
    hookNow(S, 'PostToolUse', { ...common, prompt_id: 'p-board', tool_name: 'Bash', tool_use_id: 'toolu_board_1' }));
  check(!(await page.$(`${card(S)} [data-field="waiting_on"]`)), 'working again, the card waits on nothing');
  check((await sinceSeconds(S)) <= 3, 'the time in the state starts again');
  check(await page.isHidden('#needs-badge'), 'nothing needs you any more');

  // A click on the card: the session view with tokens and cost.
  await page.click(card(S));
  await page.waitForSelector(`#session-view[data-session="${S}"]`, { state: 'visible' });
  await page.waitForSelector('#session-summary [data-field="tokens"]');
  const summaryField = (f) => page.textContent(`#session-summary [data-field="${f}"] b`);
  check((await summaryField('tokens')) === '1,234 / 567', `the session view shows the tokens: ${await summaryField('tokens')}`);
  check((await summaryField('cost')) === '$0.0421', `the session view shows the cost: ${await summaryField('cost')}`);
  check((await summaryField('state')) === 'working', 'the session view shows the state');
  check(await page.isVisible('#board-pane'), 'the board stays beside the session');
  await page.waitForSelector('#lanes-config:not([hidden])');
  check((await page.getAttribute('#lanes-config', 'data-hidden')) === '1' &&
    /1 configuration record folded/.test(await page.textContent('#lanes-config')),
    "the session's lanes fold its configuration record");
  await page.screenshot({ path: path.join(ARTIFACTS, 'board-session.png') });

  // Done: the end, seen on the board and in the open session.
  await moveTo('done', S, 'session end: done', () => hookNow(S, 'SessionEnd', { ...common, reason: 'exit' }));
  check((await page.getAttribute(card(S), 'data-state')) === 'ended', 'the card says ended');
  await page.waitForFunction(() =>
    document.querySelector('#session-summary [data-field="state"] b')?.textContent === 'ended');
  check(true, 'the open session shows the end without a reload');

  // A failure: its error kind on the card.
  await moveTo('working', S_FAILS, 'other prompt: working', () =>
    hookNow(S_FAILS, 'UserPromptSubmit', { ...common, prompt: 'fail please' }));
  await moveTo('done', S_FAILS, 'stop failure: failed', () =>
    hookNow(S_FAILS, 'StopFailure', { ...common, error: 'rate_limit' }));
  check((await page.getAttribute(card(S_FAILS), 'data-state')) === 'failed' &&
    (await cardField(S_FAILS, 'state_detail')).includes('rate_limit'), 'a failed session shows its error kind');

  const trail = await page.evaluate(() => window.__trail);
  check(JSON.stringify(trail) === JSON.stringify(['idle', 'working', 'needs', 'working', 'done']),
    `the card moved live: ${trail.join(' → ')}`);
  check(await page.evaluate(() => window.__noReload === true), 'all of it without a reload');
  await page.screenshot({ path: path.join(ARTIFACTS, 'board.png') });

  // The event timeline, one click away; configuration records folded unless asked for.
  await page.click('#views button[data-view="events"]');
  await page.waitForSelector('#timeline-pane', { state: 'visible' });
  check(!(await page.isVisible('#board-pane')) && page.url().includes('view=events'), 'one click shows the event timeline');
  await page.waitForSelector(`#timeline .event[data-session="${S}"][data-event-type="SessionEnd"]`);
  await page.waitForSelector('#config-fold:not([hidden])');
  const configRows = () =>
    page.$$eval('#timeline .event', (rows, types) => rows.filter((r) => types.includes(r.dataset.eventType)).length, CONFIG_TYPES);
  check(Number(await page.getAttribute('#config-fold', 'data-hidden')) >= 1 && (await configRows()) === 0 &&
    /configuration records? folded/.test(await page.textContent('#config-fold')),
    `configuration records are folded into one row: ${await page.textContent('#config-fold-text')}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'events-config-folded.png') });
  await page.click('#config-toggle');
  await page.waitForSelector(`#timeline .event[data-session="${S}"][data-event-type="hook_registered"]`);
  check(true, 'asked for, the configuration records are shown');
  await page.click('#config-toggle');
  await page.waitForFunction(() => !document.querySelector('#timeline .event[data-event-type="hook_registered"]'));
  check(true, 'and folded again');
  await page.waitForSelector('#filter-event-type option[value="hook_registered"]', { state: 'attached' });
  await page.selectOption('#filter-event-type', 'hook_registered');
  await page.waitForSelector(`#timeline .event[data-session="${S}"][data-event-type="hook_registered"]`);
  check(await page.isHidden('#config-fold'), 'choosing a configuration type in the event-type filter shows its records');
  await page.selectOption('#filter-event-type', '');

  // A reload keeps the view and the open session.
  await page.reload();
  await page.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
  check((await page.getAttribute('body', 'data-view')) === 'events' && (await page.isVisible('#timeline-pane')),
    'a reload keeps the event timeline');
  await page.waitForSelector(`#session-view[data-session="${S}"]`, { state: 'visible' });
  check(true, 'and the open session');
}

async function main() {
  if (READ_TOKEN) return tokenChecks();
  const browser = await launch();
  const pageErrors = [];
  const page = await newPage(browser, pageErrors);
  const stats = () => page.evaluate(() => window.hivewatch.stats());
  const waitStats = (fn, arg, what, timeout = 20000) =>
    page
      .waitForFunction(fn, arg, { timeout, polling: 100 })
      .catch(async (e) => {
        throw new Error(`${what}: ${e.message.split('\n')[0]}; stats ${JSON.stringify(await stats())}`);
      });

  try {
    // The page, the stream.
    const resp = await page.goto(`${BASE}/`);
    check(resp.ok(), `GET / answers ${resp.status()}`);
    await page.waitForSelector('#status[data-state="open"]', { timeout: 15000 });
    check(true, 'the live stream connects (#status open)');

    await boardChecks(page, stats, waitStats);

    // Native telemetry over OTLP/HTTP JSON, then hook payloads one by one.
    await post('/v1/logs', fs.readFileSync(path.join(FIXTURES, 'otlp-json/export_logs.json'), 'utf8'));
    await post('/v1/traces', fs.readFileSync(path.join(FIXTURES, 'otlp-json/export_traces.json'), 'utf8'));
    const hooks = hookPayloads([S_OK, S_FAIL, S_SUB]);
    for (const { item, at, id } of hooks) {
      await post('/api/v1/observability/event', item, { 'x-hivewatch-time': at, 'x-hivewatch-event-id': id });
    }
    const lastHook = hooks[hooks.length - 1];
    await waitStats((id) => window.hivewatch.has(id), lastHook.id, 'the last hook event reaches the page');
    await page.waitForSelector(`#timeline .event[data-event-type="${lastHook.item.hook_event_name}"]`);
    check(true, `${hooks.length} hook events and the OTLP exports streamed into the timeline`);

    // Two event types, two colors; one type, one color.
    const colors = await page.$$eval('#timeline .event', (rows) =>
      rows.map((r) => [r.dataset.eventType, getComputedStyle(r).borderLeftColor, r.style.getPropertyValue('--type-color')]),
    );
    const byType = new Map();
    for (const [t, c] of colors) {
      if (!byType.has(t)) byType.set(t, new Set());
      byType.get(t).add(c);
    }
    check(byType.size >= 2, `rows of several event types in view (${[...byType.keys()].join(', ')})`);
    check([...byType.values()].every((s) => s.size === 1), 'each event type has one color');
    const distinct = new Set([...byType.values()].map((s) => [...s][0]));
    check(distinct.size === byType.size, `different event types have different colors (${distinct.size})`);
    const sessionColors = await page.$$eval('#timeline .event .session-chip', (chips) =>
      [...new Set(chips.map((c) => c.closest('.event').dataset.session + '=' + getComputedStyle(c).borderLeftColor))],
    );
    check(new Set(sessionColors.map((s) => s.split('=')[1])).size >= 2, 'sessions have colors of their own');

    // OTLP spans and logs are there, found with the event-type filter.
    await page.waitForSelector('#filter-event-type option[value="span"]', { state: 'attached' });
    await page.selectOption('#filter-event-type', 'span');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#timeline .event')];
      return rows.length > 0 && rows.every((r) => r.dataset.eventType === 'span' && r.dataset.source === 'otlp_span');
    });
    check(true, 'OTLP spans shown, and the event-type filter keeps only them');
    await page.selectOption('#filter-event-type', '');

    // The session filter: only that session's events remain; the session view opens.
    // Less the configuration records, folded away.
    const failCount = hooks.filter((h) => h.item.session_id === S_FAIL && !CONFIG_TYPES.includes(h.item.hook_event_name))
      .length;
    await page.waitForSelector(`#filter-session option[value="${S_FAIL}"]`, { state: 'attached' });
    await page.selectOption('#filter-session', S_FAIL);
    await page.waitForFunction(
      ([s, n]) => {
        const rows = [...document.querySelectorAll('#timeline .event')];
        return rows.length >= n && rows.every((r) => r.dataset.session === s);
      },
      [S_FAIL, failCount],
    );
    const shown = await stats();
    check(
      shown.shown >= failCount && shown.shown < shown.stored,
      `session filter: only the ${shown.shown} events of ${S_FAIL.slice(0, 8)} remain of ${shown.stored}`,
    );

    // Waterfall with the failed call marked.
    await page.waitForSelector(`#session-view[data-session="${S_FAIL}"]`);
    const failed = await page.waitForSelector(`#waterfall .bar.failed[data-tool-use-id="${FAILED_CALL}"]`);
    check(
      (await failed.getAttribute('data-status')) === 'error' &&
        (await failed.evaluate((b) => getComputedStyle(b).backgroundColor)) === 'rgb(239, 68, 68)',
      'the waterfall marks the failed Bash call red',
    );

    // A session with a subagent and a transcript: lanes, waterfall, transcript.
    const mainLines = readLines(`transcripts/${S_SUB}.jsonl`);
    const subLines = readLines(`transcripts/${S_SUB}/subagents/agent-${SUBAGENT}.jsonl`);
    await post('/api/v1/observability/transcripts', { session_id: S_SUB, agent_id: 'main', entries: mainLines });
    await post('/api/v1/observability/transcripts', { session_id: S_SUB, agent_id: SUBAGENT, entries: subLines });
    const withUuid = mainLines.concat(subLines).filter((l) => l.uuid).length;
    await page.selectOption('#filter-session', S_SUB);
    await page.waitForSelector(`#session-view[data-session="${S_SUB}"]`);
    await page.waitForFunction((n) => document.querySelectorAll('#transcript .entry').length === n, withUuid, {
      timeout: 15000,
    });
    check(true, `the transcript shows all ${withUuid} entries of the main agent and the subagent`);
    const transcriptText = await page.textContent('#transcript');
    check(transcriptText.includes('SPAWN_SUBAGENT: delegate this to a subagent'), 'transcript text is shown');
    check(/→ Agent:/.test(transcriptText) && /→ Bash:/.test(transcriptText), 'tool_use blocks are summarized');
    check(/← result:/.test(transcriptText), 'tool_result blocks are summarized');
    await page.waitForSelector(`#lanes .lane[data-agent="${SUBAGENT}"]`);
    const lanes = await page.$$eval('#lanes .lane', (ls) => ls.map((l) => [l.dataset.agent, Number(l.dataset.count)]));
    check(
      lanes.length === 2 && lanes[0][0] === 'main' && lanes.every(([, n]) => n > 0),
      `one swim lane per agent: ${JSON.stringify(lanes)}`,
    );
    const bars = await page.$$eval('#waterfall .bar', (bs) => bs.map((b) => [b.dataset.tool, b.dataset.status, b.dataset.agent]));
    check(
      bars.length === 2 && bars.every(([, s]) => s === 'ok') && bars.some(([, , a]) => a === SUBAGENT),
      `waterfall bars for the Agent call and the subagent's Bash call: ${JSON.stringify(bars)}`,
    );
    const widths = await page.$$eval('#waterfall .bar', (bs) => bs.map((b) => b.getBoundingClientRect().width));
    check(widths.every((w) => w >= 2), 'bars have a width');

    // Clicking an event shows it.
    const row = await page.waitForSelector('#timeline .event[data-event-type="SubagentStart"]');
    await row.click();
    await page.waitForSelector('#event-detail:not([hidden])');
    check((await page.textContent('#event-detail pre')).includes('"SubagentStart"'), 'a clicked event shows its JSON');

    // The pulse chart counts the events of the last minute (redrawn every second).
    await page.waitForFunction((n) => Number(document.getElementById('pulse').dataset.total) >= n, hooks.length);
    const pulse = await page.$eval('#pulse', (c) => ({
      tag: c.tagName,
      w: c.getBoundingClientRect().width,
      total: Number(c.dataset.total),
    }));
    check(pulse.tag === 'CANVAS' && pulse.w > 50 && pulse.total >= hooks.length, `pulse chart: ${JSON.stringify(pulse)}`);

    await page.selectOption('#filter-session', '');
    await page.waitForFunction(() => document.querySelectorAll('#timeline .event').length > 20);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png') });
    log('screenshot', path.join(ARTIFACTS, 'dashboard.png'));

    // Reconnect: the page drops its socket, reconnects by itself, and the server filter still holds.
    const beforeFilter = await stats();
    await page.selectOption('#filter-session', S_FAIL);
    await waitStats((n) => window.hivewatch.stats().backfills > n, beforeFilter.backfills, 'a backfill after filtering');
    const before = await stats();
    await page.evaluate(() => {
      window.__states = [];
      const status = document.getElementById('status');
      new MutationObserver(() => window.__states.push(status.dataset.state)).observe(status, { attributes: true });
      window.hivewatch.dropConnection();
    });
    await waitStats(
      (n) => window.hivewatch.stats().connects > n && window.hivewatch.stats().connection === 'open',
      before.connects,
      'reconnects',
    );
    await waitStats((n) => window.hivewatch.stats().backfills > n, before.backfills, 'a backfill after reconnect');
    const states = await page.evaluate(() => window.__states);
    check(
      states.includes('reconnecting') && states.at(-1) === 'open',
      `after the socket closed, the page showed it (${[...new Set(states)].join(' → ')}), reconnected, got a backfill`,
    );
    const other = { id: randomUUID(), session: randomUUID() };
    const mine = randomUUID();
    await post(
      '/api/v1/observability/event',
      { session_id: other.session, hook_event_name: 'Notification', message: 'elsewhere', cwd: '/home/dev/projects/demo' },
      { 'x-hivewatch-event-id': other.id },
    );
    await post(
      '/api/v1/observability/event',
      { session_id: S_FAIL, hook_event_name: 'Notification', message: 'after reconnect', cwd: '/home/dev/projects/demo' },
      { 'x-hivewatch-event-id': mine },
    );
    await waitStats((id) => window.hivewatch.has(id), mine, 'an event of the filtered session after reconnect');
    await page.waitForSelector(`#timeline .event[data-session="${S_FAIL}"][data-event-type="Notification"]`);
    check(!(await page.evaluate((id) => window.hivewatch.has(id), other.id)), 'the resubscribed stream kept the session filter');

    // Responsiveness with 10,000 events: posted in batches while the page renders them. The server applies the
    // cleared filter before the load starts (its backfill is the sign).
    const beforeClear = await stats();
    await page.click('#filter-clear');
    await waitStats((n) => window.hivewatch.stats().backfills > n, beforeClear.backfills, 'a backfill after clearing');
    await page.evaluate(() => {
      window.__frames = { max: 0, count: 0, last: performance.now(), on: true };
      const tick = (t) => {
        const f = window.__frames;
        if (!f.on) return;
        f.max = Math.max(f.max, t - f.last);
        f.last = t;
        f.count++;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const loadSessions = Array.from({ length: 20 }, () => randomUUID());
    const types = ['UserPromptSubmit', 'PreToolUse', 'PostToolUse', 'Notification', 'PostToolUseFailure', 'Stop'];
    const tools = ['Bash', 'Read', 'Edit', 'Grep', 'Write'];
    const statsBefore = await stats();
    const loadStart = Date.now();
    const BATCH = 500;
    const t0 = Date.now() - LOAD_EVENTS;
    for (let b = 0; b < LOAD_EVENTS; b += BATCH) {
      const batch = [];
      for (let i = b; i < Math.min(LOAD_EVENTS, b + BATCH); i++) {
        const type = types[i % types.length];
        const tool = type.includes('Tool') ? tools[i % tools.length] : undefined;
        batch.push({
          session_id: loadSessions[i % loadSessions.length],
          hook_event_name: type,
          cwd: '/home/dev/projects/loadtest',
          agent_id: i % 7 === 0 ? `sub${i % 3}` : undefined,
          tool_name: tool,
          tool_use_id: tool ? `toolu_load_${Math.floor(i / 2)}` : undefined,
          tool_input: tool ? { command: `echo load ${i}` } : undefined,
          prompt: type === 'UserPromptSubmit' ? `load prompt ${i}` : undefined,
          duration_ms: type.startsWith('PostToolUse') ? 5 + (i % 50) : undefined,
          _hivewatch: { time: new Date(t0 + i).toISOString() },
        });
      }
      const answer = await post('/api/v1/observability/event', batch);
      if (answer && answer.accepted !== undefined && answer.accepted !== batch.length) {
        throw new Error(`batch accepted ${answer.accepted} of ${batch.length}`);
      }
    }
    figures.load_post_ms = Date.now() - loadStart;
    await waitStats(
      ([stored, missed, n]) => {
        const s = window.hivewatch.stats();
        return s.stored + (s.missed - missed) >= stored + n;
      },
      [statsBefore.stored, statsBefore.missed, LOAD_EVENTS],
      `the page receives the ${LOAD_EVENTS} events`,
      120000,
    );
    figures.load_received_ms = Date.now() - loadStart;
    // Events the server dropped for the page (a slow reader) are read back through the API; reported, not asserted.
    await page
      .waitForFunction((n) => window.hivewatch.stats().stored >= n, statsBefore.stored + LOAD_EVENTS, { timeout: 20000 })
      .catch(() => {});
    figures.load_complete_ms = Date.now() - loadStart;
    const frames = await page.evaluate(() => {
      window.__frames.on = false;
      return window.__frames;
    });
    const afterLoad = await stats();
    figures.events_in_page = afterLoad.stored;
    figures.dropped_by_server = afterLoad.missed - statsBefore.missed;
    figures.read_back = afterLoad.refilled - statsBefore.refilled;
    figures.read_backs = afterLoad.refills - statsBefore.refills;
    if (afterLoad.refillError) figures.read_back_error = afterLoad.refillError;
    figures.max_frame_gap_ms = Math.round(frames.max);
    figures.frames_during_load = frames.count;
    figures.max_batch_apply_ms = afterLoad.maxFlushMs;
    figures.timeline_dom_rows = await page.$$eval('#timeline .event', (r) => r.length);
    check(figures.timeline_dom_rows < 150, `the timeline keeps ${figures.timeline_dom_rows} rows in the DOM for ${afterLoad.shown} events`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-10k.png') });

    // The board after the load: a card for each of its sessions.
    await page.click('#views button[data-view="board"]');
    await page.waitForFunction(
      (ids) => ids.every((id) => document.querySelector(`#board .card[data-session="${id}"]`)),
      loadSessions, { timeout: 15000 },
    );
    figures.board_cards = await page.$$eval('#board .card', (c) => c.length);
    check(true, `the board shows the ${loadSessions.length} sessions of the load (${figures.board_cards} cards)`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'board-10k.png') });
    await page.click('#views button[data-view="events"]');
    await page.waitForSelector('#timeline-pane', { state: 'visible' });

    // A filter change applies within a couple of frames, measured in the page.
    const target = loadSessions[3];
    await page.waitForSelector(`#filter-session option[value="${target}"]`, { state: 'attached' });
    figures.session_filter_ms = await page.evaluate(async (s) => {
      const t = performance.now();
      const sel = document.getElementById('filter-session');
      sel.value = s;
      sel.dispatchEvent(new Event('change'));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return Math.round(performance.now() - t);
    }, target);
    const rowsAfter = await page.$$eval('#timeline .event', (rs) => rs.map((r) => r.dataset.session));
    check(rowsAfter.length > 0 && rowsAfter.every((s) => s === target), 'the session filter applied over the load');
    figures.search_ms = await page.evaluate(async () => {
      window.hivewatch.setFilter('session', '');
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const t = performance.now();
      window.hivewatch.setFilter('q', 'echo load 777');
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return Math.round(performance.now() - t);
    });
    figures.search_matches = (await stats()).shown;
    check(figures.search_matches >= 1, 'free-text search over the payloads finds the event');
    figures.scroll_ms = await page.evaluate(async () => {
      window.hivewatch.setFilter('q', '');
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const tl = document.getElementById('timeline');
      const t = performance.now();
      tl.scrollTop = tl.scrollHeight / 2;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return Math.round(performance.now() - t);
    });
    const midRows = await page.$$eval('#timeline .event', (r) => r.length);
    check(midRows > 10, `rows rendered after scrolling to the middle (${midRows})`);
    // Loose bound: the figures are reported; this only catches a page that hangs.
    check(figures.session_filter_ms < 5000, `a filter change applies in ${figures.session_filter_ms} ms with ${afterLoad.stored} events`);

    check(pageErrors.length === 0, `no errors in the page${pageErrors.length ? ': ' + pageErrors.join(' | ') : ''}`);
    log('figures', JSON.stringify(figures));
    log(`all checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-failure.png') }).catch(() => {});
    if (pageErrors.length) console.error('page errors:', pageErrors.join('\n'));
    console.error('figures so far', JSON.stringify(figures));
    throw e;
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  console.error('dashboard test: no result within 240 s');
  process.exit(1);
}, 240000);
main().then(
  () => {
    clearTimeout(watchdog);
    process.exit(0);
  },
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
