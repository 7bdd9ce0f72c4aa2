// One client request forwarded to a backend, with retries. Each attempt goes to a backend picked
// by the pool's balancer (never one this request already tried). How the bytes move is the
// transport's business (ExchangeIo): the fast path's own HTTP/1.1 on raw sockets (fast-path-*.ts),
// or node:http with undici (undici-forwarding.ts). Everything that decides — balancing, retries
// and their budget, passive health outcomes, metrics, the access log, the admission outcome — is
// here, once, for both.
//
// Retry rules:
// * A request the backend never answered is retried at once on another backend, outside the retry
//   budget, up to retries.unansweredAttempts times: whatever its method when it never reached the
//   backend (connection refused, connect timeout); when idempotent, also when the connection was
//   lost before any byte of the response (a backend that died, RFC 9112 §9.3.1). The budget exists
//   to stop retries from multiplying load on backends that answer with errors; a dead backend's
//   requests add no load by moving, and a pool must not fail them when one member crashes.
// * An idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) that got a retriable status
//   (retries.retryOn), or no response head within timeouts.firstByteMs (a hung backend), is retried
//   up to retries.attempts times, after a jittered exponential backoff, if the retry budget allows.
// * Never once any of the request body was sent (it cannot be sent again), never once response
//   bytes went to the client, and never a 503 carrying x-concord-shed (a shedding proxy said no on
//   purpose: retrying would add load exactly where there is too much).

import type { TrafficOutcome } from '../health/outlier-detection.ts';
import type { AdmissionOutcome, Refusal } from './admission.ts';
import type { AccessLog } from './access-log.ts';
import { monotonicMs } from './clocks.ts';
import type { BackendRuntime, PoolRuntime } from './pool-runtime.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Aborts an attempt whose response will be retried elsewhere. */
export class RetryAbort extends Error {}
/** Aborts an attempt nobody waits for any more (the client went away, or the response was dropped). */
export class ClientGone extends Error {}

/**
 * Why an attempt got no (complete) response, in the transport's terms mapped to the proxy's:
 * `connect` never reached the backend; `timeout` reached it but it did not answer in time; `reset`
 * lost the connection; `aborted` was stopped by the proxy itself; `other` is anything else.
 * `code` names the cause: an errno (ECONNREFUSED), connect-timeout, first-byte-timeout,
 * idle-timeout, or a transport's own code.
 */
export interface UpstreamFailure {
  readonly kind: 'connect' | 'timeout' | 'reset' | 'other' | 'aborted';
  readonly code: string;
}

export const CONNECT_TIMEOUT = 'connect-timeout';
export const FIRST_BYTE_TIMEOUT = 'first-byte-timeout';
export const IDLE_TIMEOUT = 'idle-timeout';

export interface ExchangeServices {
  readonly metrics: ProxyMetrics;
  readonly accessLog: AccessLog | undefined;
  /** Called once when the exchange is over (response finished, failed, or client gone). */
  readonly done: () => void;
}

/** The transport's side of one exchange: the client it answers, and how attempts reach backends. */
export interface ExchangeIo {
  /** Whether the request has a body (which can be sent only once). */
  readonly hasBody: boolean;
  /** True while nothing of the request body went to a backend, so it can still go elsewhere. */
  bodyIntact(): boolean;
  /** Sends the request on `attempt.backend`; the transport reports back through the exchange's onResponse* methods. */
  send(exchange: Exchange, attempt: Attempt): void;
  /** Answers with the proxy's own error, unless response bytes already went out. */
  respondWithError(status: number, code: string, body: string): void;
  /** Answers with a refusal of admission control (its headers as they are, the body framed by its own length), unless response bytes already went out. */
  respondRefused(status: number, headers: Readonly<Record<string, string>>, body: string): void;
  /** The relayed response is complete: finish it towards the client. */
  endResponse(attempt: Attempt): void;
  /** Cuts the client connection: a response began and cannot be completed honestly any other way. */
  cutOff(error: Error): void;
}

export interface ExchangeRequest {
  readonly io: ExchangeIo;
  readonly pool: PoolRuntime;
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
  readonly requestId: string;
  readonly clientIp: string;
  readonly hashKey: string | undefined;
  readonly receivedMs: number;
  /** When admission control let the request through (monotonic; the same tick the exchange starts in). */
  readonly admittedMs: number;
  readonly release: (outcome: AdmissionOutcome) => void;
}

