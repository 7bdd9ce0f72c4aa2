// `concord demo`'s load pattern, shortened, against the embedded system `concord up` runs with the
// tutorial configuration (examples/concord.yaml, on free ports): every phase sends load through the
// proxy, the backend crash happens and is noticed, and the timeline shows the system acting.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemoWithProgress } from '../../src/cli/demo.ts';
import { EmbeddedSystem } from '../../src/up/embedded-system.ts';

const repositoryRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
let workDir: string;
let system: EmbeddedSystem;

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'concord-demo-'));
  // The tutorial as written, on ports of its own so it can run beside anything else; the example
  // app's path made absolute, because the test does not run from the repository's directory.
  const tutorial = readFileSync(join(repositoryRoot, 'examples/concord.yaml'), 'utf8')
    .replace('portRange: "9100-9199"', 'portRange: "19500-19599"')
    .replace('node examples/app/server.mjs', `${process.execPath} ${join(repositoryRoot, 'examples/app/server.mjs')}`);
  const configFile = join(workDir, 'concord.yaml');
  writeFileSync(configFile, tutorial);
  system = await EmbeddedSystem.start({
    configFile, dataDir: join(workDir, 'data'), storeListen: '127.0.0.1:0', peerListen: '127.0.0.1:0',
    proxyListen: '127.0.0.1:0', proxyAdmin: '127.0.0.1:0', admin: '127.0.0.1:0', operator: 'test', logger: { info: () => {}, warn: () => {} },
  });
});

after(async () => {
  await system?.stop(2_000);
  rmSync(workDir, { recursive: true, force: true });
});

test('the demo pattern, at a tenth of its length: load through every phase, a crashed backend, and the timeline shows health checks and scaling acting', { timeout: 180_000 }, async () => {
  const deadline = Date.now() + 60_000;
  while ((await system.plane.overview()).pools[0]?.backends.filter((backend) => backend.state === 'healthy').length !== 2) {
    assert.ok(Date.now() < deadline, 'the two minimum instances became healthy');
    await new Promise((resolvePause) => setTimeout(resolvePause, 250));
  }
  const lines: string[] = [];
  const result = await runDemoWithProgress({ proxyUrl: system.addresses.proxyUrl, adminUrl: system.plane.adminUrl, timeScale: 0.1, say: (text) => lines.push(text), quiet: false });
  const all = result.byPriority.default;
  assert.ok(all.ok > 0 && result.byPriority.critical.ok > 0, 'requests of both priorities were served');
  assert.equal(result.crashed.length, 1);
  assert.match(result.crashed[0]!, /^127\.0\.0\.1:195\d\d$/, `a backend was crashed: ${result.crashed[0]}`);
  assert.ok((result.events['decision'] ?? 0) > 0, `the autoscaler decided: ${JSON.stringify(result.events)}`);
  assert.ok((result.events['instance-gone'] ?? 0) + (result.events['marked-down'] ?? 0) + (result.events['provider-exited'] ?? 0) > 0, `the crash was noticed: ${JSON.stringify(result.events)}`);
  assert.ok(lines.some((line) => line.startsWith('demo: done in')), 'a summary was printed');
  assert.ok(lines.some((line) => /npx concord events --since \d+m/.test(line)), 'and where to read more');
});
