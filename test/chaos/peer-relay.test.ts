// The chaos relay's listeners: ports the system picks as they listen (none chosen ahead, to be
// taken by another process meanwhile), and nothing left listening when one of them cannot start.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { PeerRelay } from '../../src/chaos/peer-relay.ts';

function endpoint(member: string, listenPort: number) {
  return { member, listenHost: '127.0.0.1', listenPort, targetHost: '127.0.0.1', targetPort: 9 };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

test('listeners on port 0 take distinct ports the system picks, reported by listenPortOf', async () => {
  const relay = new PeerRelay([endpoint('m1', 0), endpoint('m2', 0)], new Map());
  await relay.start();
  try {
    const ports = [relay.listenPortOf('m1'), relay.listenPortOf('m2')];
    assert.ok(ports.every((port) => port > 0) && ports[0] !== ports[1], `ports ${ports.join(', ')}`);
    assert.ok(await connects(ports[0]!));
  } finally {
    await relay.stop();
  }
  assert.throws(() => new PeerRelay([endpoint('m3', 0)], new Map()).listenPortOf('m3'), /not started/);
});

test('a listener that cannot start closes the ones already started, and start rejects', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const busyPort = (taken.address() as AddressInfo).port;
  const relay = new PeerRelay([endpoint('m1', 0), endpoint('m2', busyPort)], new Map());
  try {
    await assert.rejects(relay.start(), /EADDRINUSE/);
    assert.equal(await connects(relay.listenPortOf('m1')), false, 'the first listener was closed');
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
});
