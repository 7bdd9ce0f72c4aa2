// Steady, bounded HTTP load through the run's proxies: a few workers per proxy, each with one
// request outstanding at a time and a short pause between requests, so the load stays modest on a
// shared machine. A share of the requests is critical (x-concord-priority: critical); most are
// idempotent GETs, some are POSTs. Every outcome is recorded for traffic-check.ts.

import { Agent, request } from 'undici';
import type { SeededRandom } from '../../random/seeded-random.ts';
import type { Priority, RequestOutcome } from './traffic-check.ts';

export interface HttpLoadOptions {
  proxies: readonly { name: string; url: string }[];
  workersPerProxy: number;
  /** Pause between one worker's requests. */
  pauseMs: number;
  /** Percentage of requests sent as critical. */
  criticalPercent: number;
  /** Percentage of requests that are POSTs (not idempotent). */
  postPercent: number;
  /** A request without a complete answer after this long is a failure. */
  requestTimeoutMs: number;
  /** Requests recorded at most (the memory bound of a long run). */
  maxRecordedRequests: number;
  random: SeededRandom;
}

export class HttpLoad {
  readonly outcomes: RequestOutcome[] = [];
  private readonly options: HttpLoadOptions;
  private readonly agent: Agent;
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(options: HttpLoadOptions) {
    this.options = options;
    this.agent = new Agent({ connections: options.workersPerProxy, headersTimeout: options.requestTimeoutMs, bodyTimeout: options.requestTimeoutMs, connectTimeout: options.requestTimeoutMs });
  }

  start(): void {
    this.loops = this.options.proxies.flatMap((proxy) => Array.from({ length: this.options.workersPerProxy }, () => this.worker(proxy)));
  }

  /** Whether requests completed in the last `windowMs`, and every one of them succeeded. */
  servedCleanlyFor(windowMs: number): boolean {
    const sinceMs = Date.now() - windowMs;
    let recent = 0;
    for (let i = this.outcomes.length - 1; i >= 0 && this.outcomes[i]!.endMs >= sinceMs; i--) {
      if (!this.outcomes[i]!.ok) return false;
      recent++;
    }
    return recent > 0;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    await this.agent.close();
  }

  private async worker(proxy: { name: string; url: string }): Promise<void> {
    const { random } = this.options;
    while (!this.stopped && this.outcomes.length < this.options.maxRecordedRequests) {
      const priority: Priority = random.nextInt(100) < this.options.criticalPercent ? 'critical' : 'default';
      const idempotent = random.nextInt(100) >= this.options.postPercent;
      this.outcomes.push(await this.send(proxy, priority, idempotent));
      await new Promise((resolve) => setTimeout(resolve, this.options.pauseMs));
    }
  }

  private async send(proxy: { name: string; url: string }, priority: Priority, idempotent: boolean): Promise<RequestOutcome> {
    const startMs = Date.now();
    const signal = AbortSignal.timeout(this.options.requestTimeoutMs);
    try {
      const response = await request(`${proxy.url}/work`, {
        method: idempotent ? 'GET' : 'POST', dispatcher: this.agent, signal,
        headers: { 'x-concord-priority': priority, ...(idempotent ? {} : { 'content-type': 'text/plain' }) },
        ...(idempotent ? {} : { body: 'chaos' }),
      });
      await response.body.text();
      return { proxy: proxy.name, priority, idempotent, startMs, endMs: Date.now(), ok: response.statusCode >= 200 && response.statusCode < 300, result: String(response.statusCode) };
    } catch (error) {
      const code = (error as { code?: string }).code ?? (error as Error).name;
      return { proxy: proxy.name, priority, idempotent, startMs, endMs: Date.now(), ok: false, result: code };
    }
  }
}
