// The wrapper that holds a call with a token the member does not know yet until the member has
// caught up, with a gate whose wait the test ends by hand: handlers run at once when there is
// nothing to wait for, after the wait otherwise, not at all for a call cancelled meanwhile, and a
// handler that throws after the wait ends its call with a gRPC status (unary and stream alike).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { CallIdentity } from '../../src/api/etcd/auth-gate.ts';
import { awaitingTokenCatchUp } from '../../src/api/etcd/token-catch-up.ts';

/** A gate that makes every call wait (or none), and lets the test end the waits. */
class HandDrivenGate {
  waits = false;
  private readonly pending: (() => void)[] = [];

  catchUpFor(): Promise<void> | undefined {
    if (!this.waits) return undefined;
    return new Promise<void>((resolve) => this.pending.push(resolve));
  }

  /** Ends every wait, and lets the handlers that follow them run. */
  async caughtUp(): Promise<void> {
    for (const resolve of this.pending.splice(0)) resolve();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A call as grpc-js gives it: metadata, TLS context, `cancelled`, and events for a stream. */
function fakeCall(): CallIdentity & EventEmitter & { cancelled: boolean } {
  return Object.assign(new EventEmitter(), { metadata: new Metadata(), getAuthContext: () => ({}), cancelled: false });
}

type Handler = (call: unknown, callback?: (error: ServiceError | null, value?: unknown) => void) => void;

function wrap(gate: HandDrivenGate, handlers: Record<string, Handler>): Record<string, Handler> {
  return awaitingTokenCatchUp(handlers as unknown as UntypedServiceImplementation, gate) as unknown as Record<string, Handler>;
}

test('with nothing to wait for, the handler runs at once, with the call and its callback', () => {
  const gate = new HandDrivenGate();
  const seen: unknown[][] = [];
  const wrapped = wrap(gate, { Range: (call, callback) => seen.push([call, callback]) });
  const call = fakeCall();
  const callback = () => {};
  wrapped.Range!(call, callback);
  assert.deepEqual(seen, [[call, callback]]);
});

test('a call that waits reaches its handler only after the member has caught up', async () => {
  const gate = new HandDrivenGate();
  gate.waits = true;
  let ran = 0;
  const wrapped = wrap(gate, { Range: () => ran++ });
  wrapped.Range!(fakeCall(), () => {});
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ran, 0, 'not before the wait ends');
  await gate.caughtUp();
  assert.equal(ran, 1);
});

test('a call cancelled while it waited is not handed to its handler', async () => {
  const gate = new HandDrivenGate();
  gate.waits = true;
  let ran = 0;
  const wrapped = wrap(gate, { Watch: () => ran++ });
  const call = fakeCall();
  wrapped.Watch!(call);
  call.cancelled = true;
  await gate.caughtUp();
  assert.equal(ran, 0);
});

test('a handler that throws after the wait ends a unary call through its callback and a stream with an error event', async () => {
  const gate = new HandDrivenGate();
  gate.waits = true;
  const boom = () => {
    throw new Error('boom');
  };
  const wrapped = wrap(gate, { Range: boom, Watch: boom });
  const unaryErrors: (ServiceError | null)[] = [];
  wrapped.Range!(fakeCall(), (error) => unaryErrors.push(error));
  const stream = fakeCall();
  const streamErrors: ServiceError[] = [];
  stream.on('error', (error: ServiceError) => streamErrors.push(error));
  wrapped.Watch!(stream);
  await gate.caughtUp();
  assert.equal(unaryErrors.length, 1);
  assert.equal(unaryErrors[0]?.code, status.INTERNAL);
  assert.match(unaryErrors[0]?.details ?? '', /boom/);
  assert.equal(streamErrors.length, 1);
  assert.equal(streamErrors[0]?.code, status.INTERNAL);
});
