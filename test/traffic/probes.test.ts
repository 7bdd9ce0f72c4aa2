// Active probes against real servers on loopback: each way a backend can fail (refused, accepts
// but never answers, answers too slowly, wrong status, wrong content, SYN dropped), the gRPC
// health protocol, and the checker's cap on concurrent probes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer as createHttpServer, type RequestListener, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Server as GrpcServer, ServerCredentials, status as GrpcStatus, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { SeededRandom } from '../../src/random/seeded-random.ts';
import { PoolHealth } from '../../src/traffic/health/pool-health.ts';
import { decodeHealthCheckResponse, encodeHealthCheckRequest, grpcProbe } from '../../src/traffic/probes/grpc-probe.ts';
import { HealthChecker } from '../../src/traffic/probes/health-checker.ts';
import { httpProbe, type HttpProbeOptions } from '../../src/traffic/probes/http-probe.ts';
import { parseStatusRanges } from '../../src/traffic/probes/status-ranges.ts';
import { tcpProbe } from '../../src/traffic/probes/tcp-probe.ts';
import { delay, freeLoopbackPorts } from '../support/child-processes.ts';

const TIMEOUT_MS = 300;

async function listen(server: HttpServer | NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

async function withHttp(handler: RequestListener, body: (port: number) => Promise<void>): Promise<void> {
  const sockets = new Set<Socket>();
  const server = createHttpServer(handler);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server);
  try {
    await body(port);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

function http(overrides: Partial<HttpProbeOptions> = {}): HttpProbeOptions {
  return {
    method: 'GET', path: '/healthz', host: undefined, expectStatus: parseStatusRanges('200-299'), expectBody: 'ok',
    expectBodyRegex: undefined, bodyCheckBytes: 4096, timeoutMs: TIMEOUT_MS, ...overrides,
  };
}

test('http probe passes on the expected status and body, sending method, path and host', async () => {
  let seen = '';
  await withHttp((req, res) => {
    seen = `${req.method} ${req.url} ${req.headers.host}`;
    res.end('all ok here');
  }, async (port) => {
    const result = await httpProbe(http({ host: 'app.internal', method: 'HEAD', expectBody: undefined }))({ host: '127.0.0.1', port });
    assert.equal(result.ok, true, result.detail);
    assert.equal(seen, 'HEAD /healthz app.internal');
    const withBody = await httpProbe(http())({ host: '127.0.0.1', port });
    assert.equal(withBody.ok, true, withBody.detail);
    assert.ok(withBody.finishedAtMs >= withBody.startedAtMs);
    const regex = await httpProbe(http({ expectBody: undefined, expectBodyRegex: /^all o+k/ }))({ host: '127.0.0.1', port });
    assert.equal(regex.ok, true, regex.detail);
  });
});

test('http probe fails on a wrong status, wrong content, or content past the checked bytes', async () => {
  await withHttp((req, res) => {
    if (req.url === '/healthz') res.writeHead(503).end('ok');
    else if (req.url === '/wrong') res.end('degraded');
    else res.end(`${'x'.repeat(100)}ok`);
  }, async (port) => {
    const target = { host: '127.0.0.1', port };
    const status = await httpProbe(http())(target);
    assert.deepEqual([status.ok, status.detail], [false, 'status 503 (expected 200-299)']);
    const wrong = await httpProbe(http({ path: '/wrong' }))(target);
    assert.deepEqual([wrong.ok, wrong.detail], [false, 'body does not contain "ok" within the first 4096 bytes']);
    const regex = await httpProbe(http({ path: '/wrong', expectBody: undefined, expectBodyRegex: /^ok$/ }))(target);
    assert.equal(regex.ok, false);
    const far = await httpProbe(http({ path: '/far', bodyCheckBytes: 50 }))(target);
    assert.equal(far.ok, false);
    assert.equal((await httpProbe(http({ path: '/far', bodyCheckBytes: 200 }))(target)).ok, true);
    const ranges = await httpProbe(http({ expectStatus: parseStatusRanges('200-299,503') }))(target);
    assert.equal(ranges.ok, true, 'a status listed in the ranges passes');
  });
});

test('http probe fails on refused connections, a listener that never answers, and a slow answer', async () => {
  const [closedPort] = await freeLoopbackPorts(1);
  const refused = await httpProbe(http())({ host: '127.0.0.1', port: closedPort! });
  assert.deepEqual([refused.ok, refused.detail], [false, 'connection refused']);
  const accepted: Socket[] = [];
  const silent = createNetServer((socket) => accepted.push(socket));
  const silentPort = await listen(silent);
  try {
    const hung = await httpProbe(http())({ host: '127.0.0.1', port: silentPort });
    assert.deepEqual([hung.ok, hung.detail], [false, `timed out after ${TIMEOUT_MS} ms`]);
    assert.ok(hung.finishedAtMs - hung.startedAtMs >= TIMEOUT_MS - 5);
    assert.equal(accepted.length, 1, 'the connection was accepted');
  } finally {
    for (const socket of accepted) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
  await withHttp((_req, res) => {
    setTimeout(() => res.end('ok'), TIMEOUT_MS * 3).unref();
  }, async (port) => {
    const slow = await httpProbe(http())({ host: '127.0.0.1', port });
    assert.deepEqual([slow.ok, slow.detail], [false, `timed out after ${TIMEOUT_MS} ms`]);
  });
});

test('tcp probe: connected, refused', async () => {
  const server = createNetServer((socket) => socket.destroy());
  const port = await listen(server);
  try {
    assert.equal((await tcpProbe({ timeoutMs: TIMEOUT_MS })({ host: '127.0.0.1', port })).ok, true);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  const refused = await tcpProbe({ timeoutMs: TIMEOUT_MS })({ host: '127.0.0.1', port });
  assert.deepEqual([refused.ok, refused.detail], [false, 'connection refused']);
});

function iptables(args: string[]): boolean {
  const result = spawnSync('iptables', args, { stdio: 'ignore' });
  return result.status === 0;
}

test('tcp probe times out when SYNs are dropped (iptables DROP on a loopback port; root only)', async (t) => {
  const [port] = await freeLoopbackPorts(1);
  const rule = ['INPUT', '-i', 'lo', '-p', 'tcp', '--dport', String(port), '--syn', '-j', 'DROP'];
  if (process.getuid?.() !== 0 || !iptables(['-A', ...rule])) {
    t.skip('needs root and iptables');
    return;
  }
  const server = createNetServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    const dropped = await tcpProbe({ timeoutMs: TIMEOUT_MS })({ host: '127.0.0.1', port: port! });
    assert.deepEqual([dropped.ok, dropped.detail], [false, `connect timed out after ${TIMEOUT_MS} ms`]);
    const viaHttp = await httpProbe(http())({ host: '127.0.0.1', port: port! });
    assert.deepEqual([viaHttp.ok, viaHttp.detail], [false, `timed out after ${TIMEOUT_MS} ms`]);
  } finally {
    iptables(['-D', ...rule]);
    await new Promise((resolve) => server.close(resolve));
  }
  assert.equal((await tcpProbe({ timeoutMs: TIMEOUT_MS })({ host: '127.0.0.1', port: port! })).ok, false, 'closed and no longer dropped: refused');
});

test('grpc health messages encode and decode as protobuf', () => {
  assert.deepEqual([...encodeHealthCheckRequest('')], []);
  assert.deepEqual([...encodeHealthCheckRequest('kv')], [0x0a, 2, 0x6b, 0x76]);
  assert.equal(decodeHealthCheckResponse(Buffer.from([0x08, 0x01])), 1);
  assert.equal(decodeHealthCheckResponse(Buffer.from([0x08, 0x02])), 2);
  assert.equal(decodeHealthCheckResponse(Buffer.alloc(0)), 0);
});

test('grpc probe: SERVING passes; NOT_SERVING, unknown service, no server and a hung handler fail', async () => {
  const server = new GrpcServer();
  const statuses = new Map([['', 1], ['kv', 1], ['down', 2]]);
  // The request is decoded into an object: grpc-js's server treats a falsy message ('') as missing.
  server.register('/grpc.health.v1.Health/Check', (call: ServerUnaryCall<{ service: string }, number>, callback: sendUnaryData<number>) => {
    if (call.request.service === 'hang') return; // never answers
    const status = statuses.get(call.request.service);
    if (status === undefined) callback({ code: GrpcStatus.NOT_FOUND, details: 'unknown service' });
    else callback(null, status);
  }, (status: number) => Buffer.from([0x08, status]), (bytes: Buffer) => {
    return { service: bytes.length === 0 ? '' : bytes.subarray(2).toString('utf8') };
  }, 'unary');
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  try {
    const target = { host: '127.0.0.1', port };
    const probe = (service: string) => grpcProbe({ service, timeoutMs: TIMEOUT_MS })(target);
    assert.deepEqual(await probe('').then((r) => [r.ok, r.detail]), [true, 'SERVING']);
    assert.deepEqual(await probe('kv').then((r) => [r.ok, r.detail]), [true, 'SERVING']);
    assert.deepEqual(await probe('down').then((r) => [r.ok, r.detail]), [false, 'NOT_SERVING']);
    assert.deepEqual(await probe('nope').then((r) => [r.ok, r.detail]), [false, 'gRPC NOT_FOUND: unknown service']);
    assert.deepEqual(await probe('hang').then((r) => [r.ok, r.detail]), [false, `timed out after ${TIMEOUT_MS} ms`]);
  } finally {
    server.forceShutdown();
  }
  const gone = await grpcProbe({ service: '', timeoutMs: TIMEOUT_MS })({ host: '127.0.0.1', port });
  assert.equal(gone.ok, false);
});

test('the checker never runs more probes at once than its cap, and marks hung backends down', async () => {
  const accepted: Socket[] = [];
  const silent = createNetServer((socket) => accepted.push(socket));
  const port = await listen(silent);
  const health = new PoolHealth({
    pool: 'web',
    active: { kind: 'http', intervalMs: 100, fastIntervalMs: 100, timeoutMs: 150, rise: 1, fall: 1, jitterPercent: 10 },
    outlier: { consecutive5xx: 0, consecutiveGatewayFailure: 0, intervalMs: 10_000, baseEjectionMs: 1, maxEjectionMs: 1, maxEjectionPercent: 0, successRateRequestVolume: 0, successRateMinimumHosts: 5, successRateStdevFactor: 1.9 },
  }, new SeededRandom(3));
  const down = new Set<string>();
  const checker = new HealthChecker({
    maxConcurrentChecks: 3,
    onResult: (_pool, backend, _result, events) => {
      for (const event of events) if (event.kind === 'marked-down') down.add(backend);
    },
  });
  const hungProbe = httpProbe(http({ timeoutMs: 150 }));
  let running = 0;
  let maxRunning = 0;
  const probe = async (target: { host: string; port: number }) => {
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      return await hungProbe(target);
    } finally {
      running -= 1;
    }
  };
  try {
    for (let i = 0; i < 8; i++) {
      health.addBackend(`b${i}`, true);
      checker.watch('web', `b${i}`, { host: '127.0.0.1', port }, health, probe);
    }
    for (let waited = 0; waited < 5000 && down.size < 8; waited += 50) await delay(50);
    assert.equal(down.size, 8, 'every hung backend is marked down');
    assert.ok(maxRunning <= 3, `at most 3 probes at once, saw ${maxRunning}`);
    assert.equal(maxRunning, 3, 'probes do run concurrently up to the cap');
    assert.ok(accepted.length >= 8, 'every backend was really probed');
  } finally {
    checker.stop();
    for (const socket of accepted) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('the cap on concurrent probes changes live: raised, the waiting probes start at once', async () => {
  const health = new PoolHealth({
    pool: 'web',
    active: { kind: 'tcp', intervalMs: 100, fastIntervalMs: 100, timeoutMs: 100, rise: 1, fall: 1, jitterPercent: 0 },
    outlier: { consecutive5xx: 0, consecutiveGatewayFailure: 0, intervalMs: 10_000, baseEjectionMs: 1, maxEjectionMs: 1, maxEjectionPercent: 0, successRateRequestVolume: 0, successRateMinimumHosts: 5, successRateStdevFactor: 1.9 },
  }, new SeededRandom(5));
  const checker = new HealthChecker({ maxConcurrentChecks: 1, onResult: () => {} });
  const releases: (() => void)[] = [];
  // Probes that finish only when the test says so, so the counts below are exact.
  const probe = () => new Promise<{ ok: boolean; detail: string; startedAtMs: number; finishedAtMs: number }>((resolve) => releases.push(() => resolve({ ok: true, detail: 'ok', startedAtMs: 0, finishedAtMs: 0 })));
  try {
    for (let i = 0; i < 3; i++) {
      health.addBackend(`b${i}`, true);
      checker.watch('web', `b${i}`, { host: '127.0.0.1', port: 1 }, health, probe);
    }
    for (let waited = 0; waited < 2_000 && checker.load.running + checker.load.waiting < 3; waited += 10) await delay(10);
    assert.deepEqual([checker.load.running, checker.load.waiting], [1, 2], 'one running, two waiting under a cap of 1');
    checker.setMaxConcurrentChecks(3);
    assert.deepEqual([checker.load.running, checker.load.waiting], [3, 0], 'raised to 3: the waiting probes run');
    assert.throws(() => checker.setMaxConcurrentChecks(0), /positive integer/);
  } finally {
    checker.stop();
    for (const release of releases) release();
  }
});
