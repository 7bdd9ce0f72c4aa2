// One client request forwarded to a backend, with retries. Each attempt goes to a backend picked
// by the pool's balancer (never one this request already tried) through undici's dispatch API,
// whose handler callbacks stream the response straight into the client's response, with
// backpressure both ways and no whole-body buffering.
//
// Retry rules:
// * A request the backend never answered is retried at once on another backend, outside the retry
//   budget, up to retries.unansweredAttempts times: whatever its method when it never reached the
//   backend (connection refused, connect timeout); when idempotent, also when the connection was
//   lost before any byte of the response (a backend that died, RFC 9112 §9.3.1). The budget exists
//   to stop retries from multiplying load on backends that answer with errors; a dead backend's
//   requests add no load by moving, and a pool must not fail them when one member crashes.
// * An idempotent request (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) that got a retriable status
//   (retries.retryOn) is retried up to retries.attempts times, after a jittered exponential
//   backoff, if the retry budget allows.
// * Never once any of the request body was sent (it cannot be sent again), never once response
//   bytes went to the client, and never a 503 carrying x-concord-shed (a shedding proxy said no on
//   purpose: retrying would add load exactly where there is too much).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { TrafficOutcome } from '../health/outlier-detection.ts';
import type { AdmissionOutcome, Refusal } from './admission.ts';
import { SHED_MARKER_HEADER } from './admission.ts';
import type { AccessLog } from './access-log.ts';
import { monotonicMs } from './clocks.ts';
import { downstreamResponseHeaders } from './forwarded-headers.ts';
import { pendingRequestsOf, type BackendRuntime, type PoolRuntime } from './pool-runtime.ts';
import type { ProxyMetrics } from './proxy-metrics.ts';

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const CONNECT_FAILURE_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT']);
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

/** Thrown into undici to stop an attempt whose response will be retried. */
class RetryAbort extends Error {}
/** Thrown into undici when the client went away. */
class ClientGone extends Error {}

export interface ExchangeServices {
  readonly metrics: ProxyMetrics;
  readonly accessLog: AccessLog | undefined;
  /** Called once when the exchange is over (response finished, failed, or client gone). */
  readonly done: () => void;
}

export interface ExchangeRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly pool: PoolRuntime;
  readonly upstreamHeaders: string[];
  readonly requestId: string;
  readonly path: string;
  readonly clientIp: string;
  readonly receivedMs: number;
  readonly release: (outcome: AdmissionOutcome) => void;
}

type Failure = { kind: 'connect'; code: string } | { kind: 'timeout'; code: string } | { kind: 'reset'; code: string } | { kind: 'other'; code: string };

function classify(error: Error): Failure {
  const code = String((error as { code?: unknown }).code ?? error.name);
  if (CONNECT_FAILURE_CODES.has(code)) return { kind: 'connect', code };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return { kind: 'timeout', code };
  if (RESET_CODES.has(code)) return { kind: 'reset', code };
  return { kind: 'other', code };
}

export class Exchange {
  private readonly request: ExchangeRequest;
  private readonly services: ExchangeServices;
  private readonly hasBody: boolean;
  private readonly idempotent: boolean;
  private readonly hashKey: string | undefined;
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
    const headers = request.req.headers;
    // HTTP/2 has no Transfer-Encoding and often no Content-Length: a body follows unless the
    // request's HEADERS frame ended the stream.
    this.hasBody = request.req.httpVersionMajor === 2
      ? (request.req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders !== true
      : headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
    this.idempotent = IDEMPOTENT_METHODS.has(request.req.method ?? '');
    this.hashKey = request.pool.hashKeyOf?.(headers, request.path);
    request.pool.requestsInProgress += 1;
    request.res.once('close', () => {
      if (!this.finished) this.clientGone();
    });
  }

  start(): void {
    this.attempt(false);
  }

  /** True when nothing of the request body has been consumed, so it can still be sent elsewhere. */
  private bodyIntact(): boolean {
    return !this.hasBody || (!this.request.req.readableDidRead && !this.request.req.destroyed);
  }

