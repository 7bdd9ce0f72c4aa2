// The replicated state machine the simulator runs on every member: a small key-value map with
// client sessions, so that a command retried through another member is applied at most once.

import { ClientSessions } from '../consensus/client-sessions.ts';
import type { SessionSnapshot } from '../consensus/client-sessions.ts';
import type { Entry } from '../consensus/types.ts';
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
  values: [string, string][];
  sessions: SessionSnapshot<KvOutput>;
}

export class SimStateMachine {
  private values = new Map<string, string>();
  private sessions = new ClientSessions<KvOutput>(SIM_MAX_SESSIONS);

  /** Applies one committed entry; returns the command's outcome, or undefined for non-commands. */
  apply(entry: Entry): AppliedCommand | undefined {
    if (entry.type !== 'normal' || entry.data.byteLength === 0) return undefined;
    const command = decodeCommand(entry.data);
    const check = this.sessions.check(command.clientId, command.sequence);
    const { clientId, sequence } = command;
    if (check.kind === 'duplicate') return { clientId, sequence, output: check.response, executed: false };
    if (check.kind === 'stale') return { clientId, sequence, output: undefined, executed: false };
    const output = this.execute(command.op);
    this.sessions.record(clientId, sequence, output, entry.index);
    return { clientId, sequence, output, executed: true };
  }

  private execute(op: WriteInput): KvOutput {
    if (op.kind === 'put') {
      this.values.set(op.key, op.value);
      return { kind: 'put' };
    }
    const current = this.values.get(op.key) ?? null;
    if (current !== op.expected) return { kind: 'cas', succeeded: false };
    this.values.set(op.key, op.value);
    return { kind: 'cas', succeeded: true };
  }

  read(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  snapshot(): Uint8Array {
    const state: StateSnapshot = { values: [...this.values.entries()], sessions: this.sessions.toSnapshot() };
    return encoder.encode(JSON.stringify(state));
  }

  static restore(data: Uint8Array): SimStateMachine {
    const machine = new SimStateMachine();
    if (data.byteLength === 0) return machine;
    const state = JSON.parse(decoder.decode(data)) as StateSnapshot;
    machine.values = new Map(state.values);
    machine.sessions = ClientSessions.fromSnapshot(state.sessions);
    return machine;
  }
}
