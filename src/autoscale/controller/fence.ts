// Fencing in the store: every write the leader makes as leader is a transaction that compares its
// election key's create revision with its token. A deleted key (the lease expired, the leader
// resigned, an operator deleted it) has create revision 0, and a new leader's key has a higher one,
// so the comparison fails for a deposed leader however long it was paused and whatever it
// believes. This is not a check followed by an act: the check and the write are one transaction.
//
// An action's intent also requires that neither kill-switch key exists, so a freeze stops the
// next action the moment it is written, not only at the next period.

import type { Compare, CoordStore, TxnOp } from '../../coord/coord-store.ts';
import type { QueueTurn } from '../../coord/recipes.ts';
import { GLOBAL_FREEZE_KEY, poolFreezeKey } from '../state/keys.ts';

export type ControllerErrorCode = 'CONCORD_E_CONTROLLER_DEPOSED';

export class ControllerError extends Error {
  override name = 'ControllerError';
  readonly code: ControllerErrorCode;

  constructor(code: ControllerErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type FencedOutcome = 'committed' | 'frozen';

export class Fence {
  readonly key: string;
  readonly token: bigint;
  private readonly store: CoordStore;

  constructor(store: CoordStore, turn: Pick<QueueTurn, 'key' | 'token'>) {
    this.store = store;
    this.key = turn.key;
    this.token = turn.token;
  }

  leaderCompare(): Compare {
    return { key: this.key, target: 'create', result: '=', value: this.token };
  }

  /** Commits `ops` only while this leader's key is the one with its token; throws CONCORD_E_CONTROLLER_DEPOSED otherwise. */
  async commit(ops: TxnOp[]): Promise<void> {
    const result = await this.store.txn({ compare: [this.leaderCompare()], success: ops });
    if (!result.succeeded) throw this.deposed();
  }

  /**
   * Commits `ops` only while this leader leads and `pool` is not frozen. Returns 'frozen' when a
   * kill-switch key exists; throws CONCORD_E_CONTROLLER_DEPOSED when this leader no longer leads.
   */
  async commitUnlessFrozen(pool: string, ops: TxnOp[]): Promise<FencedOutcome> {
    const freezeKeys = [GLOBAL_FREEZE_KEY, poolFreezeKey(pool)];
    const result = await this.store.txn({
      compare: [this.leaderCompare(), ...freezeKeys.map((key): Compare => ({ key, target: 'version', result: '=', value: 0n }))],
      success: ops,
      // Which condition failed: the failure branch reads the leader key.
      failure: [{ kind: 'range', key: this.key }],
    });
    if (result.succeeded) return 'committed';
    const leader = result.results[0]?.kind === 'range' ? result.results[0].result.kvs[0] : undefined;
    if (leader === undefined || leader.createRevision !== this.token) throw this.deposed();
    return 'frozen';
  }

  private deposed(): ControllerError {
    return new ControllerError('CONCORD_E_CONTROLLER_DEPOSED', `this controller no longer leads: its election key ${this.key} (fencing token ${this.token}) is gone or replaced, so its write was refused`);
  }
}

export function isDeposed(error: unknown): boolean {
  return error instanceof ControllerError && error.code === 'CONCORD_E_CONTROLLER_DEPOSED';
}
