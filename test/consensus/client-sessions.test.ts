import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientSessions } from '../../src/consensus/client-sessions.ts';

test('new, duplicate and stale sequences are told apart', () => {
  const sessions = new ClientSessions<string>(10);
  assert.deepEqual(sessions.check('a', 1), { kind: 'new' });
  sessions.record('a', 1, 'r1', 10);
  assert.deepEqual(sessions.check('a', 1), { kind: 'duplicate', response: 'r1' });
  assert.deepEqual(sessions.check('a', 2), { kind: 'new' });
  sessions.record('a', 3, 'r3', 11);
  assert.deepEqual(sessions.check('a', 2), { kind: 'stale', latestSequence: 3 });
});

test('beyond maxSessions the least recently active client is forgotten', () => {
  const sessions = new ClientSessions<string>(2);
  sessions.record('a', 1, 'x', 1);
  sessions.record('b', 1, 'x', 2);
  sessions.record('a', 2, 'x', 3); // a is now the most recently active
  sessions.record('c', 1, 'x', 4);
  assert.equal(sessions.size(), 2);
  assert.equal(sessions.evictions, 1);
  assert.deepEqual(sessions.check('b', 1), { kind: 'new' }, 'b was evicted');
  assert.equal(sessions.check('a', 2).kind, 'duplicate');
});

test('a snapshot round trip keeps every session', () => {
  const sessions = new ClientSessions<number>(5);
  sessions.record('a', 4, 40, 1);
  sessions.record('b', 9, 90, 2);
  const copy = ClientSessions.fromSnapshot(sessions.toSnapshot());
  assert.deepEqual(copy.check('a', 4), { kind: 'duplicate', response: 40 });
  assert.deepEqual(copy.check('b', 9), { kind: 'duplicate', response: 90 });
});

test('maxSessions must be a positive integer', () => {
  assert.throws(() => new ClientSessions(0), /maxSessions must be a positive integer/);
});
