// Metrics from the proxies: GET each proxy's admin endpoint (`/backends`), which answers JSON:
//
//   { "pools": [ { "name": "web",
//                  "shedPerSecond": 2.5, "errorRatio": 0.01,
//                  "latencyMs": { "mean": 12, "p50": 9, "p95": 30, "p99": 55 },
//                  "external": { "queueDepth": 40 },                       (optional)
//                  "backends": [ { "address": "127.0.0.1:9100", "healthy": true,
//                                  "inflight": 3, "requestsPerSecond": 41.5 } ] } ] }
//
// Every backend field but the address is optional; a pool without shedPerSecond, errorRatio and
// latencyMs has no pool metrics (the policy holds). Several proxies are combined: per backend,
// in-flight and requests/s add up, and it is healthy when any proxy says so (the health checker
// is shared, so they disagree only while a verdict propagates, and replacing an instance is the
// costly mistake); per pool, shed requests/s add up, the error ratio and mean latency are weighted
// by each proxy's requests/s, a latency percentile is the highest any proxy reports (an upper
// bound: percentiles do not add), and an external metric is the highest reported.
//
// A proxy that does not answer, answers too much, or answers something else is left out and
// reported once (and once more when it answers again); with no proxy answering, the pool has no
// sample at all. The sample's time is the scrape's, on the controller's clock, so clock skew
// between machines cannot make data look fresh.

import { z } from 'zod';
import type { BackendSample, PoolSample } from '../state/reconcile.ts';
import type { MetricsSource } from './metrics-source.ts';

export interface ProxyMetricsSourceOptions {
  /**
   * The proxies' admin URLs, e.g. http://127.0.0.1:7071/backends; or a function giving the current
   * ones (the control plane reads them from the proxies' registrations in the store).
   */
  urls: string[] | (() => string[]);
  /** One scrape's bound. */
  timeoutMs?: number;
  /** A larger answer is refused. */
  maxResponseBytes?: number;
  /** Scrapes younger than this are reused (several pools per period share one scrape). */
  maxScrapeAgeMs?: number;
  nowMs?: () => number;
  /** A proxy stopped answering properly, or answers again. */
  onProblem?: (message: string) => void;
}

export const DEFAULT_SCRAPE_TIMEOUT_MS = 2_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_SCRAPE_AGE_MS = 1_000;

const number = z.number().finite().nonnegative();
const backendSchema = z.object({
  address: z.string().min(1),
  healthy: z.boolean().optional(),
  inflight: number.optional(),
  requestsPerSecond: number.optional(),
});
const poolSchema = z.object({
  name: z.string().min(1),
  shedPerSecond: number.optional(),
  errorRatio: z.number().min(0).max(1).optional(),
  latencyMs: z.object({ mean: number, p50: number, p95: number, p99: number }).optional(),
  external: z.record(z.string(), z.number().finite()).optional(),
  backends: z.array(backendSchema).default([]),
});
const answerSchema = z.object({ pools: z.array(poolSchema) });

type ProxyPool = z.output<typeof poolSchema>;
type Scrape = { ok: true; pools: ProxyPool[] } | { ok: false; problem: string };

export class ProxyMetricsSource implements MetricsSource {
  private readonly options: Required<Omit<ProxyMetricsSourceOptions, 'onProblem' | 'urls'>> & Pick<ProxyMetricsSourceOptions, 'onProblem'>;
  private readonly urls: () => string[];
  private last: { atMs: number; scrapes: Promise<Scrape[]> } | undefined;
  private readonly failing = new Set<string>();

  constructor(options: ProxyMetricsSourceOptions) {
    const { urls, ...rest } = options;
    if (Array.isArray(urls)) {
      if (urls.length === 0) throw new RangeError('ProxyMetricsSource needs at least one admin URL');
      for (const url of urls) {
        if (!/^https?:\/\/[^/]+/.test(url)) throw new RangeError(`'${url}' is not an http:// or https:// URL of a proxy's admin endpoint (e.g. http://127.0.0.1:7071/backends)`);
      }
    }
    this.urls = Array.isArray(urls) ? () => urls : urls;
    this.options = {
      timeoutMs: DEFAULT_SCRAPE_TIMEOUT_MS,
      maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
      maxScrapeAgeMs: DEFAULT_MAX_SCRAPE_AGE_MS,
      nowMs: Date.now,
      ...rest,
    };
  }