  private attempt(budgeted: boolean): void {
    if (this.previousBackend !== undefined) (this.tried ??= new Set()).add(this.previousBackend);
    if (this.finished) {
      if (budgeted) this.request.pool.retryBudget.release();
      return;
    }
    const pool = this.request.pool;
    const now = monotonicMs();
    const picked = pool.balancer.pick({ nowMs: now, hashKey: this.hashKey, exclude: this.tried });
    const backend = picked === undefined ? undefined : pool.backend(picked.id);
    if (backend === undefined) {
      if (budgeted) pool.retryBudget.release();
      this.respondWithError(503, 'CONCORD_E_PROXY_NO_BACKEND', this.attempts === 0 ? 'no healthy backend in the pool' : 'no other backend left to try', 'none', false);
      return;
    }
    // Per-backend circuit breakers (load shedding): a backend at its limit is not sent more, and the client gets a shed 503 at once.
    const refusal = pool.backendGate?.tryStart(backend.id, pendingRequestsOf(backend));
    if (refusal !== undefined) {
      if (budgeted) pool.retryBudget.release();
      this.respondRefused(refusal);
      return;
    }
    this.attempts += 1;
    this.lastBackend = backend.id;
    pool.balancer.requestStarted(backend.load, now);
    const attempt = new Attempt(this, backend, now, budgeted);
    attempt.gated = pool.backendGate !== undefined;
    this.current = attempt;
    const method = (this.request.req.method ?? 'GET') as Dispatcher.HttpMethod;
    backend.dispatcher.dispatch({
      path: this.request.path,
      method,
      headers: this.request.upstreamHeaders,
      body: this.hasBody ? this.request.req : null,
      // Our own retries decide what is safe; undici must not hold requests back on its own account.
      idempotent: true,
      blocking: false,
    }, attempt);
  }

  /** The attempt got response headers; returns false when the response is to be dropped for a retry. */
  onResponseStart(attempt: Attempt, status: number, headers: Record<string, string | string[] | undefined>): boolean {
    if (this.finished || attempt !== this.current) return false;
    const retries = this.request.pool.config.retries;
    const shed = status === 503 && headers[SHED_MARKER_HEADER] !== undefined;
    if (!shed && retries.retryOn.includes(status) && this.mayRetryBudgeted()) {
      attempt.retryAfterThis = 'status';
      attempt.status = status;
      return false;
    }
    attempt.shed = shed;
    attempt.status = status;
    this.status = status;
    const res = this.request.res;
    let relayed = downstreamResponseHeaders(headers);
    if (headers['grpc-status'] !== undefined && this.request.req.httpVersionMajor === 2) {
      // A gRPC "trailers-only" answer: status and metadata in the only HEADERS frame. Relayed as
      // plain headers, a gRPC client would read them as initial metadata and miss the status, so
      // they go out as trailers after a bare HEADERS frame.
      attempt.trailersOnly = {};
      const head: string[] = [];
      for (let i = 0; i < relayed.length; i += 2) {
        if (relayed[i] === 'content-type') head.push(relayed[i]!, relayed[i + 1]!);
        else attempt.trailersOnly[relayed[i]!] = relayed[i + 1]!;
      }
      relayed = head;
    }
    try {
      res.writeHead(status, relayed);
    } catch (error) {
      // A header value Node refuses (invalid characters): the backend's response cannot be relayed.
      attempt.abort(error as Error);
      return false;
    }
    return true;
  }

  /** Relays a body chunk: 'ok', 'full' (wait for drain), or 'gone' (nobody to send it to). */
  onResponseData(attempt: Attempt, chunk: Buffer): 'ok' | 'full' | 'gone' {
    if (attempt !== this.current || this.finished) return 'gone';
    return this.request.res.write(chunk) ? 'ok' : 'full';
  }

  whenDrained(resume: () => void): void {
    this.request.res.once('drain', resume);
  }

  onResponseEnd(attempt: Attempt, trailers: Record<string, string | string[] | undefined>): void {
    this.endAttempt(attempt, { kind: 'response', status: this.status, shed: attempt.shed });
    if (attempt !== this.current || this.finished) return;
    // Trailers (gRPC's grpc-status) are relayed to HTTP/2 clients; an HTTP/1.1 response here has a
    // Content-Length or was chunked by Node without a Trailer header, so they are dropped there.
    if (this.request.req.httpVersionMajor === 2) {
      const relayed: Record<string, string> = {};
      const list = downstreamResponseHeaders(trailers);
      for (let i = 0; i < list.length; i += 2) relayed[list[i]!] = list[i + 1]!;
      if (attempt.trailersOnly !== undefined) Object.assign(relayed, attempt.trailersOnly);
      if (Object.keys(relayed).length > 0) this.request.res.addTrailers(relayed);
    }
    this.request.res.end();
    this.finish(this.status, this.status >= 500 && !attempt.shed);
  }

