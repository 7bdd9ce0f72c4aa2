// A local copy of one key or one prefix of the coordination store, kept current: read it, watch
// it from the revision after the read, apply every event. When the watch cannot resume (its
// revision was compacted) or the first read fails (the store is unreachable), it reads again after
// a backoff. While the store is unreachable the copy keeps its last contents: callers that must
// not act on old data (health results) judge freshness themselves, by when each key last changed.
//
// Proxies mirror the configuration, health results, drains and instance records; the control
// plane mirrors its members, the proxies and the configuration.

import { CoordError, type CoordStore, type KeyValue, type WatchEvent, type WatchHandle } from '../coord/coord-store.ts';

export interface MirrorChange {
  /** The store's revision after the change. */
  revision: bigint;
  /** Keys written (created or changed), with their new values. */
  updated: KeyValue[];
  /** Keys deleted. */
  deleted: string[];
  /** True when the whole copy was read again (first read, or after a compacted watch). */
  reread: boolean;
}

export interface StoreMirrorOptions {
  /** The key, or the prefix when `prefix` is true. */
  key: string;
  prefix: boolean;
  onChange: (change: MirrorChange) => void;
  /** The store could not be read or watched (it is retried); for logs. */
  onProblem?: (message: string) => void;
  /** Backoff between attempts while the store is unreachable: doubles from the first to the last. */
  retryFirstMs?: number;
  retryMaxMs?: number;
}

const DEFAULT_RETRY_FIRST_MS = 200;
const DEFAULT_RETRY_MAX_MS = 5_000;

export class StoreMirror {
  private readonly store: CoordStore;
  private readonly options: StoreMirrorOptions;
  private readonly kvs = new Map<string, KeyValue>();
  private stopped = false;
  private watch: WatchHandle | undefined;
  private wake: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private loadedOnce = false;
  private readonly loadedWaiters: (() => void)[] = [];
  private lastRevision = 0n;

  constructor(store: CoordStore, options: StoreMirrorOptions) {
    this.store = store;
    this.options = options;
  }

  /** Starts mirroring; returns at once (see loaded()). */
  start(): void {
    this.running ??= this.run();
  }

  /** Resolves once the first read succeeded (or when stopped). */
  loaded(): Promise<void> {
    if (this.loadedOnce || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.loadedWaiters.push(resolve));
  }

  get isLoaded(): boolean {
    return this.loadedOnce;
  }

  /** The store revision the copy reflects. */
  get revision(): bigint {
    return this.lastRevision;
  }

  get(key: string): KeyValue | undefined {
    return this.kvs.get(key);
  }

  values(): KeyValue[] {
    return [...this.kvs.values()];
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.watch?.cancel().catch(() => undefined);
    for (const resolve of this.loadedWaiters.splice(0)) resolve();
    await this.running;
  }

  private async run(): Promise<void> {
    let delayMs = this.options.retryFirstMs ?? DEFAULT_RETRY_FIRST_MS;
    while (!this.stopped) {
      try {
        const revision = await this.reread();
        delayMs = this.options.retryFirstMs ?? DEFAULT_RETRY_FIRST_MS;
        await this.follow(revision);
      } catch (error) {
        if (this.stopped) return;
        this.options.onProblem?.(`${this.describe()}: ${(error as Error).message}; trying again in ${delayMs} ms`);
        await this.sleep(delayMs);
        delayMs = Math.min(delayMs * 2, this.options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
      }
    }
  }

  private describe(): string {
    return this.options.prefix ? `keys under ${this.options.key}` : `key ${this.options.key}`;
  }

  /** Reads everything again and reports the difference; returns the revision read at. */
  private async reread(): Promise<bigint> {
    const result = await this.store.range(this.options.key, { prefix: this.options.prefix });
    if (this.stopped) return result.revision;
    const seen = new Set<string>();
    const updated: KeyValue[] = [];
    for (const kv of result.kvs) {
      seen.add(kv.key);
      if (this.kvs.get(kv.key)?.modRevision !== kv.modRevision) updated.push(kv);
      this.kvs.set(kv.key, kv);
    }
    const deleted = [...this.kvs.keys()].filter((key) => !seen.has(key));
    for (const key of deleted) this.kvs.delete(key);
    this.lastRevision = result.revision;
    this.options.onChange({ revision: result.revision, updated, deleted, reread: true });
    if (!this.loadedOnce) {
      this.loadedOnce = true;
      for (const resolve of this.loadedWaiters.splice(0)) resolve();
    }
    return result.revision;
  }

  /** Applies watch events until the watch ends for good (compaction) or the mirror stops. */
  private async follow(readRevision: bigint): Promise<void> {
    if (this.stopped) return;
    const ended = new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    this.watch = await this.store.watch(this.options.key, { prefix: this.options.prefix, fromRevision: readRevision + 1n }, {
      onEvents: (events) => this.apply(events),
      onError: (error: CoordError) => {
        this.options.onProblem?.(`${this.describe()}: the watch ended (${error.message}); reading again`);
        this.wake?.();
      },
    });
    if (this.stopped) await this.watch.cancel();
    await ended;
    await this.watch.cancel().catch(() => undefined);
    this.watch = undefined;
  }

  private apply(events: WatchEvent[]): void {
    const updated = new Map<string, KeyValue>();
    const deleted = new Set<string>();
    let revision = this.lastRevision;
    for (const event of events) {
      if (event.kv.modRevision > revision) revision = event.kv.modRevision;
      if (event.type === 'put') {
        this.kvs.set(event.kv.key, event.kv);
        updated.set(event.kv.key, event.kv);
        deleted.delete(event.kv.key);
      } else {
        this.kvs.delete(event.kv.key);
        deleted.add(event.kv.key);
        updated.delete(event.kv.key);
      }
    }
    this.lastRevision = revision;
    this.options.onChange({ revision, updated: [...updated.values()], deleted: [...deleted], reread: false });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
