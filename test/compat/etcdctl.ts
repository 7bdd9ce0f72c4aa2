// Runs etcdctl (v3 API) against an endpoint, parses its `-w json` output without losing 64-bit
// integers, and normalizes the few fields that legitimately differ between two correct servers.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { INSTALL_HINT } from './etcd-process.ts';

export const ETCDCTL_BINARY = '/usr/bin/etcdctl';

/** Bound on one etcdctl invocation that is expected to exit by itself. */
export const ETCDCTL_TIMEOUT_MS = 10_000;
/** After SIGINT, how long etcdctl gets to clean up (resign, unlock) before SIGKILL. */
const INTERRUPT_GRACE_MS = 3_000;
const KILL_WAIT_MS = 2_000;
/** etcdctl's own bounds, kept below ETCDCTL_TIMEOUT_MS so that its error message wins the race. */
const ETCDCTL_GLOBAL_FLAGS = ['--dial-timeout=2s', '--command-timeout=5s'];

export interface EtcdctlInvocation {
  args: readonly string[];
  /** host:port; omitted for offline commands such as `snapshot status`. */
  endpoint?: string;
  stdin?: string;
  cwd?: string;
}

export interface EtcdctlOutcome {
  /** Exit code, or null when etcdctl was ended by a signal. */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Ended by us (SIGINT) because it was long-running, as intended. */
  interrupted: boolean;
  /** Ended by us because it overran its bound: a failure of the step. */
  timedOut: boolean;
}

const liveProcesses = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveProcesses) child.kill('SIGKILL');
});

/** A running etcdctl: for long-running commands (watch, elect, lock) that are stopped by us. */
export class EtcdctlProcess {
  readonly #child: ChildProcess;
  #stdout = '';
  #stderr = '';
  #exitCode: number | null = null;
  #interrupted = false;
  readonly #exited: Promise<void>;
  readonly #lineWaiters = new Set<() => void>();

