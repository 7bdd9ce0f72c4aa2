// A lease and its keep-alive loop over etcd's LeaseKeepAlive stream.
//
// The deadline is what makes a lease safe to build leadership on: it is the send time of the last
// keep-alive the store confirmed plus the TTL the store confirmed, on this process's monotonic
// clock. The store cannot have expired the lease before then (its own timer started no earlier than
// our send), and after then this process must assume it has. A process that was paused (SIGSTOP, a
// long GC, a VM migration) finds its deadline passed when it resumes, and says the lease is lost.

import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, LeaseClient } from 'etcd3';
import { CoordError, type LeaseHandle } from './coord-store.ts';
import { toCoordError } from './etcd-errors.ts';

export interface EtcdLeaseSettings {
  id: bigint;
  ttlSeconds: number;
  /** When the grant request was sent (the first deadline counts from there). */
  grantedAtMs: number;
  nowMs: () => number;
  requestTimeoutMs: number;
  /** LeaseRevoke through the store's call wrapper (deadline, authentication, error mapping). */
  revoke: (id: bigint) => Promise<void>;
  /** Called once the lease is revoked, released or lost. */
  onEnd: () => void;
}

/** The keep-alive loop looks at its deadline at least this often. */
const MAX_CHECK_INTERVAL_MS = 250;

type LeaseState = 'alive' | 'lost' | 'ended';

export class EtcdLease implements LeaseHandle {
  readonly id: bigint;
  readonly ttlSeconds: number;
  private readonly client: LeaseClient;
  private readonly settings: EtcdLeaseSettings;
  private state: LeaseState = 'alive';
  private deadline: number;
  private readonly lostListeners: ((error: CoordError) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined;
  private opening = false;
  /** Send times of keep-alives not answered yet, oldest first (the stream answers in order). */
  private pendingSentAtMs: number[] = [];
  private lastSentAtMs = Number.NEGATIVE_INFINITY;

  constructor(client: LeaseClient, settings: EtcdLeaseSettings) {
    this.client = client;
    this.settings = settings;
    this.id = settings.id;
    this.ttlSeconds = settings.ttlSeconds;
    this.deadline = settings.grantedAtMs + settings.ttlSeconds * 1000;
  }

  deadlineMs(): number {
    return this.deadline;
  }

  alive(): boolean {
    return this.state === 'alive' && this.settings.nowMs() < this.deadline;
  }

  onLost(listener: (error: CoordError) => void): void {
    this.lostListeners.push(listener);
  }

  startKeepAlive(): void {
    const intervalMs = (this.ttlSeconds * 1000) / 3;
    this.timer = setInterval(() => this.tick(intervalMs), Math.min(intervalMs, MAX_CHECK_INTERVAL_MS));
    this.timer.unref();
    this.tick(intervalMs);
  }

  async keepAliveOnce(): Promise<void> {
    if (this.state !== 'alive') throw this.notAlive();
    const stream = await this.client.leaseKeepAlive();
    const sentAtMs = this.settings.nowMs();
    try {
      const response = await new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer within ${this.settings.requestTimeoutMs} ms`)), this.settings.requestTimeoutMs);
        stream.on('data', (res) => {
          clearTimeout(timer);
          resolve(res);
        });
        stream.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
        stream.write({ ID: this.id.toString() });
      });
      this.confirm(sentAtMs, response);
    } catch (error) {
      throw toCoordError(error, `keep-alive of lease ${this.id.toString(16)}`, this.settings.requestTimeoutMs);
    } finally {
      stream.end();
    }
  }

  async revoke(): Promise<void> {
    const wasAlive = this.state === 'alive';
    this.end('ended');
    if (!wasAlive) return;
    try {
      await this.settings.revoke(this.id);
    } catch (error) {
      // A lease the store no longer has is revoked already.
      if (/lease not found/.test(String((error as Error).message))) return;
      throw toCoordError(error, `revoke of lease ${this.id.toString(16)}`, this.settings.requestTimeoutMs);
    }
  }

  release(): void {
    this.end('ended');
  }

  // -------------------------------------------------------------------------------------------

  private tick(intervalMs: number): void {
    if (this.state !== 'alive') return;
    const now = this.settings.nowMs();
    if (now - this.lastSentAtMs >= intervalMs) this.send(now);
    else this.deadlinePassed(now);
  }

  /** Loses the lease once its deadline has passed (checked before every send: a resumed process must not renew a lease the store let go). */
  private deadlinePassed(now: number): boolean {
    if (now < this.deadline) return false;
    this.lose(`no keep-alive was confirmed before its deadline (TTL ${this.ttlSeconds} s): the store has expired it or is about to`);
    return true;
  }

  private send(now: number): void {
    if (this.deadlinePassed(now)) return;
    if (this.stream === undefined) {
      this.open();
      return;
    }
    this.lastSentAtMs = now;
    this.pendingSentAtMs.push(now);
    this.stream.write({ ID: this.id.toString() });
  }

  private open(): void {
    if (this.opening) return;
    this.opening = true;
    this.client.leaseKeepAlive().then(
      (stream) => {
        this.opening = false;
        if (this.state !== 'alive') {
          stream.end();
          return;
        }
        this.stream = stream;
        this.pendingSentAtMs = [];
        stream.on('data', (response) => this.onResponse(response));
        stream.on('error', () => this.dropStream(stream));
        stream.on('end', () => this.dropStream(stream));
        this.send(this.settings.nowMs());
      },
      () => {
        // The store is unreachable right now; the next tick tries again until the deadline passes.
        this.opening = false;
      },
    );
  }

  private dropStream(stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.pendingSentAtMs = [];
    this.lastSentAtMs = Number.NEGATIVE_INFINITY;
  }

  private onResponse(response: ILeaseKeepAliveResponse): void {
    const sentAtMs = this.pendingSentAtMs.shift();
    if (sentAtMs === undefined || this.state !== 'alive') return;
    this.confirm(sentAtMs, response);
  }

  private confirm(sentAtMs: number, response: ILeaseKeepAliveResponse): void {
    if (Number(response.TTL) <= 0) {
      this.lose('the store says it has expired');
      return;
    }
    this.deadline = Math.max(this.deadline, sentAtMs + Number(response.TTL) * 1000);
  }

  private lose(reason: string): void {
    if (this.state !== 'alive') return;
    this.end('lost');
    const error = new CoordError('CONCORD_E_STORE_LEASE_LOST', `lease ${this.id.toString(16)} is lost: ${reason}`);
    for (const listener of this.lostListeners) listener(error);
  }

  private notAlive(): CoordError {
    return new CoordError('CONCORD_E_STORE_LEASE_LOST', `lease ${this.id.toString(16)} is ${this.state === 'lost' ? 'lost' : 'no longer kept (revoked or released)'}`);
  }

  private end(state: 'lost' | 'ended'): void {
    if (this.state !== 'alive') return;
    this.state = state;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.stream?.end();
    this.stream = undefined;
    this.settings.onEnd();
  }
}
