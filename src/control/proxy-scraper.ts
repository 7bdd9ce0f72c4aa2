// Reads every registered proxy's admin /backends report (with the rates and shedding state the
// proxy adds), for the overview and the dashboard. One scrape per proxy per maxAgeMs at most, with
// a timeout and a size bound; a proxy that does not answer is left out (its last error is kept).

import { fetchJson } from '../autoscale/controller/proxy-metrics-source.ts';

export interface ProxyRegistration {
  name: string;
  /** http://host:port of its admin port. */
  admin: string;
  /** host:port of its traffic listener. */
  listen: string;
}

/** The fields of a proxy's /backends report the control plane reads (everything is optional: it is outside input). */
export interface ProxyReport {
  pools: {
    name: string;
    balance?: string;
    requestsTotal?: number;
    requestsPerSecond?: number;
    latencyMs?: { mean: number; p50: number; p95: number; p99: number };
    shed?: { algorithm: string; limit: number | null; inflight: number; queueLength: number; shedding: boolean; rejected: Record<string, number> } | null;
    backends: {
      address: string;
      zone?: string;
      state?: string;
      configuredWeight?: number;
      effectiveWeight?: number;
      activeRequests?: number;
      ewmaLatencyMs?: number;
      lastCheck?: { ok: boolean; detail: string; at: string } | null;
    }[];
  }[];
}

export interface ProxyScrape {
  proxy: ProxyRegistration;
  report: ProxyReport | undefined;
  problem: string | undefined;
}

export const DEFAULT_SCRAPE_TIMEOUT_MS = 1_000;
export const DEFAULT_SCRAPE_MAX_BYTES = 4 * 1024 * 1024;
export const DEFAULT_SCRAPE_MAX_AGE_MS = 1_000;

export class ProxyScraper {
  private readonly proxies: () => ProxyRegistration[];
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private last: { atMs: number; scrapes: Promise<ProxyScrape[]> } | undefined;

  constructor(proxies: () => ProxyRegistration[], options: { timeoutMs?: number; maxBytes?: number; maxAgeMs?: number } = {}) {
    this.proxies = proxies;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_SCRAPE_TIMEOUT_MS;
    this.maxBytes = options.maxBytes ?? DEFAULT_SCRAPE_MAX_BYTES;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_SCRAPE_MAX_AGE_MS;
  }

  scrape(): Promise<ProxyScrape[]> {
    const now = performance.now();
    if (this.last === undefined || now - this.last.atMs > this.maxAgeMs) {
      this.last = { atMs: now, scrapes: Promise.all(this.proxies().map((proxy) => this.scrapeOne(proxy))) };
    }
    return this.last.scrapes;
  }

  private async scrapeOne(proxy: ProxyRegistration): Promise<ProxyScrape> {
    try {
      const report = await fetchJson(`${proxy.admin}/backends`, this.timeoutMs, this.maxBytes) as ProxyReport;
      if (!Array.isArray(report?.pools)) return { proxy, report: undefined, problem: 'the answer has no pools list' };
      return { proxy, report, problem: undefined };
    } catch (error) {
      return { proxy, report: undefined, problem: (error as Error).message };
    }
  }
}
