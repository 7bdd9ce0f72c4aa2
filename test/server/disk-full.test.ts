// A full disk (ENOSPC) under a running member: writes stop with a clear error, reads keep being
// served, and after the power fails and the member restarts, nothing that was acknowledged is lost.
// The member runs over the power-loss file system, so "acknowledged" is checked below the page cache.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { PowerLossFileSystem } from '../storage/power-loss-file-system.ts';

const run = promisify(execFile);
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

async function etcdctl(server: StoreServer, ...args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const { stdout } = await run('/usr/bin/etcdctl', ['--endpoints', server.clientAddresses[0]!, '--command-timeout=5s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' }, timeout: 15_000,
    });
    return { ok: true, out: stdout };
  } catch (error) {
    return { ok: false, out: String((error as { stderr?: string }).stderr ?? '') };
  }
}

test('ENOSPC: writes fail with a clear error, reads go on, and every acknowledged write survives a crash', async () => {
  const fs = new PowerLossFileSystem(['/data']);
  const config = resolveServerConfig({}, settingsFromFlags({ name: 'full', dataDir: '/data/full', listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0' }));
  const server = await StoreServer.start(config, { fs, logger: quiet });
  const acknowledged: string[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      assert.ok((await etcdctl(server, 'put', `k${i}`, `v${i}`)).ok);
      acknowledged.push(`k${i}`);
    }
    fs.injectFault({ code: 'ENOSPC' });
    const refused = await etcdctl(server, 'put', 'k-late', 'x');
    assert.equal(refused.ok, false, 'a write on a full disk is not acknowledged');
    assert.match(refused.out, /no space|disk/i, `the error says the disk is full: ${refused.out}`);
    const again = await etcdctl(server, 'put', 'k-later', 'y');
    assert.match(again.out, /writes are disabled|no space/i);
    const read = await etcdctl(server, 'get', 'k', '--prefix', '--keys-only', '--consistency=s');
    assert.equal(read.out.split('\n').filter(Boolean).length, 10, 'serializable reads are still served');
  } finally {
    await server.stop().catch(() => {});
  }
  // Power fails; the disk is freed; the member restarts from what was really on disk.
  const survivor = fs.crashedCopy();
  const restarted = await StoreServer.start(config, { fs: survivor, logger: quiet });
  try {
    const keys = (await etcdctl(restarted, 'get', 'k', '--prefix', '--keys-only')).out.split('\n').filter(Boolean);
    for (const key of acknowledged) assert.ok(keys.includes(key), `acknowledged ${key} survived`);
    assert.ok(!keys.includes('k-later'));
    assert.ok((await etcdctl(restarted, 'put', 'after', 'restart')).ok, 'writes work again with space');
  } finally {
    await restarted.stop();
  }
});
