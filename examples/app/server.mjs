// A small example backend for Concord (plain Node.js, no dependencies), the app that
// `concord up` and the autoscaler's process provider start:
//
//   node examples/app/server.mjs --port 9100 [--host 127.0.0.1] [--service-time-ms 20]
//        [--concurrency 8] [--max-queue 1000] [--startup-delay-ms 0] [--faults 0|1]
//
// GET /healthz answers "ok" (503 "unhealthy" after SIGUSR2, which toggles it, so tests can make an
// instance fail its checks). GET /stats answers JSON {inflight, queued, served, rejected}. Any other
// request waits for one of --concurrency workers, holds it for --service-time-ms, and answers
// "hello from PORT": with more load than workers, requests queue, so load shows in latency and
// in-flight counts as it does in a real service. Past --max-queue waiting requests it answers 503.
// SIGTERM stops accepting connections, lets in-flight requests finish, then exits (at most 10 s).
// With --faults 1 (what `concord demo` uses to show a failure): POST /fault/crash makes the process
// exit at once with status 1, as a crash would; POST /fault/unhealthy toggles /healthz like SIGUSR2.

import { createServer } from 'node:http';

const DEFAULTS = { port: 0, host: '127.0.0.1', 'service-time-ms': 20, concurrency: 8, 'max-queue': 1000, 'startup-delay-ms': 0, faults: 0 };
const SHUTDOWN_DEADLINE_MS = 10_000;

function parseArgs(argv) {
  const options = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '');
    if (!(name in DEFAULTS) || argv[i] === name || i + 1 >= argv.length) {
      console.error(`usage: server.mjs --port N [--host H] [--service-time-ms N] [--concurrency N] [--max-queue N] [--startup-delay-ms N] [--faults 0|1] (bad argument '${argv[i]}')`);
      process.exit(2);
    }
    const value = argv[++i];
    if (name === 'host') options.host = value;
    else if (!/^\d+$/.test(value)) {
      console.error(`--${name} must be a whole number, got '${value}'`);
      process.exit(2);
    } else options[name] = Number(value);
  }
  if (options.faults > 1) {
    console.error('--faults must be 0 or 1');
    process.exit(2);
  }
  if (options.concurrency < 1) {
    console.error('--concurrency must be at least 1');
    process.exit(2);
  }
  return options;
}

const options = parseArgs(process.argv.slice(2));
let healthy = true;
let shuttingDown = false;
let inflight = 0;
let served = 0;
let rejected = 0;
const queue = [];

function acquire() {
  if (inflight < options.concurrency) {
    inflight++;
    return Promise.resolve(true);
  }
  if (queue.length >= options['max-queue']) return Promise.resolve(false);
  return new Promise((resolve) => queue.push(resolve));
}

function release() {
  const next = queue.shift();
  if (next) next(true);
  else inflight--;
}

const server = createServer(async (request, response) => {
  const path = (request.url ?? '/').split('?')[0];
  if (path === '/healthz') {
    response.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' });
    response.end(healthy ? 'ok' : 'unhealthy');
    return;
  }
  if (options.faults === 1 && request.method === 'POST' && path.startsWith('/fault/')) {
    answerFault(path, response);
    return;
  }
  if (path === '/stats') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ inflight, queued: queue.length, served, rejected }));
    return;
  }
  if (!(await acquire())) {
    rejected++;
    response.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
    response.end('overloaded\n');
    return;
  }
  setTimeout(() => {
    served++;
    const headers = { 'content-type': 'text/plain', 'x-served-by': String(options.port) };
    if (shuttingDown) headers.connection = 'close';
    response.writeHead(200, headers);
    response.end(`hello from ${options.port}\n`, release);
  }, options['service-time-ms']);
});

function answerFault(path, response) {
  if (path === '/fault/crash') {
    console.error('crashing on request (POST /fault/crash)');
    response.writeHead(202, { 'content-type': 'text/plain', connection: 'close' });
    response.end('crashing\n', () => process.exit(1));
  } else if (path === '/fault/unhealthy') {
    healthy = !healthy;
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end(healthy ? 'healthy\n' : 'unhealthy\n');
  } else {
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('faults: POST /fault/crash or /fault/unhealthy\n');
  }
}

process.on('SIGUSR2', () => {
  healthy = !healthy;
});

process.on('SIGTERM', () => {
  // Stop accepting; in-flight requests finish and their connections close after the response.
  shuttingDown = true;
  server.close(() => process.exit(0));
  setInterval(() => server.closeIdleConnections(), 50).unref();
  setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS).unref();
});

setTimeout(() => {
  server.listen(options.port, options.host, () => {
    console.log(`example app listening on ${options.host}:${server.address().port}`);
  });
}, options['startup-delay-ms']);
