// fast-check generators of key-value commands over a small key space, so that random sequences
// overwrite, delete and compare the same keys often.

import fc from 'fast-check';
import type { Compare, KvCommand, RangeRequest, RequestOp } from '../../src/kv/types.ts';
import { b } from './helpers.ts';

export const LEASE_IDS = [1n, 2n, 3n];

const key = fc.constantFrom('a', 'b', 'c', 'd').map(b);
const value = fc.constantFrom('', 'x', 'yy', 'zzz').map(b);
const lease = fc.constantFrom(0n, 0n, 0n, 0n, ...LEASE_IDS);
const rangeEnd = fc.option(fc.constantFrom(new Uint8Array([0]), b('c'), b('e')), { nil: undefined });

const range: fc.Arbitrary<RangeRequest> = fc.record(
  {
    key,
    rangeEnd,
    limit: fc.nat(3),
    revision: fc.constantFrom(0, 0, 0, 1, 2, 3, 5),
    sortOrder: fc.constantFrom('none' as const, 'ascend' as const, 'descend' as const),
    sortTarget: fc.constantFrom('key' as const, 'version' as const, 'create' as const, 'mod' as const, 'value' as const),
    serializable: fc.boolean(),
    keysOnly: fc.boolean(),
    countOnly: fc.boolean(),
    minModRevision: fc.nat(3),
    maxModRevision: fc.nat(30),
    minCreateRevision: fc.nat(3),
    maxCreateRevision: fc.nat(30),
  },
  { requiredKeys: ['key'] },
);

const putOp = fc.record(
  { key, value, lease, prevKv: fc.boolean(), ignoreValue: fc.constant(false), ignoreLease: fc.constantFrom(false, false, false, false, true) },
  { requiredKeys: ['key'] },
).map((request) => (request.ignoreLease === true ? { ...request, lease: 0n } : request));
const deleteOp = fc.record({ key, rangeEnd, prevKv: fc.boolean() }, { requiredKeys: ['key'] });

const compare: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({ target: fc.constant('version' as const), version: fc.nat(3) }),
  fc.record({ target: fc.constant('create' as const), createRevision: fc.nat(10) }),
  fc.record({ target: fc.constant('mod' as const), modRevision: fc.nat(10) }),
  fc.record({ target: fc.constant('value' as const), value }),
  fc.record({ target: fc.constant('lease' as const), lease }),
).chain((target) =>
  fc.record({ result: fc.constantFrom('equal' as const, 'greater' as const, 'less' as const, 'notEqual' as const), key, rangeEnd }).map(
    (base) => ({ ...base, ...target }) as Compare,
  ),
);

const { op } = fc.letrec<{ op: RequestOp }>((tie) => ({
  op: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    range.map((request): RequestOp => ({ type: 'range', request })),
    putOp.map((request): RequestOp => ({ type: 'put', request })),
    deleteOp.map((request): RequestOp => ({ type: 'deleteRange', request })),
    fc
      .record({ compare: fc.array(compare, { maxLength: 2 }), success: fc.array(tie('op'), { maxLength: 2 }), failure: fc.array(tie('op'), { maxLength: 2 }) })
      .map((request): RequestOp => ({ type: 'txn', request })),
  ),
}));

export const commandArbitrary: fc.Arbitrary<KvCommand> = fc.oneof(
  { weight: 6, arbitrary: putOp.map((request): KvCommand => ({ type: 'put', request })) },
  { weight: 2, arbitrary: deleteOp.map((request): KvCommand => ({ type: 'deleteRange', request })) },
  {
    weight: 3,
    arbitrary: fc
      .record({ compare: fc.array(compare, { maxLength: 2 }), success: fc.array(op, { maxLength: 3 }), failure: fc.array(op, { maxLength: 3 }) })
      .map((request): KvCommand => ({ type: 'txn', request })),
  },
  { weight: 1, arbitrary: fc.record({ revision: fc.nat(8), physical: fc.boolean() }).map((request): KvCommand => ({ type: 'compact', request })) },
  { weight: 2, arbitrary: fc.record({ id: fc.constantFrom(...LEASE_IDS), ttl: fc.integer({ min: -5, max: 100 }) }).map((request): KvCommand => ({ type: 'leaseGrant', request })) },
  { weight: 1, arbitrary: fc.constantFrom(...LEASE_IDS).map((id): KvCommand => ({ type: 'leaseRevoke', request: { id } })) },
  {
    weight: 1,
    arbitrary: fc
      .record({ action: fc.constantFrom('get' as const, 'activate' as const, 'deactivate' as const), memberId: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), alarm: fc.constantFrom('none' as const, 'nospace' as const) })
      .map((request): KvCommand => ({ type: 'alarm', request })),
  },
);