/** How one try of an exchange is stopped: the transport's handle on it. */
export interface AttemptTransport {
  abort(reason: Error): void;
}

/** One try of an exchange on one backend. */
export class Attempt {
  readonly backend: BackendRuntime;
  readonly startedMs: number;
  readonly budgeted: boolean;
  retryAfterThis: 'status' | undefined;
  status = 0;
  shed = false;
  /** A circuit breaker counted this attempt (released when it ends). */
  gated = false;
  ended = false;
  /** Response bytes of this attempt went to the client. */
  headersSent = false;
  private transport: AttemptTransport | undefined;
  private pendingAbort: Error | undefined;

  constructor(backend: BackendRuntime, startedMs: number, budgeted: boolean) {
    this.backend = backend;
    this.startedMs = startedMs;
    this.budgeted = budgeted;
  }

  /** The transport took the attempt on; an abort asked for before that is applied now. */
  attach(transport: AttemptTransport): void {
    this.transport = transport;
    if (this.pendingAbort !== undefined) transport.abort(this.pendingAbort);
  }

  detach(): void {
    this.transport = undefined;
  }

  abort(reason: Error): void {
    if (this.transport !== undefined) this.transport.abort(reason);
    else if (!this.ended) this.pendingAbort = reason;
  }
}

export class Exchange {
  private readonly request: ExchangeRequest;
  private readonly services: ExchangeServices;
  private readonly idempotent: boolean;
  /** Backends this request went to, built only when a retry needs it (most requests never retry). */
  private tried: Set<string> | undefined;
  private previousBackend: string | undefined;
  private attempts = 0;
  private unansweredRetries = 0;
  private budgetedRetries = 0;
  private current: Attempt | undefined;
  private finished = false;
  private status = 0;
  private lastBackend = '-';

  constructor(request: ExchangeRequest, services: ExchangeServices) {
    this.request = request;
    this.services = services;
    this.idempotent = IDEMPOTENT_METHODS.has(request.method);
    request.pool.requestsInProgress += 1;
  }

  start(): void {
    this.attempt(false);
  }

  /** Whether `attempt` is the one whose response goes to the client. */
  isCurrent(attempt: Attempt): boolean {
    return attempt === this.current && !this.finished;
  }

  private attempt(budgeted: boolean): void {
    if (this.previousBackend !== undefined) (this.tried ??= new Set()).add(this.previousBackend);
    if (this.finished) {
      if (budgeted) this.request.pool.retryBudget.release();
      return;
    }
    const pool = this.request.pool;
    // The first attempt starts in the tick the request was admitted: that time will do.
    const now = this.attempts === 0 && this.current === undefined ? this.request.admittedMs : monotonicMs();
    const picked = pool.balancer.pick({ nowMs: now, hashKey: this.request.hashKey, exclude: this.tried });
    const backend = picked === undefined ? undefined : pool.backend(picked.id);
    if (backend === undefined) {
      if (budgeted) pool.retryBudget.release();
      this.respondWithError(503, 'CONCORD_E_PROXY_NO_BACKEND', this.attempts === 0 ? 'no healthy backend in the pool' : 'no other backend left to try', 'none', false);
      return;
    }
    // Per-backend circuit breakers (load shedding): a backend at its limit is not sent more, and the client gets a shed 503 at once.
    const refusal = pool.backendGate?.tryStart(backend.id, backend.pendingRequests());
    if (refusal !== undefined) {
      if (budgeted) pool.retryBudget.release();
      this.respondRefused(refusal);
      return;
    }
    this.attempts += 1;
    this.lastBackend = backend.id;
    pool.balancer.requestStarted(backend.load, now);
    const attempt = new Attempt(backend, now, budgeted);
    attempt.gated = pool.backendGate !== undefined;
    this.current = attempt;
    this.request.io.send(this, attempt);
  }

  /**
   * The attempt got its final response head. Returns true when it is to be relayed to the client
   * (the transport then writes it and sets `headersSent`), false when it is to be dropped: a
   * retriable status that will be retried, or an attempt nobody waits for. The transport then
   * aborts the attempt and reports the abort through onResponseError.
   */
  onResponseStart(attempt: Attempt, status: number, shed: boolean): boolean {
    if (this.finished || attempt !== this.current) return false;
    const retries = this.request.pool.config.retries;
    const shedAnswer = status === 503 && shed;
    if (!shedAnswer && retries.retryOn.includes(status) && this.mayRetryBudgeted()) {
      attempt.retryAfterThis = 'status';
      attempt.status = status;
      return false;
    }
    attempt.shed = shedAnswer;
    attempt.status = status;
    this.status = status;
    return true;
  }

