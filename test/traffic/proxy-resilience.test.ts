// The proxy under failure, with real backends on loopback: a backend killed (SIGKILL) under a
// sequential client and under 64 concurrent connections, a hung backend, wrong content, flapping,
// slow start, draining with requests in flight, and the maximum ejection percentage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'node:http';
import { Pool } from 'undici';
import type { LoggedEvent } from '../../src/traffic/proxy/event-log.ts';
import { freeLoopbackPorts, stopProcess } from '../support/child-processes.ts';
import { eventually, pool, startBackend, startProxy, type TestProxy } from './proxy-harness.ts';

const BACKEND_SCRIPT = fileURLToPath(new URL('./backend-process.ts', import.meta.url));

async function spawnBackend(port: number, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BACKEND_SCRIPT, String(port), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`backend ${name} exited with ${code} before it was ready`)));
  });
  return child;
}

async function setMode(port: number, mode: string): Promise<void> {
  await fetch(`http://127.0.0.1:${port}/__mode/${mode}`, { method: 'POST' });
}

function get(agent: Agent, port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: -1, body: '' }));
    });
    req.on('error', () => resolve({ status: -1, body: '' }));
    req.end();
  });
}

async function events(proxy: TestProxy): Promise<LoggedEvent[]> {
  return proxy.proxy.events.since(0).events;
}

const FAST_HEALTH = { http: { path: '/healthz', expectBody: 'ok' }, intervalMs: 200, timeoutMs: 100, rise: 2, fall: 2 };

async function withBackends(count: number, body: (ports: number[], children: ChildProcess[]) => Promise<void>): Promise<void> {
  const ports = await freeLoopbackPorts(count);
  const children: ChildProcess[] = [];
  try {
    for (const [index, port] of ports.entries()) children.push(await spawnBackend(port, `b${index}`));
    await body(ports, children);
  } finally {
    await Promise.all(children.map((child) => stopProcess(child, { graceMs: 1000, killWaitMs: 1000 })));
  }
}

test('killing a backend under a sequential client fails no request', async () => {
  await withBackends(3, async (ports, children) => {
    const proxy = await startProxy({ pools: [pool('web', ports.map((port) => `127.0.0.1:${port}`), { health: FAST_HEALTH })] });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const statuses = new Map<number, number>();
      for (let i = 0; i < 600; i++) {
        if (i === 200) children[1]!.kill('SIGKILL');
        const reply = await get(agent, proxy.proxy.trafficAddress.port);
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
      }
      assert.deepEqual([...statuses], [[200, 600]]);
      assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'marked-down' && event.backend === `127.0.0.1:${ports[1]}`), 8000), 'the dead backend is marked down');
    } finally {
      agent.destroy();
      await proxy.stop();
    }
  });
});

