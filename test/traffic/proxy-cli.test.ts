// `concord proxy` as an operator runs it: started from a config file, and on SIGTERM it stops
// accepting, lets the request in flight finish, and exits 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeLoopbackPorts, stopProcess } from '../support/child-processes.ts';
import { eventually, startBackend } from './proxy-harness.ts';

const ENTRY = fileURLToPath(new URL('../../src/cli/entry.ts', import.meta.url));

test('SIGTERM lets the request in flight finish, refuses new connections, and exits 0', async () => {
  const backend = await startBackend((_req, res) => {
    setTimeout(() => res.end('finished'), 600);
  });
  const [port, adminPort] = await freeLoopbackPorts(2);
  const dir = mkdtempSync(join(tmpdir(), 'concord-cli-'));
  const config = join(dir, 'proxy.yaml');
  writeFileSync(config, `proxy:\n  listen: 127.0.0.1:${port}\n  admin: 127.0.0.1:${adminPort}\n  shutdownDrainMs: 5000\npools:\n  - name: web\n    backends: [{ address: ${backend.address} }]\n`);
  const proxy = spawn(process.execPath, [ENTRY, 'proxy', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proxy.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proxy.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    assert.ok(await eventually(() => output.includes('proxy started'), 15_000), output);
    const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(await eventually(() => backend.hits.get('/') === 1, 5000), 'the request reached the backend');
    const exited = new Promise<number | null>((resolve) => proxy.once('exit', (code) => resolve(code)));
    proxy.kill('SIGTERM');
    assert.ok(await eventually(() => output.includes('SIGTERM received: draining'), 5000));
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'no new connections while draining');
    assert.deepEqual(await reply, { status: 200, body: 'finished' });
    assert.equal(await exited, 0);
    assert.match(output, /"status":200,.*"msg":"request"/, `the access log has the request: ${output}`);
  } finally {
    await stopProcess(proxy, { graceMs: 2000, killWaitMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
    await backend.close();
  }
});