  /** The relayed response ended: the attempt's outcome counts, and the client's response is finished. */
  onResponseEnd(attempt: Attempt): void {
    const now = monotonicMs();
    this.endAttempt(attempt, { kind: 'response', status: this.status, shed: attempt.shed }, now);
    if (attempt !== this.current || this.finished) return;
    this.request.io.endResponse(attempt);
    this.finish(this.status, this.status >= 500 && !attempt.shed, now);
  }

  onResponseError(attempt: Attempt, failure: UpstreamFailure): void {
    const retryReason = attempt.retryAfterThis;
    if (retryReason === 'status') this.endAttempt(attempt, { kind: 'response', status: attempt.status, shed: false });
    else if (failure.kind === 'other' || failure.kind === 'aborted') this.endAttempt(attempt, undefined);
    else this.endAttempt(attempt, { kind: 'failure', reason: failure.kind });
    if (attempt !== this.current || this.finished) return;
    const pool = this.request.pool;
    if (retryReason === 'status') {
      this.retryAfterBackoff('status');
      return;
    }
    if (attempt.headersSent) {
      // Part of the response already went out: the only honest signal left is to cut the connection.
      this.request.io.cutOff(new Error(`upstream ${failure.code}`));
      this.finish(this.status, true);
      return;
    }
    const unanswered = failure.kind === 'connect' || (failure.kind === 'reset' && this.idempotent);
    if (unanswered && this.request.io.bodyIntact() && this.untriedBackendsLeft() && this.unansweredRetries < pool.config.retries.unansweredAttempts) {
      this.unansweredRetries += 1;
      this.services.metrics.countRetry(pool.name, failure.kind === 'connect' ? 'connect-failure' : 'reset');
      this.attempt(false);
      return;
    }
    // A hung backend: an idempotent request is worth another backend's answer, within the budget
    // (the hung one may still act on it, which an idempotent request tolerates; the time already
    // spent is the client's to bear, as with Envoy's per-try timeout).
    if (failure.code === FIRST_BYTE_TIMEOUT && this.mayRetryBudgeted()) {
      this.retryAfterBackoff('first-byte-timeout');
      return;
    }
    const status = failure.kind === 'timeout' || failure.code === CONNECT_TIMEOUT ? 504 : 502;
    const code = status === 504 ? 'CONCORD_E_PROXY_UPSTREAM_TIMEOUT' : 'CONCORD_E_PROXY_UPSTREAM_FAILED';
    this.respondWithError(status, code, describeFailure(failure, pool.config.timeouts), attempt.backend.id, true);
  }

  /**
   * The client's body went over the pool's limit while it streamed (no Content-Length declared it
   * up front): the attempt is stopped and the client gets 413 if no response has started, else
   * its connection is cut. The transport closes the connection, since the rest of the body is unread.
   */
  bodyTooLarge(limitBytes: number, key: string): void {
    if (this.finished) return;
    const attempt = this.current;
    attempt?.abort(new ClientGone('request body over the limit'));
    if (attempt?.headersSent === true) {
      this.request.io.cutOff(new Error('request body over the limit'));
      this.finish(413, false);
      return;
    }
    this.respondWithError(413, 'CONCORD_E_PROXY_BODY_TOO_LARGE', `request body over the limit of ${limitBytes} bytes (${key})`, 'none', false);
  }

  /** The client went away before the exchange finished: 499 in the log, the attempt stopped. */
  clientGone(): void {
    if (this.finished) return;
    const attempt = this.current;
    this.finish(499, false);
    attempt?.abort(new ClientGone('client closed the connection'));
  }

  /**
   * Whether some backend of the pool has not been tried yet (each attempt goes to a new one). Only
   * tried backends still in the pool count: an instance that crashed is often removed from the
   * pool while its requests are still failing, and those requests must still go to the others.
   */
  private untriedBackendsLeft(): boolean {
    const pool = this.request.pool;
    const tried = new Set(this.tried);
    if (this.previousBackend !== undefined) tried.add(this.previousBackend);
    if (this.current !== undefined) tried.add(this.current.backend.id);
    let triedInPool = 0;
    for (const id of tried) if (pool.backend(id) !== undefined) triedInPool++;
    return pool.backendCount > triedInPool;
  }

