// The dashboard page: holds what the control plane last said, draws it, and sends the operator's
// actions. session.js decides when it runs (at once with the store's authentication off, once
// someone signs in with it on, not after a 401). While it runs, data arrives from GET /api/overview
// and /api/events, then from the stream (GET /api/stream); after a reconnect the events missed
// meanwhile are fetched. See docs/dashboard.md.

import { ApiError, fetchEvents, fetchOverview, openStream, postJson, RECONNECT_MIN_MS } from './api-client.js';
import { renderCharts } from './charts-view.js';
import { byId, el, setText } from './dom.js';
import { createFreezeDialog } from './freeze-dialog.js';
import { appendSample, DEFAULT_HISTORY_WINDOW_MS, sampleOf } from './model/history.js';
import { formatAge } from './model/format.js';
import { mergeEvents, newestEventAt } from './model/timeline.js';
import { autoscaleArea, backendsArea, drainKey, freezeKey, renderPools } from './pools-view.js';
import { createSession, endedTheSession } from './session.js';
import { renderMembers } from './store-view.js';
import { renderTimeline, syncPoolOptions } from './timeline-view.js';
import { renderProxies, renderTotals } from './traffic-view.js';

/** @typedef {import('../api-types.ts').Overview} Overview */
/** @typedef {import('../api-types.ts').TimelineEntry} TimelineEntry */
/** @typedef {import('./model/history.js').Sample} Sample */

/** Events asked for at start, and per pool when the filter changes. */
const EVENTS_FETCH_LIMIT = 200;
/** Without a new overview for this long, the page says its data is stale. */
const STALE_AFTER_MS = 5_000;
/** Notices shown at once (results of the operator's actions, problems). */
const MAX_NOTICES = 4;
const GLOBAL_FREEZE_KEY = 'freeze:*';
/** Where the global unfreeze's failure is shown (beside its button); pools have theirs (pools-view.js). */
const GLOBAL_FREEZE_AREA = 'global-freeze';

const state = {
  /** @type {Overview | null} */
  overview: null,
  /** The page's clock when the overview arrived, to age it without trusting clocks to agree. */
  receivedAtMs: 0,
  /** @type {Sample[]} */
  samples: [],
  /** @type {TimelineEntry[]} */
  events: [],
  poolFilter: '',
  /** @type {'connecting' | 'live' | 'reconnecting' | 'signed-out'} */
  connection: 'connecting',
  connectionDetail: '',
  /** Keys of the actions on their way (a button stays disabled until its answer). */
  busy: new Set(),
  /** @type {Map<string, string>} why the last action of an area failed (GLOBAL_FREEZE_AREA, autoscaleArea, backendsArea) */
  failures: new Map(),
};

/** @type {{ close(): void } | null} the live stream while the dashboard runs */
let stream = null;

const page = {
  connection: byId('connection', HTMLElement),
  updated: byId('updated', HTMLElement),
  globalFreeze: byId('global-freeze', HTMLElement),
  globalFreezeState: byId('global-freeze-state', HTMLElement),
  globalFreezeButton: byId('global-freeze-button', HTMLButtonElement),
  globalFreezeError: byId('global-freeze-error', HTMLElement),
  notices: byId('notices', HTMLElement),
  dashboard: byId('dashboard', HTMLElement),
  skipLink: byId('skip-link', HTMLAnchorElement),
  totals: { total: byId('requests-total', HTMLElement), rate: byId('requests-rate', HTMLElement), p99: byId('latency-p99', HTMLElement) },
  charts: { requests: byId('chart-requests', HTMLElement), latency: byId('chart-latency', HTMLElement), instances: byId('chart-instances', HTMLElement) },
  proxies: byId('proxies', HTMLElement),
  proxiesEmpty: byId('proxies-empty', HTMLElement),
  pools: byId('pools', HTMLElement),
  poolsEmpty: byId('pools-empty', HTMLElement),
  members: byId('members', HTMLElement),
  membersEmpty: byId('members-empty', HTMLElement),
  eventPool: byId('event-pool', HTMLSelectElement),
  timeline: { list: byId('events', HTMLElement), empty: byId('events-empty', HTMLElement), count: byId('events-count', HTMLElement) },
};

