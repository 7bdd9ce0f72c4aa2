// Process plumbing shared by the tests and benchmarks that start real servers (etcd, Concord):
// free loopback ports, and a stop that escalates from SIGTERM to SIGKILL within named bounds.

import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';

export interface StopBounds {
  /** Time a process gets to exit after SIGTERM. */
  graceMs: number;
  /** Time to wait for the exit after SIGKILL. */
  killWaitMs: number;
}

/** SIGTERM, then SIGKILL if the process outlives the grace period; resolves once it is gone (or the bounds ran out). */
export async function stopProcess(child: ChildProcess, bounds: StopBounds): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const graceful = await Promise.race([exited.then(() => true), delay(bounds.graceMs).then(() => false)]);
  if (!graceful) {
    child.kill('SIGKILL');
    await Promise.race([exited, delay(bounds.killWaitMs)]);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Ports that were free a moment ago: all are held open together so that none repeats. */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('bug: listening socket has no port');
      return address.port;
    });
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}
