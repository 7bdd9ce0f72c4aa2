// The "naive Node proxy" the benchmark compares with: node:http server, node:http client with a
// keep-alive agent, pipe both ways, round robin. What a Node developer writes in ten minutes.
//   node bench/naive-proxy.ts PORT BACKEND_PORT [BACKEND_PORT...]

import { Agent, createServer, request } from 'node:http';

const [port, ...backendPorts] = process.argv.slice(2).map(Number);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
let next = 0;
createServer((req, res) => {
  const backendPort = backendPorts[next++ % backendPorts.length];
  const upstream = request({ host: '127.0.0.1', port: backendPort, method: req.method, path: req.url, headers: req.headers, agent }, (response) => {
    res.writeHead(response.statusCode ?? 502, response.headers);
    response.pipe(res);
  });
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
}).listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
