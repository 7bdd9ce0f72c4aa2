// At-most-once execution of client commands on top of Raft (thesis §6.3, "Implementing
// linearizable semantics"): every command carries (clientId, sequence); the state machine remembers,
// per client, the highest sequence applied and its response. A command re-proposed after a leader
// change, or retried by the client through another member, is then applied once and answered from
// the cache afterwards. Sessions are part of the replicated state (and of its snapshots), so every
// member makes the same decision.

export type SessionCheck<Response> =
  | { kind: 'new' }
  /** Already applied: answer with the cached response, do not apply again. */
  | { kind: 'duplicate'; response: Response }
  /** Older than the client's latest applied command: the client has moved on; ignore it. */
  | { kind: 'stale'; latestSequence: number };

interface Session<Response> {
  sequence: number;
  response: Response;
  /** Log index of the client's latest command, used to evict the least recently active session. */
  lastIndex: number;
}

export interface SessionSnapshot<Response> {
  maxSessions: number;
  sessions: [string, Session<Response>][];
}

export class ClientSessions<Response> {
  private readonly sessions = new Map<string, Session<Response>>();
  /** Beyond this many clients the least recently active session is forgotten (its retries may apply twice). */
  readonly maxSessions: number;
  evictions = 0;

  constructor(maxSessions: number) {
    if (!Number.isSafeInteger(maxSessions) || maxSessions <= 0) {
      throw new Error(`maxSessions must be a positive integer, got ${maxSessions}`);
    }
    this.maxSessions = maxSessions;
  }

  check(clientId: string, sequence: number): SessionCheck<Response> {
    const session = this.sessions.get(clientId);
    if (!session || sequence > session.sequence) return { kind: 'new' };
    if (sequence === session.sequence) return { kind: 'duplicate', response: session.response };
    return { kind: 'stale', latestSequence: session.sequence };
  }

  record(clientId: string, sequence: number, response: Response, logIndex: number): void {
    this.sessions.delete(clientId); // re-insert so that Map order is least recently active first
    this.sessions.set(clientId, { sequence, response, lastIndex: logIndex });
    while (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
      this.evictions++;
    }
  }

  size(): number {
    return this.sessions.size;
  }

  toSnapshot(): SessionSnapshot<Response> {
    return { maxSessions: this.maxSessions, sessions: [...this.sessions.entries()].map(([id, s]) => [id, { ...s }]) };
  }

  static fromSnapshot<Response>(snapshot: SessionSnapshot<Response>): ClientSessions<Response> {
    const sessions = new ClientSessions<Response>(snapshot.maxSessions);
    for (const [id, session] of snapshot.sessions) sessions.sessions.set(id, { ...session });
    return sessions;
  }
}
