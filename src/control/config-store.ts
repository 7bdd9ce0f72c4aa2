// The applied configuration in the coordination store: `concord config apply` validates a whole
// file and writes its text to /concord/config (with a config-applied event, in one transaction);
// proxies and control-plane members watch the key and switch to each new revision live.
//
// The text is stored as written (comments included), so `concord config get` and
// `etcdctl get /concord/config` give back what the operator applied. Its mod revision is the
// configuration's revision. Readers validate it again: anyone with etcdctl can write the key, and a
// value that does not validate is refused whole; the running configuration stays (and the refusal
// is reported, with every problem by path).

import { createHash } from 'node:crypto';
import type { CoordStore } from '../coord/coord-store.ts';
import { ConfigError, parseConfigText, type ConcordConfig } from './config.ts';
import { EventTimeline } from './events.ts';
import { CONFIG_KEY } from './store-keys.ts';
import { StoreMirror } from './store-mirror.ts';

/** A configuration larger than this is refused (the store's default request limit is 1.5 MiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export class ConfigConflictError extends Error {
  override name = 'ConfigConflictError';
  readonly code = 'CONCORD_E_CONFIG_CONFLICT';
}

export interface AppliedConfig {
  config: ConcordConfig;
  text: string;
  /** The key's mod revision: the configuration's revision. */
  revision: bigint;
  /** First 12 hex digits of the text's SHA-256, to tell versions apart in events and status. */
  digest: string;
}

export function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

function checkSize(text: string, source: string): void {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_CONFIG_BYTES) throw new ConfigError(`${source} is ${bytes} bytes; a configuration may be at most ${MAX_CONFIG_BYTES} bytes`);
}

/** Validates `text` (throws ConfigError with every problem) and returns the configuration. */
export function validateConfigText(text: string, source: string): ConcordConfig {
  checkSize(text, source);
  return parseConfigText(text, source);
}

export interface ApplyOptions {
  /** Who applies (recorded in the event). */
  by: string;
  atMs: number;
  /** Apply only if the stored configuration is still at this revision (0: only if none is stored). */
  expectRevision?: bigint;
}

/**
 * Validates and writes the configuration. Nothing is written when it does not validate (a
 * ConfigError lists every problem) or, with expectRevision, when someone applied another in between.
 */
export async function applyConfig(store: CoordStore, text: string, options: ApplyOptions): Promise<AppliedConfig & { previousRevision: bigint | undefined }> {
  const config = validateConfigText(text, 'the configuration');
  const digest = digestOf(text);
  const timeline = new EventTimeline(store, 'concord-cli');
  const event = timeline.op({
    atMs: options.atMs, source: 'cli', kind: 'config-applied',
    message: `${options.by} applied configuration ${digest} (pools: ${config.pools.map((pool) => pool.name).join(', ') || 'none'})`,
    data: { digest, by: options.by, pools: config.pools.map((pool) => pool.name) },
  });
  const compare = options.expectRevision === undefined ? [] : [{ key: CONFIG_KEY, target: 'mod' as const, result: '=' as const, value: options.expectRevision }];
  const result = await store.txn({
    compare,
    success: [{ kind: 'range', key: CONFIG_KEY, keysOnly: true }, { kind: 'put', key: CONFIG_KEY, value: text }, event],
    failure: [{ kind: 'range', key: CONFIG_KEY, keysOnly: true }],
  });
  const previous = result.results[0]?.kind === 'range' ? result.results[0].result.kvs[0] : undefined;
  if (!result.succeeded) {
    throw new ConfigConflictError(`the stored configuration is at revision ${previous?.modRevision ?? 0}, not ${options.expectRevision}: someone applied another one; look at it (concord config get) and apply again`);
  }
  return { config, text, revision: result.revision, digest, previousRevision: previous?.modRevision };
}

/** The stored configuration, validated; undefined when none was applied. Throws ConfigError when it does not validate. */
export async function readAppliedConfig(store: CoordStore): Promise<AppliedConfig | undefined> {
  const kv = await store.get(CONFIG_KEY);
  if (kv === undefined) return undefined;
  return { config: validateConfigText(kv.value, `the configuration at ${CONFIG_KEY} (revision ${kv.modRevision})`), text: kv.value, revision: kv.modRevision, digest: digestOf(kv.value) };
}

export interface AppliedConfigWatcherOptions {
  /** A new valid configuration (also the first one read). */
  onConfig: (applied: AppliedConfig) => void;
  /** A stored value that does not validate; the running configuration stays. */
  onRejected?: (problem: { revision: bigint; digest: string; message: string }) => void;
  /** The key was deleted; the running configuration stays. */
  onDeleted?: (revision: bigint) => void;
  onProblem?: (message: string) => void;
}

/** Follows /concord/config: every valid new revision is delivered once, in order. */
export class AppliedConfigWatcher {
  private readonly mirror: StoreMirror;
  private current: AppliedConfig | undefined;
  private lastSeenRevision = 0n;

  constructor(store: CoordStore, options: AppliedConfigWatcherOptions) {
    this.mirror = new StoreMirror(store, {
      key: CONFIG_KEY,
      prefix: false,
      onProblem: options.onProblem,
      onChange: (change) => {
        const kv = change.updated.find((candidate) => candidate.key === CONFIG_KEY);
        if (kv === undefined) {
          if (change.deleted.includes(CONFIG_KEY) && this.current !== undefined) options.onDeleted?.(change.revision);
          return;
        }
        if (kv.modRevision === this.lastSeenRevision) return;
        this.lastSeenRevision = kv.modRevision;
        try {
          const config = validateConfigText(kv.value, `the configuration at ${CONFIG_KEY} (revision ${kv.modRevision})`);
          this.current = { config, text: kv.value, revision: kv.modRevision, digest: digestOf(kv.value) };
          options.onConfig(this.current);
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          options.onRejected?.({ revision: kv.modRevision, digest: digestOf(kv.value), message: error.message });
        }
      },
    });
  }

  start(): void {
    this.mirror.start();
  }

  /** Resolves once the key was read once (whether or not a configuration is stored). */
  loaded(): Promise<void> {
    return this.mirror.loaded();
  }

  get applied(): AppliedConfig | undefined {
    return this.current;
  }

  stop(): Promise<void> {
    return this.mirror.stop();
  }
}