/** The server's clock now: its last overview's time plus what has passed here since. */
function serverNowMs() {
  if (state.overview === null) return Date.now();
  return Date.parse(state.overview.generatedAt) + (Date.now() - state.receivedAtMs);
}

/**
 * @param {'good' | 'bad' | 'warn' | 'neutral'} tone
 * @param {string} text
 */
function notify(tone, text) {
  const notice = el('p', { className: 'notice', text });
  notice.dataset.tone = tone;
  page.notices.prepend(notice);
  while (page.notices.children.length > MAX_NOTICES) page.notices.lastElementChild?.remove();
}

/** @param {unknown} error */
function describe(error) {
  if (error instanceof ApiError) return error.code === '' ? error.message : `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reports an action's failure in the notices and beside its buttons (a 403 names the store key the
 * signed-in user may not write); the page goes on working.
 * @param {string} area
 * @param {string} text
 */
function reportFailure(area, text) {
  state.failures.set(area, text);
  notify('bad', text);
  render();
}

const actions = {
  /** @param {string} pool */
  freezePool: (pool) => freezeDialog.open({ pool }),
  /** @param {string} pool */
  unfreezePool: (pool) => void unfreeze(pool),
  /** @param {string} pool @param {string} address @param {'drain' | 'undrain'} action */
  drainBackend: (pool, address, action) => void drain(pool, address, action),
  /** @param {string} key */
  isBusy: (key) => state.busy.has(key),
  /** @param {string} area */
  failureIn: (area) => state.failures.get(area) ?? '',
};

const freezeDialog = createFreezeDialog(async (scope, reason) => {
  const key = scope.pool === undefined ? GLOBAL_FREEZE_KEY : freezeKey(scope.pool);
  await withBusy(key, () => postJson('/api/autoscale/freeze', scope.pool === undefined ? { reason } : { pool: scope.pool, reason }));
  state.failures.delete(scope.pool === undefined ? GLOBAL_FREEZE_AREA : autoscaleArea(scope.pool));
  notify('warn', `Froze the autoscaler for ${scope.pool === undefined ? 'every pool' : `pool ${scope.pool}`}: ${reason}`);
  void refreshOverview();
}, describe);

const session = createSession({
  run: () => {
    showDashboardParts(true);
    // After a sign-in the form (and the focus in it) is hidden: a keyboard or screen-reader user goes on from the dashboard.
    if (document.activeElement?.closest('[hidden]') != null) page.dashboard.focus();
    state.connection = 'connecting';
    renderHeader();
    startLiveData();
  },
  stop: () => {
    stopLiveData();
    freezeDialog.close();
    state.connection = 'signed-out';
    showDashboardParts(false);
    renderHeader();
  },
  forget: forgetData,
  unreachable: (detail) => {
    state.connection = 'reconnecting';
    state.connectionDetail = detail;
    renderHeader();
  },
  report: (text) => notify('bad', text),
  describe,
});

/**
 * Runs an action with its button disabled.
 * @template T
 * @param {string} key
 * @param {() => Promise<T>} run
 * @returns {Promise<T>}
 */
async function withBusy(key, run) {
  state.busy.add(key);
  render();
  try {
    return await run();
  } finally {
    state.busy.delete(key);
    render();
  }
}

/** @param {string | undefined} pool */
async function unfreeze(pool) {
  const target = pool === undefined ? 'every pool' : `pool ${pool}`;
  const area = pool === undefined ? GLOBAL_FREEZE_AREA : autoscaleArea(pool);
  try {
    await withBusy(pool === undefined ? GLOBAL_FREEZE_KEY : freezeKey(pool), () => postJson('/api/autoscale/unfreeze', pool === undefined ? {} : { pool }));
    state.failures.delete(area);
    notify('good', `Unfroze the autoscaler for ${target}.`);
    void refreshOverview();
  } catch (error) {
    if (!endedTheSession(error)) reportFailure(area, `Could not unfreeze the autoscaler for ${target}: ${describe(error)}`);
  }
}

/** @param {string} pool @param {string} address @param {'drain' | 'undrain'} action */
async function drain(pool, address, action) {
  const path = `/api/pools/${encodeURIComponent(pool)}/backends/${encodeURIComponent(address)}/${action}`;
  try {
    await withBusy(drainKey(pool, address, action), () => postJson(path, {}));
    state.failures.delete(backendsArea(pool));
    notify(action === 'drain' ? 'warn' : 'good', action === 'drain' ? `Draining backend ${address} of pool ${pool}: it takes no new requests.` : `Backend ${address} of pool ${pool} is back in rotation.`);
    void refreshOverview();
  } catch (error) {
    if (!endedTheSession(error)) reportFailure(backendsArea(pool), `Could not ${action} backend ${address} of pool ${pool}: ${describe(error)}`);
  }
}

/** @param {Overview} overview */
function applyOverview(overview) {
  // An answer that was on its way when the session ended is not drawn.
  if (session.signedOut) return;
  // A fetched overview can arrive after a newer one from the stream: never step back in time.
  if (state.overview !== null && Date.parse(overview.generatedAt) < Date.parse(state.overview.generatedAt)) return;
  state.overview = overview;
  state.receivedAtMs = Date.now();
  const sample = sampleOf(overview);
  if (sample !== null) state.samples = appendSample(state.samples, sample, { windowMs: DEFAULT_HISTORY_WINDOW_MS });
  render();
}

/** @param {readonly TimelineEntry[]} events */
function applyEvents(events) {
  if (session.signedOut) return;
  state.events = mergeEvents(state.events, events);
  renderTimeline(page.timeline, state.events, state.poolFilter);
}

async function refreshOverview() {
  try {
    applyOverview(await fetchOverview());
  } catch (error) {
    if (!endedTheSession(error)) notify('bad', `Could not load the overview: ${describe(error)}`);
  }
}

/** Fetches the events since the newest one held (the recent ones at start), of every pool. */
async function catchUpEvents() {
  const since = newestEventAt(state.events);
  try {
    applyEvents(await fetchEvents({ ...(since === null ? {} : { since }), limit: EVENTS_FETCH_LIMIT }));
  } catch (error) {
    if (!endedTheSession(error)) notify('bad', `Could not load the event timeline: ${describe(error)}`);
  }
}

function render() {
  renderHeader();
  const overview = state.overview;
  if (overview === null) return;
  const sample = state.samples[state.samples.length - 1] ?? null;
  const nowMs = serverNowMs();
  renderTotals(page.totals, overview.proxies, sample);
  renderProxies(page.proxies, page.proxiesEmpty, overview.proxies);
  renderCharts(page.charts, state.samples, nowMs, DEFAULT_HISTORY_WINDOW_MS);
  renderPools(page.pools, page.poolsEmpty, overview.pools, { nowMs, globalFrozen: overview.frozen.global, actions });
  renderMembers(page.members, page.membersEmpty, overview.store.members);
  syncPoolOptions(page.eventPool, overview.pools.map((pool) => pool.name));
}

function renderHeader() {
  const ageMs = Date.now() - state.receivedAtMs;
  const stale = state.overview !== null && ageMs > STALE_AFTER_MS;
  const look = state.connection === 'live'
    ? stale ? { symbol: '⚠', text: `Live, but no update for ${Math.floor(ageMs / 1000)} s`, tone: 'warn' } : { symbol: '●', text: 'Live', tone: 'good' }
    : state.connection === 'reconnecting' ? { symbol: '↻', text: `Reconnecting: ${state.connectionDetail}`, tone: 'bad' }
      : state.connection === 'signed-out' ? { symbol: '⊘', text: 'Not signed in', tone: 'muted' } : { symbol: '…', text: 'Connecting', tone: 'muted' };
  setText(/** @type {Element} */ (page.connection.querySelector('.symbol')), look.symbol);
  setText(/** @type {Element} */ (page.connection.querySelector('.text')), look.text);
  page.connection.dataset.tone = look.tone;
  const globalFailure = state.failures.get(GLOBAL_FREEZE_AREA) ?? '';
  page.globalFreezeError.hidden = globalFailure === '';
  setText(page.globalFreezeError, globalFailure);
  const overview = state.overview;
  if (overview === null) return;
  setText(page.updated, `Updated ${formatAge(Date.now(), state.receivedAtMs)} (server time ${overview.generatedAt})`);
  const frozen = overview.frozen;
  const byWhom = frozen.by === undefined ? '' : ` by ${frozen.by}`;
  const why = frozen.reason === undefined ? '' : `: ${frozen.reason}`;
  setText(page.globalFreezeState, frozen.global ? `❄ Autoscaler frozen for every pool${byWhom}${why}` : '▶ Autoscaler active');
  page.globalFreezeState.dataset.tone = frozen.global ? 'warn' : 'good';
  setText(page.globalFreezeButton, frozen.global ? 'Unfreeze every pool' : 'Freeze every pool…');
  page.globalFreezeButton.dataset.action = frozen.global ? 'unfreeze' : 'freeze';
  page.globalFreezeButton.disabled = state.busy.has(GLOBAL_FREEZE_KEY);
}

function start() {
  page.globalFreezeButton.addEventListener('click', () => {
    if (page.globalFreezeButton.dataset.action === 'unfreeze') void unfreeze(undefined);
    else freezeDialog.open({});
  });
  page.eventPool.addEventListener('change', () => {
    state.poolFilter = page.eventPool.value;
    renderTimeline(page.timeline, state.events, state.poolFilter);
    // The pool's older events may have been trimmed from memory: ask for its own recent ones.
    if (state.poolFilter !== '') {
      fetchEvents({ pool: state.poolFilter, limit: EVENTS_FETCH_LIMIT }).then(applyEvents, (error) => {
        if (!endedTheSession(error)) notify('bad', `Could not load the events of pool ${state.poolFilter}: ${describe(error)}`);
      });
    }
  });
  session.start(RECONNECT_MIN_MS);
  setInterval(renderHeader, 1_000);
}

/** @param {boolean} visible */
function showDashboardParts(visible) {
  for (const element of [page.dashboard, page.notices, page.globalFreeze, page.updated, page.skipLink]) element.hidden = !visible;
}

function startLiveData() {
  if (stream !== null) return;
  stream = openStream({
    onOverview: applyOverview,
    onEvent: (event) => applyEvents([event]),
    onState: (connection, detail) => {
      state.connection = connection;
      state.connectionDetail = detail;
      renderHeader();
    },
    onOpen: () => {
      // What happened while the stream was away (or before it first opened); duplicates merge away.
      void refreshOverview();
      void catchUpEvents();
    },
    onProblem: (problem) => notify('bad', problem),
    mayRetry: () => session.mayStreamRetry(),
  });
  void refreshOverview();
  void catchUpEvents();
}

function stopLiveData() {
  stream?.close();
  stream = null;
}

/**
 * Forgets what the page holds and clears what it drew: after a sign-out, nothing of the cluster
 * stays in the page for the next person at this browser.
 */
function forgetData() {
  Object.assign(state, { overview: null, receivedAtMs: 0, samples: [], events: [], poolFilter: '' });
  state.failures.clear();
  page.notices.replaceChildren();
  renderPools(page.pools, page.poolsEmpty, [], { nowMs: Date.now(), globalFrozen: false, actions });
  renderProxies(page.proxies, page.proxiesEmpty, []);
  renderMembers(page.members, page.membersEmpty, []);
  // "No data yet" is not "none configured": the notes come back with the first overview.
  for (const note of [page.poolsEmpty, page.proxiesEmpty, page.membersEmpty]) note.hidden = true;
  page.eventPool.value = '';
  syncPoolOptions(page.eventPool, []);
  renderTimeline(page.timeline, [], '');
  for (const cell of Object.values(page.totals)) setText(cell, '—');
  renderCharts(page.charts, [], Date.now(), DEFAULT_HISTORY_WINDOW_MS);
  setText(page.updated, 'No data yet');
  setText(page.globalFreezeState, 'Autoscaler: unknown');
  page.globalFreezeState.dataset.tone = 'muted';
  page.globalFreezeButton.disabled = true;
}

start();
