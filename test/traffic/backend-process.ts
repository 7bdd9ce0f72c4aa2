// A backend in its own process, so tests can kill it for real (SIGKILL). Usage:
//   node test/traffic/backend-process.ts PORT NAME
// Serves NAME on every path, /healthz with "ok", and obeys POST /__mode/MODE:
//   ok (default) | hang (accept, never answer) | wrong (healthz says "degraded") | fail (500s)
// Prints "ready" on stdout once listening.

import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const name = process.argv[3] ?? `backend-${port}`;
let mode = 'ok';

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url?.startsWith('/__mode/')) {
    mode = req.url.slice('/__mode/'.length);
    res.end(`mode ${mode}\n`);
    return;
  }
  if (mode === 'hang') return;
  if (mode === 'fail') return void res.writeHead(500).end('failing\n');
  if (req.url === '/healthz') return void res.end(mode === 'wrong' ? 'degraded\n' : 'ok\n');
  res.end(name);
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
