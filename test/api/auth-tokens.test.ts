// The member's table of simple tokens, on a hand-driven clock: a token lives TOKEN_TTL_MS past its
// last use, the table is bounded (least recently used out first), and it never holds a token
// itself, only its digest. And password hashing: salted, verified in constant time, and the same
// work for a user that does not exist.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TOKENS, TOKEN_TTL_MS, TokenTable, newToken, tokenDigest } from '../../src/api/etcd/auth-tokens.ts';
import { hashPassword, verifyAgainstDecoy, verifyPassword } from '../../src/api/etcd/password-hash.ts';
import type { ScryptParameters } from '../../src/api/etcd/password-hash.ts';

/** Cheap parameters: the tests check the format and the comparison, not the cost. */
const FAST: ScryptParameters = { log2N: 4, blockSize: 1, parallelization: 1 };

function tableAt(start: number, limits: { tokenTtlMs?: number; maxTokens?: number } = {}) {
  const clock = { nowMs: start };
  const table = new TokenTable(() => clock.nowMs, limits);
  return { clock, table };
}

function issue(table: TokenTable, user: string): string {
  const token = newToken();
  table.add(tokenDigest(token), { user, credentialRevision: 1 });
  return token;
}

test("etcd's defaults: tokens live 5 minutes after their last use", () => {
  assert.equal(TOKEN_TTL_MS, 300_000);
  assert.ok(MAX_TOKENS >= 10_000);
});

test('a token expires TTL after its last use, and each use renews it', () => {
  const { clock, table } = tableAt(1_000, { tokenTtlMs: 100 });
  const token = issue(table, 'alice');
  clock.nowMs += 99;
  assert.deepEqual(table.use(token), { user: 'alice', credentialRevision: 1 });
  clock.nowMs += 99;
  assert.deepEqual(table.use(token), { user: 'alice', credentialRevision: 1 }, 'renewed by the previous use');
  clock.nowMs += 100;
  assert.equal(table.use(token), undefined);
  assert.equal(table.size, 0, 'an expired token is forgotten when found');
});

test('the table is bounded: when full, the least recently used token goes first', () => {
  const { clock, table } = tableAt(0, { maxTokens: 3 });
  const first = issue(table, 'a');
  const second = issue(table, 'b');
  const third = issue(table, 'c');
  clock.nowMs += 1;
  assert.ok(table.use(first), 'first is now the most recently used');
  const fourth = issue(table, 'd');
  assert.equal(table.size, 3);
  assert.equal(table.use(second), undefined, 'second was the least recently used');
  assert.ok(table.use(first));
  assert.ok(table.use(third));
  assert.ok(table.use(fourth));
});

test('expired tokens are dropped before live ones are evicted', () => {
  const { clock, table } = tableAt(0, { tokenTtlMs: 10, maxTokens: 2 });
  issue(table, 'old');
  clock.nowMs += 5;
  const live = issue(table, 'live');
  clock.nowMs += 6; // 'old' expired, 'live' has 4 ms left
  const fresh = issue(table, 'fresh');
  assert.equal(table.size, 2);
  assert.ok(table.use(live));
  assert.ok(table.use(fresh));
});

test('unknown tokens, forgotten tokens and a cleared table hold nobody', () => {
  const { table } = tableAt(0);
  const token = issue(table, 'a');
  assert.equal(table.use(`${token}x`), undefined);
  assert.equal(table.use(''), undefined);
  table.forget(token);
  assert.equal(table.use(token), undefined);
  const other = issue(table, 'b');
  table.clear();
  assert.equal(table.use(other), undefined);
});

test('has() tells a live token from an unknown or expired one, and renews nothing', () => {
  const { clock, table } = tableAt(1_000, { tokenTtlMs: 100 });
  const token = issue(table, 'alice');
  assert.equal(table.has(newToken()), false);
  clock.nowMs += 99;
  assert.equal(table.has(token), true);
  clock.nowMs += 1;
  assert.equal(table.has(token), false, 'has() did not renew it: it expired 100 ms after it was issued');
});

test('tokens are random and only their SHA-256 is kept', () => {
  const tokens = new Set(Array.from({ length: 100 }, newToken));
  assert.equal(tokens.size, 100);
  for (const token of tokens) assert.match(token, /^[A-Za-z0-9_-]{22}$/);
  const [token] = tokens;
  assert.equal(Buffer.from(tokenDigest(token!)).toString('hex').length, 64);
  assert.notDeepEqual(tokenDigest(token!), tokenDigest(`${token!} `));
});

test('bad limits are refused with the limit named', () => {
  assert.throws(() => new TokenTable(() => 0, { maxTokens: 0 }), /maxTokens must be a positive integer/);
  assert.throws(() => new TokenTable(() => 0, { tokenTtlMs: 1.5 }), /tokenTtlMs must be a positive integer/);
});

test('password hashes are salted, verify only the right password, and carry their own parameters', async () => {
  const one = await hashPassword('secret', FAST);
  const two = await hashPassword('secret', FAST);
  assert.notDeepEqual(one, two, 'two hashes of one password differ by their salt');
  assert.equal(one.length, 52);
  assert.equal(await verifyPassword('secret', one), true);
  assert.equal(await verifyPassword('secret', two), true);
  assert.equal(await verifyPassword('Secret', one), false);
  assert.equal(await verifyPassword('', one), false);
  const empty = await hashPassword('', FAST);
  assert.equal(await verifyPassword('', empty), true, 'etcd accepts an empty password; so does Concord');
});

test('a hash that is not ours, or with parameters out of bounds, matches nothing', async () => {
  const good = await hashPassword('secret', FAST);
  assert.equal(await verifyPassword('secret', new Uint8Array(0)), false);
  assert.equal(await verifyPassword('secret', good.subarray(1)), false);
  const otherFormat = good.slice();
  otherFormat[0] = 2;
  assert.equal(await verifyPassword('secret', otherFormat), false);
  const hugeWork = good.slice();
  hugeWork[1] = 40;
  assert.equal(await verifyPassword('secret', hugeWork), false);
  assert.equal(await verifyAgainstDecoy('anything'), false);
});