  constructor(invocation: EtcdctlInvocation) {
    if (!existsSync(ETCDCTL_BINARY)) throw new Error(`${ETCDCTL_BINARY} is missing: ${INSTALL_HINT}`);
    const endpointFlags = invocation.endpoint === undefined ? [] : [`--endpoints=${invocation.endpoint}`];
    const args = [...endpointFlags, ...ETCDCTL_GLOBAL_FLAGS, ...invocation.args];
    this.#child = spawn(ETCDCTL_BINARY, args, {
      cwd: invocation.cwd,
      env: etcdctlEnvironment(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    liveProcesses.add(this.#child);
    this.#child.stdout!.setEncoding('utf8');
    this.#child.stderr!.setEncoding('utf8');
    this.#child.stdout!.on('data', (chunk: string) => {
      this.#stdout += chunk;
      for (const wake of this.#lineWaiters) wake();
    });
    this.#child.stderr!.on('data', (chunk: string) => (this.#stderr += chunk));
    this.#exited = new Promise((resolve) => {
      this.#child.once('close', (code) => {
        this.#exitCode = code;
        liveProcesses.delete(this.#child);
        for (const wake of this.#lineWaiters) wake();
        resolve();
      });
      this.#child.once('error', (error) => {
        this.#stderr += `\nspawn failed: ${error.message}`;
        liveProcesses.delete(this.#child);
        resolve();
      });
    });
    // etcdctl may exit before reading its input; the resulting EPIPE is not an error of the step.
    this.#child.stdin!.on('error', () => {});
    this.#child.stdin!.end(invocation.stdin ?? '');
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null && liveProcesses.has(this.#child);
  }

  stdoutLineCount(): number {
    return completeLines(this.#stdout).length;
  }

  /** Resolves true once stdout holds `count` complete lines, false if etcdctl exits or time runs out first. */
  async waitForLines(count: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.stdoutLineCount() < count) {
      if (!this.running || Date.now() >= deadline) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#lineWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.max(0, deadline - Date.now()));
        this.#lineWaiters.add(wake);
      });
    }
    return true;
  }

  /** Waits for etcdctl to exit by itself; past the bound it is killed and the outcome says timedOut. */
  async waitForExit(timeoutMs: number): Promise<EtcdctlOutcome> {
    const exitedInTime = await Promise.race([this.#exited.then(() => true), delay(timeoutMs).then(() => false)]);
    if (exitedInTime) return this.#outcome(false);
    await this.#stop();
    return this.#outcome(true);
  }

  /** Sends SIGINT, as a user pressing ^C would, so that etcdctl resigns or unlocks before it exits. */
  async interrupt(): Promise<EtcdctlOutcome> {
    if (this.running) this.#interrupted = true;
    await this.#stop();
    return this.#outcome(false);
  }

  async #stop(): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGINT');
    if (await Promise.race([this.#exited.then(() => true), delay(INTERRUPT_GRACE_MS).then(() => false)])) return;
    this.#child.kill('SIGKILL');
    await Promise.race([this.#exited, delay(KILL_WAIT_MS)]);
  }

  #outcome(timedOut: boolean): EtcdctlOutcome {
    return { exitCode: this.#exitCode, stdout: this.#stdout, stderr: this.#stderr, interrupted: this.#interrupted, timedOut };
  }
}

/** Runs etcdctl to completion, bounded by `timeoutMs`. */
export function runEtcdctl(invocation: EtcdctlInvocation, timeoutMs = ETCDCTL_TIMEOUT_MS): Promise<EtcdctlOutcome> {
  return new EtcdctlProcess(invocation).waitForExit(timeoutMs);
}

/** ETCDCTL_API=3 and none of the developer's ETCDCTL_* settings (endpoints, certificates, users). */
function etcdctlEnvironment(): NodeJS.ProcessEnv {
  const environment = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('ETCDCTL_')));
  return { ...environment, ETCDCTL_API: '3' };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop();
  return lines;
}

// ---- Parsing ----

/** One line of etcdctl's stdout: a parsed JSON document, or text (prompts, simple output). */
export type OutputLine = { json: unknown } | { text: string };

/**
 * Splits stdout into lines; in JSON mode a line that starts with `{` or `[` is parsed. etcdctl
 * prints one JSON document per line (one per response for `watch`), sometimes after text prompts
 * (`txn -i` prints "compares:" first).
 */
export function parseEtcdctlOutput(stdout: string, jsonMode: boolean): OutputLine[] {
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line) => (jsonMode && /^[[{]/.test(line) ? { json: parseJsonExact(line) } : { text: line }));
}

type ReviverWithSource = (key: string, value: unknown, context: { source?: string }) => unknown;

/**
 * JSON.parse that keeps integers above 2^53 exact, as bigint. etcdctl prints 64-bit IDs (cluster,
 * member, lease) as bare JSON numbers, which a plain JSON.parse rounds. The reviver's source text
 * (Node 22+) holds the digits as etcdctl wrote them.
 */
export function parseJsonExact(text: string): unknown {
  const reviver: ReviverWithSource = (_key, value, context) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value) && context.source !== undefined && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  };
  return JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
}

/** The JSON document of a step's output that carries `field` (e.g. `ID` of `lease grant -w json`). */
export function findJsonField(lines: readonly OutputLine[], field: string): unknown {
  for (const line of lines) {
    if ('json' in line && line.json !== null && typeof line.json === 'object' && field in line.json) {
      return (line.json as Record<string, unknown>)[field];
    }
  }
  return undefined;
}

/**
 * What stderr says to a user: etcdctl's "Error: ..." lines and messages such as "watch was
 * canceled (...)". The client library's structured log lines ({"level":"warn","ts":...}) carry
 * timestamps and random client IDs and are left out.
 */
export function userFacingErrors(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.trim() !== '' && !isStructuredLogLine(line));
}

function isStructuredLogLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    return 'level' in parsed;
  } catch {
    return false;
  }
}

// ---- Normalization ----

/**
 * Replaces exactly the whitelisted fields whose values differ between two correct servers (or two
 * runs of the same one) by placeholders; every other field (revisions, keys and values, counts,
 * versions, errors) is left as it is and must match.
 *
 * Identities are preserved: the first cluster, member or lease ID seen becomes `<lease-1>`, the
 * next new one `<lease-2>`, and a later mention of the same ID gets the same placeholder, so a key's
 * `lease` field must still name the lease granted earlier, and `leader` must still be the member
 * that answered. One Normalizer spans one run of a script.
 *
 * The whitelist:
 *  - cluster_id; member_id, leader, members[].ID, memberID: random per cluster and member.
 *  - raft_term, raftTerm, raftIndex, raftAppliedIndex: Raft internals that count elections and
 *    entries (including internal ones), not client-visible state.
 *  - lease IDs: ID and id of lease commands, leases[].id, a key's lease; in text, `lease <hex>` and
 *    the `<hex>` suffix of lock and election keys (`mylock/<hex>`), named by the script.
 *  - ttl (remaining TTL of `lease timetolive`, when >= 0; -1 means "no such lease" and is kept),
 *    and `remaining(<n>s)` in its text output.
 *  - Endpoint, clientURLs, peerURLs: contain the free ports each member was started on.
 *  - dbSize, dbSizeInUse, and `snapshot status`'s hash and totalSize: bytes and checksums of the
 *    storage engine's file, which embeds the member and cluster IDs.
 */
