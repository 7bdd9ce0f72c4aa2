// Backends for the stall benchmark, all in one process: each port answers "ok" after a fixed
// service time; POST /__stall?ms=N on a port makes that port hold every request (new and already
// waiting) until N ms have passed, as a backend in a long GC pause or on a dead disk would.
//   node bench/stall-backends.ts SERVICE_MS PORT [PORT...]

import { createServer, type ServerResponse } from 'node:http';

const [serviceMs, ...ports] = process.argv.slice(2).map(Number);
let ready = 0;
for (const port of ports) {
  let stalledUntil = 0;
  const held: ServerResponse[] = [];
  const answer = (res: ServerResponse) => res.end('ok\n');
  createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/__stall')) {
      const ms = Number(new URL(req.url, 'http://x').searchParams.get('ms') ?? '0');
      stalledUntil = Date.now() + ms;
      setTimeout(() => {
        for (const waiting of held.splice(0)) answer(waiting);
      }, ms);
      res.end(`stalled for ${ms} ms\n`);
      return;
    }
    if (Date.now() < stalledUntil) {
      held.push(res);
      return;
    }
    setTimeout(() => (Date.now() < stalledUntil ? held.push(res) : answer(res)), serviceMs);
  }).listen(port, '127.0.0.1', () => {
    ready += 1;
    if (ready === ports.length) process.stdout.write('ready\n');
  });
}