  private mayRetryBudgeted(): boolean {
    const pool = this.request.pool;
    // With nowhere else to go, the backend's own answer is worth more than a 503 from the proxy.
    if (!this.idempotent || !this.request.io.bodyIntact() || !this.untriedBackendsLeft() || this.budgetedRetries >= pool.config.retries.attempts) return false;
    if (!pool.retryBudget.tryAcquire(pool.requestsInProgress)) {
      this.services.metrics.countBudgetExhausted(pool.name);
      return false;
    }
    return true;
  }

  /** Backs off (full jitter, exponential) and sends the request to another backend; holds a budget slot meanwhile. */
  private retryAfterBackoff(reason: 'status' | 'first-byte-timeout'): void {
    const retries = this.request.pool.config.retries;
    this.budgetedRetries += 1;
    this.services.metrics.countRetry(this.request.pool.name, reason);
    const ceilingMs = Math.min(retries.backoffMaxMs, retries.backoffBaseMs * 2 ** (this.budgetedRetries - 1));
    const delayMs = Math.random() * ceilingMs;
    this.current = undefined;
    if (delayMs < 1) this.attempt(true);
    else setTimeout(() => this.attempt(true), delayMs);
  }

  private endAttempt(attempt: Attempt, outcome: TrafficOutcome | undefined, now: number = monotonicMs()): void {
    if (attempt.ended) return;
    attempt.ended = true;
    attempt.detach();
    const pool = this.request.pool;
    this.previousBackend = attempt.backend.id;
    const answered = outcome !== undefined && outcome.kind === 'response';
    pool.balancer.requestFinished(attempt.backend.load, attempt.startedMs, now, answered ? now - attempt.startedMs : undefined);
    if (attempt.budgeted) pool.retryBudget.release();
    if (attempt.gated) pool.backendGate?.finished(attempt.backend.id);
    if (outcome !== undefined) pool.recordOutcome(attempt.backend.id, outcome);
  }

  /** A refusal of admission control (a circuit breaker): sent as it is, and never retried. */
  private respondRefused(refusal: Refusal): void {
    this.request.io.respondRefused(refusal.status, refusal.headers, `${refusal.reason}\n`);
    this.finish(refusal.status, false);
  }

  /** An error the proxy itself answers: the code in x-concord-error (see docs/errors.md), the reason in the body. */
  private respondWithError(status: number, code: string, reason: string, backend: string, dropped: boolean): void {
    this.request.io.respondWithError(status, code, `${code}: ${reason} (pool ${this.request.pool.name}, request ${this.request.requestId})\n`);
    this.lastBackend = backend;
    this.finish(status, dropped);
  }

  private finish(status: number, dropped: boolean, now: number = monotonicMs()): void {
    if (this.finished) return;
    this.finished = true;
    const request = this.request;
    request.pool.requestsInProgress -= 1;
    this.status = status;
    const durationMs = now - request.receivedMs;
    request.release({ rttMs: durationMs, dropped });
    this.services.metrics.countRequest(request.pool.name, status === 499 || this.attempts === 0 ? 'none' : this.lastBackend, status, durationMs / 1000);
    this.services.accessLog?.request({
      requestId: request.requestId, method: request.method, path: request.path, host: request.host,
      client: request.clientIp, pool: request.pool.name, backend: this.lastBackend, status, attempts: this.attempts, durationMs,
    });
    this.services.done();
  }
}

function describeFailure(failure: UpstreamFailure, timeouts: { connectMs: number; firstByteMs: number; idleMs: number }): string {
  switch (failure.code) {
    case CONNECT_TIMEOUT: return `backend did not accept a connection within ${timeouts.connectMs} ms`;
    case FIRST_BYTE_TIMEOUT: return `backend sent no response within ${timeouts.firstByteMs} ms`;
    case IDLE_TIMEOUT: return `backend went silent for ${timeouts.idleMs} ms`;
    case 'ECONNREFUSED': return 'backend refused the connection';
    default: return failure.kind === 'reset' ? 'backend closed the connection before responding' : `upstream error ${failure.code}`;
  }
}
