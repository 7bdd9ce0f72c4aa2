// AuthGate.catchUpFor on a fake member whose read barrier the test completes by hand: a call with a
// token the member does not know waits for the member to catch up (and then the token is known if
// an Authenticate applied meanwhile issued it); calls without a token or with a known one do not
// wait; a failed barrier lets the call go on to be refused; and the waits are bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata } from '@grpc/grpc-js';
import { AuthGate, MAX_TOKEN_CATCH_UPS } from '../../src/api/etcd/auth-gate.ts';
import type { CallIdentity } from '../../src/api/etcd/auth-gate.ts';
import { newToken, tokenDigest } from '../../src/api/etcd/auth-tokens.ts';
import type { EtcdServiceContext } from '../../src/api/etcd/service-context.ts';
import { KvError } from '../../src/kv/errors.ts';
import { ANONYMOUS_REQUESTER } from '../../src/kv/auth/auth-types.ts';
import { KvStateMachine } from '../../src/kv/state-machine.ts';
import type { ApplyResult } from '../../src/kv/state-machine.ts';

interface Barrier {
  resolve(): void;
  reject(error: Error): void;
}

class FakeMember {
  readonly machine = new KvStateMachine();
  /** Read barriers asked for and not yet completed, oldest first. */
  readonly barriers: Barrier[] = [];
  private readonly appliedListeners = new Set<(result: ApplyResult) => void>();
  private index = 0;

  constructor() {
    this.machine.apply({ type: 'userAdd', request: { user: 'alice', passwordHash: new Uint8Array([1]), noPassword: false } }, ++this.index);
  }

  readonly context = {
    backend: {
      readBarrier: () => new Promise<void>((resolve, reject) => this.barriers.push({ resolve, reject })),
    },
    stateMachine: () => this.machine,
    events: {
      onApplied: (listener: (result: ApplyResult) => void) => (this.appliedListeners.add(listener), () => this.appliedListeners.delete(listener)),
      onRestored: () => () => {},
    },
    config: { clientTls: { clientCertAuth: false } },
    clock: { nowMs: () => 1_000 },
    onStop: () => {},
  } as unknown as EtcdServiceContext;

  /** Applies an Authenticate of alice that issued `token`, as it reaches a member through Raft. */
  applyAuthenticate(token: string): void {
    const credentialRevision = this.machine.auth.user('alice')!.credentialRevision;
    const response = { type: 'authenticate', response: { tokenDigest: tokenDigest(token), user: 'alice', credentialRevision } };
    const result = { status: 'applied', index: ++this.index, response, revision: 1, events: [] } as unknown as ApplyResult;
    for (const listener of this.appliedListeners) listener(result);
  }
}

function callWith(token?: string): CallIdentity {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('token', token);
  return { metadata, getAuthContext: () => ({}) };
}

/** Whether `promise` has settled after the microtasks now queued have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true), () => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

test('calls without a token, or with one the member knows, go on at once', () => {
  const fake = new FakeMember();
  const gate = new AuthGate(fake.context);
  const token = newToken();
  fake.applyAuthenticate(token);
  assert.equal(gate.catchUpFor(callWith()), undefined);
  assert.equal(gate.catchUpFor(callWith(token)), undefined);
  assert.equal(fake.barriers.length, 0, 'no read barrier was asked for');
});

test('a token issued through another member is known once this member has caught up', async () => {
  const fake = new FakeMember();
  const gate = new AuthGate(fake.context);
  const token = newToken();
  assert.throws(() => gate.requester(callWith(token)), (error: unknown) => error instanceof KvError && error.code === 'CONCORD_E_AUTH_INVALID_TOKEN');
  const caughtUp = gate.catchUpFor(callWith(token));
  assert.ok(caughtUp !== undefined, 'an unknown token waits');
  assert.equal(fake.barriers.length, 1);
  assert.equal(await settled(caughtUp), false, 'it waits for the barrier');
  // The barrier completes once the member has applied what was committed before the call: the Authenticate.
  fake.applyAuthenticate(token);
  fake.barriers[0]!.resolve();
  await caughtUp;
  // Known now (auth is off in this fake: a known token makes an anonymous caller, an unknown one throws).
  assert.deepEqual(gate.requester(callWith(token)), ANONYMOUS_REQUESTER);
});

test('a barrier that fails lets the call go on, to be refused as an unknown token', async () => {
  const fake = new FakeMember();
  const gate = new AuthGate(fake.context);
  const token = newToken();
  const caughtUp = gate.catchUpFor(callWith(token))!;
  fake.barriers[0]!.reject(new Error('request timed out waiting for a read index (is there a leader?)'));
  await caughtUp;
  assert.throws(() => gate.requester(callWith(token)), (error: unknown) => error instanceof KvError && error.code === 'CONCORD_E_AUTH_INVALID_TOKEN');
});

test(`at most MAX_TOKEN_CATCH_UPS (${MAX_TOKEN_CATCH_UPS}) calls wait at once; beyond, a call with an unknown token goes on at once`, async () => {
  const fake = new FakeMember();
  const gate = new AuthGate(fake.context);
  const waits = Array.from({ length: MAX_TOKEN_CATCH_UPS }, () => gate.catchUpFor(callWith(newToken())));
  assert.ok(waits.every((wait) => wait !== undefined));
  assert.equal(gate.catchUpFor(callWith(newToken())), undefined, 'the next one does not wait');
  fake.barriers[0]!.resolve();
  await waits[0];
  assert.ok(gate.catchUpFor(callWith(newToken())) !== undefined, 'a finished wait frees its place');
  for (const barrier of fake.barriers) barrier.resolve();
  await Promise.all(waits);
});