test('killing one of 3 backends under 64 concurrent connections fails at most 0.1 % of requests', async () => {
  await withBackends(3, async (ports, children) => {
    const proxy = await startProxy({ pools: [pool('web', ports.map((port) => `127.0.0.1:${port}`), { health: FAST_HEALTH })] });
    const client = new Pool(`http://127.0.0.1:${proxy.proxy.trafficAddress.port}`, { connections: 64 });
    try {
      const total = 6000;
      let sent = 0;
      let failed = 0;
      const failures = new Map<string, number>();
      const deadline = performance.now() + 60_000;
      const worker = async () => {
        while (sent < total && performance.now() < deadline) {
          sent += 1;
          if (sent === 2000) children[0]!.kill('SIGKILL');
          try {
            const reply = await client.request({ path: '/', method: 'GET' });
            await reply.body.text();
            if (reply.statusCode !== 200) {
              failed += 1;
              failures.set(String(reply.statusCode), (failures.get(String(reply.statusCode)) ?? 0) + 1);
            }
          } catch (error) {
            failed += 1;
            failures.set((error as Error).message, (failures.get((error as Error).message) ?? 0) + 1);
          }
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      assert.equal(sent, total, 'every request was sent within the time bound');
      assert.ok(failed <= total * 0.001, `${failed} of ${total} failed: ${JSON.stringify([...failures])}`);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });
});

test('a hung backend is marked down within (fall − 1) × interval + timeout of its first failed probe', async () => {
  await withBackends(2, async (ports) => {
    const health = { http: { path: '/healthz', expectBody: 'ok' }, intervalMs: 300, timeoutMs: 150, rise: 2, fall: 3, jitterPercent: 10 };
    const proxy = await startProxy({ pools: [pool('web', ports.map((port) => `127.0.0.1:${port}`), { health })] });
    try {
      await eventually(() => proxy.proxy.pool('web')!.report().every((backend) => backend.lastCheck?.ok === true), 8000);
      const hungAtMs = performance.timeOrigin + performance.now();
      await setMode(ports[0]!, 'hang');
      let down: LoggedEvent | undefined;
      assert.ok(await eventually(async () => (down = (await events(proxy)).find((event) => event.kind === 'marked-down')) !== undefined, 5000));
      const bound = (health.fall - 1) * health.intervalMs * 1.1 + health.timeoutMs;
      const slackMs = 500; // timers fire late on a loaded machine
      assert.equal(down!.backend, `127.0.0.1:${ports[0]}`);
      assert.match(down!.detail, /timed out after 150 ms/);
      assert.ok(down!.detectionMs! <= bound + slackMs, `detected in ${down!.detectionMs} ms; bound ${bound} ms + ${slackMs} ms slack`);
      assert.ok(down!.atMs - hungAtMs <= health.intervalMs * 1.1 + bound + slackMs, 'from the hang to the verdict: at most one interval more');
    } finally {
      await proxy.stop();
    }
  });
});

test('a backend serving the wrong content is marked down, and back up when it recovers', async () => {
  await withBackends(2, async (ports) => {
    const proxy = await startProxy({ pools: [pool('web', ports.map((port) => `127.0.0.1:${port}`), { health: FAST_HEALTH })] });
    try {
      await setMode(ports[1]!, 'wrong');
      assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'marked-down'), 8000));
      const down = (await events(proxy)).find((event) => event.kind === 'marked-down')!;
      assert.equal(down.backend, `127.0.0.1:${ports[1]}`);
      assert.equal(down.detail, 'body does not contain "ok" within the first 4096 bytes');
      const agent = new Agent({ keepAlive: true });
      for (let i = 0; i < 20; i++) assert.equal((await get(agent, proxy.proxy.trafficAddress.port)).body, 'b0');
      agent.destroy();
      await setMode(ports[1]!, 'ok');
      assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'marked-up'), 8000));
    } finally {
      await proxy.stop();
    }
  });
});

test('flapping is damped by rise and fall: a check that alternates never changes the state', async () => {
  let probes = 0;
  const flapping = await startBackend((req, res) => {
    if (req.url === '/healthz') {
      probes += 1;
      res.writeHead(probes % 2 === 0 ? 500 : 200).end('ok');
    } else res.end('flapping');
  });
  const steady = await startBackend((_req, res) => res.end('ok'));
  // timeoutMs as long as the interval allows: on a loaded machine a 50 ms timeout fails probes of
  // healthy backends too, and two in a row are a real (not a flapping) change.
  const proxy = await startProxy({ pools: [pool('web', [flapping.address, steady.address], { health: { ...FAST_HEALTH, intervalMs: 100, timeoutMs: 100 } })] });
  try {
    assert.ok(await eventually(() => probes >= 16, 5000));
    assert.deepEqual((await events(proxy)).map((event) => event.kind), []);
  } finally {
    await proxy.stop();
    await flapping.close();
    await steady.close();
  }
});

test('slow start: a backend that comes back ramps up its share over the window', async () => {
  let healthy = false;
  const cold = await startBackend((req, res) => {
    if (req.url === '/healthz') res.writeHead(healthy ? 200 : 500).end('ok');
    else res.end('cold');
  });
  const warm = await startBackend((_req, res) => res.end('warm'));
  const windowMs = 2000;
  const proxy = await startProxy({
    pools: [pool('web', [cold.address, warm.address], {
      balance: 'weighted-round-robin', slowStart: { windowMs, minWeightPercent: 10 },
      health: { http: { path: '/healthz' }, intervalMs: 100, timeoutMs: 50, rise: 1, fall: 1 },
    })],
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'marked-down'), 8000));
    healthy = true;
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'marked-up'), 8000));
    const upAt = performance.now();
    const share = new Map<number, { cold: number; total: number }>();
    for (let i = 0; i < 20_000 && performance.now() - upAt < windowMs * 1.2; i++) {
      const reply = await get(agent, proxy.proxy.trafficAddress.port);
      const slot = Math.floor(((performance.now() - upAt) / windowMs) * 4); // quarters of the window
      const entry = share.get(slot) ?? { cold: 0, total: 0 };
      entry.total += 1;
      if (reply.body === 'cold') entry.cold += 1;
      share.set(slot, entry);
    }
    const fraction = (slot: number) => share.get(slot)!.cold / share.get(slot)!.total;
    // Linear ramp from 10 %: weights ≈ 0.1-0.25 in the first quarter (share ≤ 0.2), ≈ 0.75-1 in the last (share ≥ 0.4).
    assert.ok(fraction(0) < 0.25, `first quarter share ${fraction(0)}`);
    assert.ok(fraction(3) > 0.38, `last quarter share ${fraction(3)}`);
    assert.ok(fraction(0) < fraction(1) && fraction(1) < fraction(3), 'the share grows');
  } finally {
    agent.destroy();
    await proxy.stop();
    await cold.close();
    await warm.close();
  }
});

