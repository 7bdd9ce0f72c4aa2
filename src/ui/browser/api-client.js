// The page's side of the control plane's API (docs/dashboard.md): JSON GETs and POSTs with a time
// limit, the session (sign-in and sign-out when the store has authentication on), and the live
// stream with reconnection. Every answer is checked against the contract before anyone draws it
// (model/contract-check.js).

import { eventProblems, overviewProblems, sessionProblems } from './model/contract-check.js';

/** @typedef {import('../api-types.ts').Overview} Overview */
/** @typedef {import('../api-types.ts').TimelineEntry} TimelineEntry */
/** @typedef {import('../api-types.ts').SessionInfo} SessionInfo */

/** A request that takes longer than this is abandoned with an error the page shows. */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Reconnection waits start here and double up to the maximum. */
export const RECONNECT_MIN_MS = 1_000;
export const RECONNECT_MAX_MS = 15_000;
/** The server sends an overview about once a second; this much silence means the stream is dead. */
export const STREAM_SILENCE_MS = 15_000;

/** The API's answer to a request without a valid identity (no session, or an expired one). */
export const UNAUTHENTICATED_STATUS = 401;
/**
 * The session's own endpoints: a 401 from these is about the credentials just sent (a wrong
 * password), not a session that ended, so it does not send the page back to its sign-in form.
 */
const SESSION_PATHS = new Set(['/api/session', '/api/login', '/api/logout']);
/** Every POST's headers: the JSON content type is also the CSRF defence (see postJson). */
const JSON_POST_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };

/** @type {(error: ApiError) => void} */
let sessionEndedHandler = () => {};

/**
 * Sets what happens when any API request (other than the session's own) is answered 401: the
 * session ended (it expired, or the control plane restarted), so the page returns to its sign-in
 * form. One place, so no caller can forget it.
 * @param {(error: ApiError) => void} handler
 */
export function onSessionEnded(handler) {
  sessionEndedHandler = handler;
}

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
    const failure = new ApiError(code, message, response.status);
    if (response.status === UNAUTHENTICATED_STATUS && !SESSION_PATHS.has(path)) sessionEndedHandler(failure);
    throw failure;
  }
  return body;
}

/**
 * @param {unknown} body
 * @param {string} path
 * @returns {SessionInfo}
 */
function checkedSession(body, path) {
  const problems = sessionProblems(body);
  if (problems.length > 0) throw new ApiError('', `the control plane's ${path} answer does not match this page: ${problems.join('; ')}`, 200);
  return /** @type {SessionInfo} */ (body);
}

/**
 * Whether the API needs an identity, and whose this page's session is. Always open (no 401).
 * @returns {Promise<SessionInfo>}
 */
export async function fetchSession() {
  return checkedSession(await requestJson('/api/session', { headers: { accept: 'application/json' } }), '/api/session');
}

/**
 * Signs in as a store user; the answer sets the session cookie (HttpOnly: the page never sees it).
 * The password goes from the form into this one request body and nowhere else.
 * @param {string} user
 * @param {string} password
 * @returns {Promise<SessionInfo>}
 */
export async function login(user, password) {
  return checkedSession(await requestJson('/api/login', { method: 'POST', headers: JSON_POST_HEADERS, body: JSON.stringify({ user, password }) }), '/api/login');
}

/**
 * Ends this page's session on the server (and the cookie with it).
 * @returns {Promise<SessionInfo>}
 */
export async function logout() {
  return checkedSession(await requestJson('/api/logout', { method: 'POST', headers: JSON_POST_HEADERS, body: '{}' }), '/api/logout');
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
  await requestJson(path, { method: 'POST', headers: JSON_POST_HEADERS, body: JSON.stringify(body) });
}

/**
 * @typedef {object} StreamHandlers
 * @property {(overview: Overview) => void} onOverview
 * @property {(event: TimelineEntry) => void} onEvent
 * @property {(state: 'connecting' | 'live' | 'reconnecting', detail: string) => void} onState
 * @property {() => void} onOpen each time the stream (re)connects: fetch what was missed
 * @property {(problem: string) => void} onProblem data the page could not use
 * @property {() => Promise<boolean>} mayRetry asked when the server refuses the stream (EventSource
 *   does not say why, so a 401 looks like a 503): false stops the retries (the session ended)
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
      if (current.readyState !== EventSource.CLOSED) {
        handlers.onState('reconnecting', 'the stream dropped; the browser is reconnecting');
        return;
      }
      // Refused: no retry (and no watchdog) until the page knows whether it may still connect.
      current.close();
      source = null;
      handlers.mayRetry().then(
        (retry) => { if (retry) scheduleReconnect('the stream was refused'); },
        () => scheduleReconnect('the stream was refused'),
      );
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
