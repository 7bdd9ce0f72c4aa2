// The page's side of the control plane's API (docs/dashboard.md): JSON GETs and POSTs with a time
// limit, and the live stream with reconnection. Every answer is checked against the contract
// before anyone draws it (model/contract-check.js).

import { eventProblems, overviewProblems } from './model/contract-check.js';

/** @typedef {import('../api-types.ts').Overview} Overview */
/** @typedef {import('../api-types.ts').TimelineEntry} TimelineEntry */

/** A request that takes longer than this is abandoned with an error the page shows. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Reconnection waits start here and double up to the maximum. */
export const RECONNECT_MIN_MS = 1_000;
export const RECONNECT_MAX_MS = 15_000;
/** The server sends an overview about once a second; this much silence means the stream is dead. */
export const STREAM_SILENCE_MS = 15_000;

/** An error the API answered with (or the failure to reach it), with a code when there is one. */
export class ApiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} status 0 when no HTTP answer came
   */
  constructor(code, message, status) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/**
 * @param {string} path
 * @param {RequestInit} init
 * @returns {Promise<unknown>}
 */
async function requestJson(path, init) {
  let response;
  try {
    response = await fetch(path, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), cache: 'no-store' });
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
    throw new ApiError('', timedOut ? `no answer from the control plane within ${REQUEST_TIMEOUT_MS / 1000} s` : 'the control plane cannot be reached (is it running?)', 0);
  }
  /** @type {unknown} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    if (response.ok) throw new ApiError('', `${path} answered ${response.status} with something other than JSON`, response.status);
  }
  if (!response.ok) {
    const error = typeof body === 'object' && body !== null && 'error' in body ? /** @type {{ error: { code?: unknown, message?: unknown } }} */ (body).error : undefined;
    const code = typeof error?.code === 'string' ? error.code : '';
    const message = typeof error?.message === 'string' ? error.message : `${path} answered ${response.status} ${response.statusText}`;
    throw new ApiError(code, message, response.status);
  }
  return body;
}

/** @returns {Promise<Overview>} */
export async function fetchOverview() {
  const body = await requestJson('/api/overview', { headers: { accept: 'application/json' } });
  const problems = overviewProblems(body);
  if (problems.length > 0) throw new ApiError('', `the control plane's overview does not match this page: ${problems.join('; ')}`, 200);
  return /** @type {Overview} */ (body);
}

/**
 * @param {{ since?: string, pool?: string, limit?: number }} query
 * @returns {Promise<TimelineEntry[]>}
 */
export async function fetchEvents(query) {
  const params = new URLSearchParams();
  if (query.since !== undefined) params.set('since', query.since);
  if (query.pool !== undefined && query.pool !== '') params.set('pool', query.pool);
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  const body = await requestJson(`/api/events?${params}`, { headers: { accept: 'application/json' } });
  const events = typeof body === 'object' && body !== null && 'events' in body ? body.events : undefined;
  if (!Array.isArray(events)) throw new ApiError('', 'the control plane answered /api/events without an events list', 200);
  return events.filter((event) => eventProblems(event).length === 0);
}

/**
 * POSTs a JSON body; resolves when the server said { ok: true }. The JSON content type is also the
 * CSRF defence: another site's form cannot send it without a preflight the server refuses.
 * @param {string} path
 * @param {object} body
 */
export async function postJson(path, body) {
  await requestJson(path, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
}

/**
 * @typedef {object} StreamHandlers
 * @property {(overview: Overview) => void} onOverview
 * @property {(event: TimelineEntry) => void} onEvent
 * @property {(state: 'connecting' | 'live' | 'reconnecting', detail: string) => void} onState
 * @property {() => void} onOpen each time the stream (re)connects: fetch what was missed
 * @property {(problem: string) => void} onProblem data the page could not use
 */

/**
 * Opens /api/stream and keeps it open: EventSource retries by itself after a dropped connection,
 * but gives up on an HTTP error or a wrong content type, and cannot notice a connection that went
 * silent; both are handled here with a capped, doubling wait.
 * @param {StreamHandlers} handlers
 * @returns {{ close(): void }}
 */
export function openStream(handlers) {
  /** @type {EventSource | null} */
  let source = null;
  let waitMs = RECONNECT_MIN_MS;
  let lastMessageMs = Date.now();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  let closed = false;

  const scheduleReconnect = (/** @type {string} */ why) => {
    source?.close();
    source = null;
    if (closed || retryTimer !== undefined) return;
    handlers.onState('reconnecting', `${why}; retrying in ${Math.round(waitMs / 1000)} s`);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect();
    }, waitMs);
    waitMs = Math.min(waitMs * 2, RECONNECT_MAX_MS);
  };

  const connect = () => {
    lastMessageMs = Date.now();
    const current = new EventSource('/api/stream');
    source = current;
    current.addEventListener('open', () => {
      waitMs = RECONNECT_MIN_MS;
      lastMessageMs = Date.now();
      handlers.onState('live', 'connected');
      handlers.onOpen();
    });
    current.addEventListener('error', () => {
      if (current.readyState === EventSource.CLOSED) scheduleReconnect('the stream was refused');
      else handlers.onState('reconnecting', 'the stream dropped; the browser is reconnecting');
    });
    current.addEventListener('overview', (message) => {
      lastMessageMs = Date.now();
      const data = parse(message);
      const problems = overviewProblems(data);
      if (problems.length === 0) handlers.onOverview(/** @type {Overview} */ (data));
      else handlers.onProblem(`an overview did not match this page: ${problems.join('; ')}`);
    });
    current.addEventListener('event', (message) => {
      lastMessageMs = Date.now();
      const data = parse(message);
      const problems = eventProblems(data);
      if (problems.length === 0) handlers.onEvent(/** @type {TimelineEntry} */ (data));
      else handlers.onProblem(`an event did not match this page: ${problems.join('; ')}`);
    });
  };

  const watchdog = setInterval(() => {
    if (source !== null && Date.now() - lastMessageMs > STREAM_SILENCE_MS) scheduleReconnect(`no data for ${STREAM_SILENCE_MS / 1000} s`);
  }, 1_000);

  handlers.onState('connecting', 'connecting');
  connect();
  return {
    close() {
      closed = true;
      clearInterval(watchdog);
      clearTimeout(retryTimer);
      source?.close();
    },
  };
}

/** @param {Event} message @returns {unknown} */
function parse(message) {
  try {
    return JSON.parse(/** @type {MessageEvent<string>} */ (message).data);
  } catch {
    return undefined;
  }
}