  async sample(pool: string): Promise<PoolSample | undefined> {
    const now = this.options.nowMs();
    if (this.last === undefined || now - this.last.atMs > this.options.maxScrapeAgeMs) {
      this.last = { atMs: now, scrapes: Promise.all(this.urls().map((url) => this.scrape(url))) };
    }
    const { atMs, scrapes } = this.last;
    const answered = (await scrapes).filter((scrape) => scrape.ok);
    if (answered.length === 0) return undefined;
    return combine(answered.map((scrape) => scrape.pools.find((candidate) => candidate.name === pool)), atMs);
  }

  private async scrape(url: string): Promise<Scrape> {
    const outcome = await fetchJson(url, this.options.timeoutMs, this.options.maxResponseBytes).then(
      (body): Scrape => {
        const parsed = answerSchema.safeParse(body);
        if (parsed.success) return { ok: true, pools: parsed.data.pools };
        const issue = parsed.error.issues[0]!;
        return { ok: false, problem: `${issue.path.join('.') || '(top level)'}: ${issue.message}` };
      },
      (error: unknown): Scrape => ({ ok: false, problem: (error as Error).message }),
    );
    if (!outcome.ok && !this.failing.has(url)) {
      this.failing.add(url);
      this.options.onProblem?.(`proxy admin endpoint ${url} is left out of the metrics: ${outcome.problem}`);
    } else if (outcome.ok && this.failing.delete(url)) {
      this.options.onProblem?.(`proxy admin endpoint ${url} answers again`);
    }
    return outcome;
  }
}

/** GETs `url` and parses its JSON, within a timeout and a size bound (the answer is outside input). */
export async function fetchJson(url: string, timeoutMs: number, maxBytes: number): Promise<unknown> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).catch((error: unknown) => {
    throw new Error(`no answer within ${timeoutMs} ms (${(error as Error).message})`);
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (reader !== undefined) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`the answer is larger than ${maxBytes} bytes (maxResponseBytes)`);
    }
    chunks.push(value);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new Error('the answer is not JSON');
  }
}

/** One pool's view from several proxies (undefined where a proxy does not know the pool). */
export function combine(views: (ProxyPool | undefined)[], sampledAtMs: number): PoolSample {
  const known = views.filter((view): view is ProxyPool => view !== undefined);
  const sample: PoolSample = { sampledAtMs, backends: combineBackends(known) };
  const complete = known.filter((view) => view.shedPerSecond !== undefined && view.errorRatio !== undefined && view.latencyMs !== undefined);
  if (complete.length > 0) {
    const served = complete.map((view) => view.backends.reduce((sum, backend) => sum + (backend.requestsPerSecond ?? 0), 0));
    const total = served.reduce((sum, value) => sum + value, 0);
    const weighted = (value: (view: ProxyPool) => number) =>
      total > 0 ? complete.reduce((sum, view, i) => sum + value(view) * served[i]!, 0) / total : Math.max(...complete.map(value));
    const external: Record<string, number> = {};
    for (const view of complete) for (const [name, value] of Object.entries(view.external ?? {})) external[name] = Math.max(external[name] ?? Number.NEGATIVE_INFINITY, value);
    sample.pool = {
      shedPerSecond: complete.reduce((sum, view) => sum + view.shedPerSecond!, 0),
      errorRatio: weighted((view) => view.errorRatio!),
      latencyMs: {
        mean: weighted((view) => view.latencyMs!.mean),
        p50: Math.max(...complete.map((view) => view.latencyMs!.p50)),
        p95: Math.max(...complete.map((view) => view.latencyMs!.p95)),
        p99: Math.max(...complete.map((view) => view.latencyMs!.p99)),
      },
      external,
    };
  }
  return sample;
}

function combineBackends(views: ProxyPool[]): BackendSample[] {
  const byAddress = new Map<string, BackendSample>();
  for (const view of views) {
    for (const backend of view.backends) {
      const combined = byAddress.get(backend.address) ?? { address: backend.address };
      if (backend.healthy !== undefined) combined.healthy = (combined.healthy ?? false) || backend.healthy;
      if (backend.inflight !== undefined) combined.inflight = (combined.inflight ?? 0) + backend.inflight;
      if (backend.requestsPerSecond !== undefined) combined.requestsPerSecond = (combined.requestsPerSecond ?? 0) + backend.requestsPerSecond;
      byAddress.set(backend.address, combined);
    }
  }
  return [...byAddress.values()];
}