test('draining a backend loses no in-flight request', async () => {
  const slow = await startBackend((_req, res) => {
    setTimeout(() => res.end('slow'), 400);
  });
  const fast = await startBackend((_req, res) => res.end('fast'));
  const proxy = await startProxy({ pools: [pool('web', [slow.address, fast.address], { balance: 'round-robin' })] });
  const agent = new Agent({ keepAlive: true });
  try {
    const inFlight = Promise.all(Array.from({ length: 10 }, () => get(agent, proxy.proxy.trafficAddress.port)));
    assert.ok(await eventually(() => proxy.proxy.pool('web')!.backend(slow.address)!.load.activeRequests === 5, 8000));
    const drain = await fetch(`${proxy.adminUrl}/pools/web/backends/${slow.address}/drain`, { method: 'POST' });
    assert.equal(((await drain.json()) as { state: string }).state, 'draining');
    for (let i = 0; i < 5; i++) assert.equal((await get(agent, proxy.proxy.trafficAddress.port)).body, 'fast');
    const replies = await inFlight;
    assert.deepEqual(replies.map((reply) => reply.status), Array(10).fill(200));
    assert.equal(replies.filter((reply) => reply.body === 'slow').length, 5);
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'drained'), 8000));
    assert.match((await events(proxy)).find((event) => event.kind === 'drained')!.detail, /in-flight requests finished/);
  } finally {
    agent.destroy();
    await proxy.stop();
    await slow.close();
    await fast.close();
  }
});

test('the maximum ejection percentage holds when every backend fails', async () => {
  const backends = await Promise.all(Array.from({ length: 4 }, () => startBackend((_req, res) => res.writeHead(500).end('broken'))));
  const proxy = await startProxy({
    pools: [pool('web', backends.map((backend) => backend.address), {
      panicThresholdPercent: 0, retries: { attempts: 0 }, outlierDetection: { consecutive5xx: 3, maxEjectionPercent: 50 },
    })],
  });
  const agent = new Agent({ keepAlive: true });
  try {
    for (let i = 0; i < 200; i++) {
      await get(agent, proxy.proxy.trafficAddress.port);
      const ejected = proxy.proxy.pool('web')!.report().filter((backend) => backend.state === 'ejected').length;
      assert.ok(ejected <= 2, `${ejected} of 4 ejected with maxEjectionPercent 50`);
    }
    assert.equal(proxy.proxy.pool('web')!.report().filter((backend) => backend.state === 'ejected').length, 2, 'the cap is reached, not just respected');
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    assert.match(metrics, /concord_proxy_ejections_total\{pool="web",backend="[^"]+",cause="passive:consecutive-5xx"\} 1/);
  } finally {
    agent.destroy();
    await proxy.stop();
    await Promise.all(backends.map((backend) => backend.close()));
  }
});

test('crossing the panic threshold is an event: traffic then goes to every backend, healthy or not', async () => {
  const healthy = [true, true];
  const backends = await Promise.all([0, 1].map((index) => startBackend((req, res) => {
    if (req.url === '/healthz') res.writeHead(healthy[index] ? 200 : 503).end();
    else res.end(`b${index}`);
  })));
  const proxy = await startProxy({
    pools: [pool('web', backends.map((backend) => backend.address), {
      balance: 'round-robin', panicThresholdPercent: 50, health: { http: { path: '/healthz' }, intervalMs: 100, timeoutMs: 50, rise: 1, fall: 1 },
    })],
  });
  const agent = new Agent({ keepAlive: true });
  try {
    healthy[0] = false;
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'marked-down'), 8000));
    for (let i = 0; i < 6; i++) assert.equal((await get(agent, proxy.proxy.trafficAddress.port)).body, 'b1', 'half healthy is not below 50 %');
    healthy[1] = false;
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'panic-started'), 8000));
    const panic = (await events(proxy)).find((event) => event.kind === 'panic-started')!;
    assert.deepEqual([panic.backend, panic.cause], ['*', 'pool:panic-threshold']);
    assert.match(panic.detail, /0 of 2 backends healthy/);
    const bodies = new Set<string>();
    for (let i = 0; i < 6; i++) bodies.add((await get(agent, proxy.proxy.trafficAddress.port)).body);
    assert.deepEqual(bodies, new Set(['b0', 'b1']), 'in panic every backend gets traffic');
    healthy[0] = true;
    healthy[1] = true;
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'panic-ended'), 8000));
  } finally {
    agent.destroy();
    await proxy.stop();
    await Promise.all(backends.map((backend) => backend.close()));
  }
});

