// The replicated state machine the simulator runs on every member: Concord's real MVCC
// key-value state machine (src/kv) behind client sessions, so that a command retried through
// another member is applied at most once, and so that every simulated history also checks the
// key-value store itself for linearizability (put, compare-and-set as a txn, linearizable get).

import { ClientSessions } from '../consensus/client-sessions.ts';
import type { SessionSnapshot } from '../consensus/client-sessions.ts';
import type { Entry } from '../consensus/types.ts';
import { KvStateMachine } from '../kv/state-machine.ts';
import type { KvCommand } from '../kv/types.ts';
import type { KvInput, KvOutput } from './kv-model.ts';

export type WriteInput = Extract<KvInput, { kind: 'put' | 'cas' }>;

export interface SimCommand {
  clientId: string;
  sequence: number;
  op: WriteInput;
}

export interface AppliedCommand {
  clientId: string;
  sequence: number;
  /** Undefined when the command was stale (the client had already moved past it). */
  output: KvOutput | undefined;
  /** True when this application changed the state; false for a duplicate answered from the session cache. */
  executed: boolean;
}

/** The simulated state machine compacts its history every this many log entries... */
const SIM_COMPACT_EVERY_ENTRIES = 200;
/** ...keeping this many revisions. */
const SIM_RETAINED_REVISIONS = 100;

/** Upper bound on remembered client sessions; the simulator's clients stay far below it. */
export const SIM_MAX_SESSIONS = 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: SimCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): SimCommand {
  return JSON.parse(decoder.decode(data)) as SimCommand;
}

interface StateSnapshot {
  kv: string; // the key-value state machine's own snapshot, base64
  sessions: SessionSnapshot<KvOutput>;
}

export class SimStateMachine {
  private kv = new KvStateMachine();
  private sessions = new ClientSessions<KvOutput>(SIM_MAX_SESSIONS);

  /** Applies one committed entry; returns the command's outcome, or undefined for non-commands. */
  apply(entry: Entry): AppliedCommand | undefined {
    if (entry.type !== 'normal' || entry.data.byteLength === 0) {
      this.kv.markApplied(entry.index);
      return undefined;
    }
    const command = decodeCommand(entry.data);
    const check = this.sessions.check(command.clientId, command.sequence);
    const { clientId, sequence } = command;
    if (check.kind !== 'new') {
      this.kv.markApplied(entry.index);
      if (check.kind === 'duplicate') return { clientId, sequence, output: check.response, executed: false };
      return { clientId, sequence, output: undefined, executed: false };
    }
    const output = this.execute(command.op, entry.index);
    this.sessions.record(clientId, sequence, output, entry.index);
    this.maybeCompact(entry.index);
    return { clientId, sequence, output, executed: true };
  }

  /**
   * Keeps history bounded, as auto-compaction does in a server. Decided by the log index, so every
   * member compacts at the same point of the same history.
   */
  private maybeCompact(index: number): void {
    if (index % SIM_COMPACT_EVERY_ENTRIES !== 0) return;
    const target = this.kv.currentRevision - SIM_RETAINED_REVISIONS;
    if (target > this.kv.mvcc.compactRevision) this.kv.mvcc.compact(target);
  }

  private execute(op: WriteInput, index: number): KvOutput {
    const key = encoder.encode(op.key);
    const value = encoder.encode(op.value);
    if (op.kind === 'put') {
      this.expectApplied(this.kv.apply({ type: 'put', request: { key, value } }, index));
      return { kind: 'put' };
    }
    // Compare-and-set the etcd way: a txn comparing the value, or create_revision = 0 for "absent".
    const compare: KvCommand = {
      type: 'txn',
      request: {
        compare: [op.expected === null
          ? { target: 'create', result: 'equal', key, createRevision: 0 }
          : { target: 'value', result: 'equal', key, value: encoder.encode(op.expected) }],
        success: [{ type: 'put', request: { key, value } }],
        failure: [],
      },
    };
    const result = this.expectApplied(this.kv.apply(compare, index));
    if (result.type !== 'txn') throw new Error(`a txn answered with a ${result.type} response`);
    return { kind: 'cas', succeeded: result.response.succeeded };
  }

  private expectApplied(result: ReturnType<KvStateMachine['apply']>) {
    if (result.status !== 'applied') throw new Error(`the simulator's command was not applied: ${JSON.stringify(result)}`);
    return result.response;
  }

  read(key: string): string | null {
    const found = this.kv.range({ key: encoder.encode(key) }).kvs[0];
    return found ? decoder.decode(found.value) : null;
  }

  snapshot(): Uint8Array {
    const state: StateSnapshot = { kv: toBase64(this.kv.snapshot()), sessions: this.sessions.toSnapshot() };
    return encoder.encode(JSON.stringify(state));
  }

  static restore(data: Uint8Array): SimStateMachine {
    const machine = new SimStateMachine();
    if (data.byteLength === 0) return machine;
    const state = JSON.parse(decoder.decode(data)) as StateSnapshot;
    machine.kv = KvStateMachine.restore(fromBase64(state.kv));
    machine.sessions = ClientSessions.fromSnapshot(state.sessions);
    return machine;
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