  onResponseError(attempt: Attempt, error: Error): void {
    const failure = classify(error);
    const retryReason = attempt.retryAfterThis;
    if (retryReason === 'status') this.endAttempt(attempt, { kind: 'response', status: attempt.status, shed: false });
    else if (!(error instanceof ClientGone)) this.endAttempt(attempt, failure.kind === 'other' ? undefined : { kind: 'failure', reason: failure.kind });
    else this.endAttempt(attempt, undefined);
    if (attempt !== this.current || this.finished) return;
    const pool = this.request.pool;
    if (retryReason === 'status') {
      this.retryAfterBackoff('status');
      return;
    }
    if (attempt.headersSent) {
      // Part of the response already went out: the only honest signal left is to cut the connection.
      this.request.res.destroy(error);
      this.finish(this.status, true);
      return;
    }
    const unanswered = failure.kind === 'connect' || (failure.kind === 'reset' && this.idempotent);
    if (unanswered && this.bodyIntact() && this.untriedBackendsLeft() && this.unansweredRetries < pool.config.retries.unansweredAttempts) {
      this.unansweredRetries += 1;
      this.services.metrics.countRetry(pool.name, failure.kind === 'connect' ? 'connect-failure' : 'reset');
      this.attempt(false);
      return;
    }
    const status = failure.kind === 'timeout' || failure.code === 'UND_ERR_CONNECT_TIMEOUT' ? 504 : 502;
    const code = status === 504 ? 'CONCORD_E_PROXY_UPSTREAM_TIMEOUT' : 'CONCORD_E_PROXY_UPSTREAM_FAILED';
    this.respondWithError(status, code, describeFailure(failure, pool.config.timeouts), attempt.backend.id, true);
  }

  /** Whether some backend of the pool has not been tried yet (each attempt goes to a new one). */
  private untriedBackendsLeft(): boolean {
    return this.request.pool.backendCount > this.attempts;
  }

  private mayRetryBudgeted(): boolean {
    const pool = this.request.pool;
    // With nowhere else to go, the backend's own answer is worth more than a 503 from the proxy.
    if (!this.idempotent || !this.bodyIntact() || !this.untriedBackendsLeft() || this.budgetedRetries >= pool.config.retries.attempts) return false;
    if (!pool.retryBudget.tryAcquire(pool.requestsInProgress)) {
      this.services.metrics.countBudgetExhausted(pool.name);
      return false;
    }
    return true;
  }

  /** Backs off (full jitter, exponential) and sends the request to another backend; holds a budget slot meanwhile. */
  private retryAfterBackoff(reason: 'status'): void {
    const retries = this.request.pool.config.retries;
    this.budgetedRetries += 1;
    this.services.metrics.countRetry(this.request.pool.name, reason);
    const ceilingMs = Math.min(retries.backoffMaxMs, retries.backoffBaseMs * 2 ** (this.budgetedRetries - 1));
    const delayMs = Math.random() * ceilingMs;
    this.current = undefined;
    if (delayMs < 1) this.attempt(true);
    else setTimeout(() => this.attempt(true), delayMs);
  }

  private endAttempt(attempt: Attempt, outcome: TrafficOutcome | undefined): void {
    if (attempt.ended) return;
    attempt.ended = true;
    const pool = this.request.pool;
    const now = monotonicMs();
    this.previousBackend = attempt.backend.id;
    const answered = outcome !== undefined && outcome.kind === 'response';
    pool.balancer.requestFinished(attempt.backend.load, attempt.startedMs, now, answered ? now - attempt.startedMs : undefined);
    if (attempt.budgeted) pool.retryBudget.release();
    if (attempt.gated) pool.backendGate?.finished(attempt.backend.id);
    if (outcome !== undefined) pool.recordOutcome(attempt.backend.id, outcome);
  }