test('overload trips the panic threshold rather than an ejection cascade: with every backend overloaded, at most maxEjectionPercent are ejected and the pool spreads traffic over all of them', async () => {
  let overloaded = false;
  const backends = await Promise.all([0, 1, 2, 3].map((index) => startBackend((req, res) => {
    // An overloaded backend fails its health checks and answers requests with plain 503s (no x-concord-shed: it does not shed on purpose).
    if (overloaded) res.writeHead(503).end(`b${index} overloaded`);
    else res.end(req.url === '/healthz' ? 'ok' : `b${index}`);
  })));
  const proxy = await startProxy({
    pools: [pool('web', backends.map((backend) => backend.address), {
      balance: 'round-robin', panicThresholdPercent: 50, retries: { attempts: 0 },
      health: { http: { path: '/healthz' }, intervalMs: 100, timeoutMs: 50, rise: 1, fall: 1 },
      outlierDetection: { consecutive5xx: 2, maxEjectionPercent: 50 },
    })],
  });
  const agent = new Agent({ keepAlive: true });
  const ejectedNow = () => proxy.proxy.pool('web')!.report().filter((backend) => backend.state === 'ejected').length;
  try {
    overloaded = true;
    assert.ok(await eventually(async () => {
      await get(agent, proxy.proxy.trafficAddress.port);
      assert.ok(ejectedNow() <= 2, `${ejectedNow()} of 4 ejected with maxEjectionPercent 50`);
      return (await events(proxy)).some((event) => event.kind === 'panic-started');
    }, 8000), 'the pool panics');
    const reached = new Set<string>();
    for (let i = 0; i < 12; i++) {
      reached.add((await get(agent, proxy.proxy.trafficAddress.port)).body.split(' ')[0]!);
      assert.ok(ejectedNow() <= 2, 'never more than maxEjectionPercent ejected');
    }
    assert.deepEqual(reached, new Set(['b0', 'b1', 'b2', 'b3']), 'in panic the load is spread over every backend, not piled on survivors');
    overloaded = false;
    assert.ok(await eventually(async () => (await events(proxy)).some((event) => event.kind === 'panic-ended'), 8000), 'the panic ends when the overload does');
  } finally {
    agent.destroy();
    await proxy.stop();
    await Promise.all(backends.map((backend) => backend.close()));
  }
});

test('a GET whose backend leaves the pool and then dies before answering is retried on a backend still in it', async () => {
  const started: { proxy?: TestProxy } = {};
  const survivor = await startBackend((_req, res) => res.end('survivor'));
  let crashes = 0;
  const crashing = await startBackend((req) => {
    // What a crashed autoscaled instance looks like to the proxy: the control plane removes it from
    // the pool while its last request is in flight, then the connection drops without an answer.
    crashes++;
    const runtime = started.proxy!.proxy.pool('web')!;
    runtime.setBackends({ ...runtime.config, backends: runtime.config.backends.filter((backend) => backend.address === survivor.address) }, false);
    req.socket.destroy();
  });
  const proxy = await startProxy({ pools: [pool('web', [crashing.address, survivor.address], { balance: 'round-robin' })] });
  started.proxy = proxy;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await get(agent, proxy.proxy.trafficAddress.port));
    assert.equal(crashes, 1, 'one request reached the crashing backend');
    assert.deepEqual(replies.map((reply) => `${reply.status} ${reply.body}`), Array(4).fill('200 survivor'));
  } finally {
    agent.destroy();
    await proxy.stop();
    await survivor.close();
    await crashing.close();
  }
});
