// The proposal envelope: who proposed an entry and which request it is, read back exactly (request
// IDs are safe integers well above 2^32, member IDs full 64-bit), and damage refused by name.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeEnvelope, encodeEnvelope, EnvelopeError, type ProposalEnvelope } from '../../src/server/proposal-envelope.ts';

test('property: an envelope decodes to what was encoded', () => {
  fc.assert(
    fc.property(
      fc.bigInt(0n, 2n ** 64n - 1n),
      fc.oneof(fc.maxSafeNat(), fc.nat(), fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER)),
      fc.constantFrom('stateMachine' as const, 'members' as const),
      fc.uint8Array({ maxLength: 64 }),
      (memberId, requestId, kind, payload) => {
        const envelope: ProposalEnvelope = { memberId, requestId, kind, payload };
        assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
      },
    ),
    { numRuns: 500 },
  );
});

test('a request id beyond 2^53 is refused, not rounded', () => {
  const bytes = encodeEnvelope({ memberId: 1n, requestId: 5, kind: 'stateMachine', payload: new Uint8Array(0) });
  new DataView(bytes.buffer).setBigUint64(9, 2n ** 53n);
  assert.throws(() => decodeEnvelope(bytes), (error: unknown) => error instanceof EnvelopeError && /request id 9007199254740992 is out of range/.test(error.message));
  new DataView(bytes.buffer).setBigUint64(9, 2n ** 53n - 1n);
  assert.equal(decodeEnvelope(bytes).requestId, Number.MAX_SAFE_INTEGER);
});

test('format 1 envelopes (no kind byte) still read as state machine proposals', () => {
  const bytes = new Uint8Array(17 + 2);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 1);
  view.setBigUint64(1, 7n);
  view.setBigUint64(9, 2n ** 40n + 3n);
  bytes.set([8, 9], 17);
  assert.deepEqual(decodeEnvelope(bytes), { memberId: 7n, requestId: 2 ** 40 + 3, kind: 'stateMachine', payload: Uint8Array.from([8, 9]) });
});