export class Normalizer {
  readonly #clusterIds = new Map<bigint, string>();
  readonly #memberIds = new Map<bigint, string>();
  readonly #leaseIds = new Map<bigint, string>();
  readonly #sessionKeyPattern: RegExp | undefined;

  /** @param sessionKeyPrefixes lock and election names: their keys end in `/<lease ID in hex>`. */
  constructor(sessionKeyPrefixes: readonly string[] = []) {
    const names = sessionKeyPrefixes.map((prefix) => prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.#sessionKeyPattern = names.length === 0 ? undefined : new RegExp(`\\b(${names.join('|')})/([0-9a-f]{1,16})\\b`, 'g');
  }

  /** The placeholder of a lease ID, the same one its JSON and text mentions get. */
  leasePlaceholder(id: bigint): string {
    return placeholder(this.#leaseIds, 'lease', id);
  }

  json(value: unknown, field?: string, insideMembers = false): unknown {
    if (Array.isArray(value)) return value.map((element) => this.json(element, field, insideMembers || field === 'members'));
    if (value !== null && typeof value === 'object') {
      const normalized: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value)) normalized[key] = this.json(child, key, insideMembers);
      return normalized;
    }
    return field === undefined ? value : this.#field(field, value, insideMembers);
  }

  #field(field: string, value: unknown, insideMembers: boolean): unknown {
    switch (field) {
      case 'cluster_id':
        return placeholder(this.#clusterIds, 'cluster', toBigInt(value));
      case 'member_id':
      case 'leader':
      case 'memberID':
        return placeholder(this.#memberIds, 'member', toBigInt(value));
      case 'ID':
      case 'id':
        return insideMembers ? placeholder(this.#memberIds, 'member', toBigInt(value)) : this.leasePlaceholder(toBigInt(value));
      case 'lease':
        return toBigInt(value) === 0n ? value : this.leasePlaceholder(toBigInt(value));
      case 'raft_term':
      case 'raftTerm':
        return '<raft-term>';
      case 'raftIndex':
      case 'raftAppliedIndex':
        return '<raft-index>';
      case 'ttl':
        return typeof value === 'number' && value >= 0 ? '<remaining-ttl>' : value;
      case 'Endpoint':
        return '<endpoint>';
      case 'clientURLs':
        return '<client-url>';
      case 'peerURLs':
        return '<peer-url>';
      case 'dbSize':
      case 'dbSizeInUse':
      case 'totalSize':
        return '<storage-bytes>';
      case 'hash':
        return '<storage-hash>';
      default:
        return value;
    }
  }

  text(line: string): string {
    let normalized = line
      .replace(/\blease ([0-9a-f]{1,16})\b/g, (_match, hex: string) => `lease ${this.leasePlaceholder(BigInt(`0x${hex}`))}`)
      .replace(/\bremaining\(\d+s\)/g, 'remaining(<remaining-ttl>)');
    if (this.#sessionKeyPattern !== undefined) {
      normalized = normalized.replace(
        this.#sessionKeyPattern,
        (_match, prefix: string, hex: string) => `${prefix}/${this.leasePlaceholder(BigInt(`0x${hex}`))}`,
      );
    }
    return normalized;
  }
}

/** Normalizes one parsed etcdctl JSON document (see Normalizer for the whitelist). */
export function normalize(json: unknown, normalizer = new Normalizer()): unknown {
  return normalizer.json(json);
}

function placeholder(seen: Map<bigint, string>, kind: string, id: bigint): string {
  let name = seen.get(id);
  if (name === undefined) {
    name = `<${kind}-${seen.size + 1}>`;
    seen.set(id, name);
  }
  return name;
}

function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new Error(`expected an integer ID, got ${JSON.stringify(value)}`);
}