  /** A refusal of admission control (a circuit breaker): sent as it is, and never retried. */
  private respondRefused(refusal: Refusal): void {
    const res = this.request.res;
    if (!res.headersSent && !res.destroyed) {
      const body = `${refusal.reason}\n`;
      res.writeHead(refusal.status, { 'content-type': 'text/plain; charset=utf-8', ...refusal.headers, 'content-length': Buffer.byteLength(body) }).end(body);
    }
    this.finish(refusal.status, false);
  }

  /** An error the proxy itself answers: the code in x-concord-error (see docs/errors.md), the reason in the body. */
  private respondWithError(status: number, code: string, reason: string, backend: string, dropped: boolean): void {
    const res = this.request.res;
    if (!res.headersSent && !res.destroyed) {
      const body = `${code}: ${reason} (pool ${this.request.pool.name}, request ${this.request.requestId})\n`;
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-concord-error': code });
      res.end(body);
    }
    this.lastBackend = backend;
    this.finish(status, dropped);
  }

  private clientGone(): void {
    const attempt = this.current;
    this.finish(499, false);
    attempt?.abort(new ClientGone('client closed the connection'));
  }

  private finish(status: number, dropped: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.request.pool.requestsInProgress -= 1;
    this.status = status;
    const durationMs = monotonicMs() - this.request.receivedMs;
    this.request.release({ rttMs: durationMs, dropped });
    this.services.metrics.countRequest(this.request.pool.name, status === 499 || this.attempts === 0 ? 'none' : this.lastBackend, status, durationMs / 1000);
    this.services.accessLog?.request({
      requestId: this.request.requestId, method: this.request.req.method ?? '', path: this.request.path, host: this.request.req.headers.host,
      client: this.request.clientIp, pool: this.request.pool.name, backend: this.lastBackend, status, attempts: this.attempts, durationMs,
    });
    this.services.done();
  }
}

function describeFailure(failure: Failure, timeouts: { connectMs: number; firstByteMs: number; idleMs: number }): string {
  switch (failure.code) {
    case 'UND_ERR_CONNECT_TIMEOUT': return `backend did not accept a connection within ${timeouts.connectMs} ms`;
    case 'UND_ERR_HEADERS_TIMEOUT': return `backend sent no response within ${timeouts.firstByteMs} ms`;
    case 'UND_ERR_BODY_TIMEOUT': return `backend went silent for ${timeouts.idleMs} ms`;
    case 'ECONNREFUSED': return 'backend refused the connection';
    default: return failure.kind === 'reset' ? 'backend closed the connection before responding' : `upstream error ${failure.code}`;
  }
}

/** One try of an exchange on one backend: the undici dispatch handler. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly exchange: Exchange;
  readonly backend: BackendRuntime;
  readonly startedMs: number;
  readonly budgeted: boolean;
  retryAfterThis: 'status' | undefined;
  status = 0;
  /** A gRPC trailers-only answer's headers, sent on as trailers. */
  trailersOnly: Record<string, string> | undefined;
  shed = false;
  /** A circuit breaker counted this attempt (released when it ends). */
  gated = false;
  ended = false;
  headersSent = false;
  private controller: Dispatcher.DispatchController | undefined;
  private pendingAbort: Error | undefined;

  constructor(exchange: Exchange, backend: BackendRuntime, startedMs: number, budgeted: boolean) {
    this.exchange = exchange;
    this.backend = backend;
    this.startedMs = startedMs;
    this.budgeted = budgeted;
  }

  abort(reason: Error): void {
    if (this.controller !== undefined) this.controller.abort(reason);
    else this.pendingAbort = reason;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort !== undefined) controller.abort(this.pendingAbort);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: the proxy answers Expect: 100-continue itself
    if (this.exchange.onResponseStart(this, statusCode, headers)) {
      this.headersSent = true;
      return;
    }
    if (!controller.aborted) controller.abort(this.retryAfterThis !== undefined ? new RetryAbort('retrying on another backend') : new ClientGone('response dropped'));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const relayed = this.exchange.onResponseData(this, chunk);
    if (relayed === 'full') {
      controller.pause();
      this.exchange.whenDrained(() => controller.resume());
    } else if (relayed === 'gone' && !controller.aborted) {
      controller.abort(new ClientGone('nobody to relay the response to'));
    }
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.exchange.onResponseEnd(this, trailers);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.exchange.onResponseError(this, error);
  }
}
