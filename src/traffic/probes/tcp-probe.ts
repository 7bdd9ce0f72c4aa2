// TCP check: the backend passes when a connection is established within the timeout. Catches a
// dead process (refused) and a host that drops SYNs (the connect never completes: timed out).

import { connect } from 'node:net';
import type { ProbeResult } from '../health/active-check.ts';
import { describeSocketError, onceSettled, systemClock, type Clock, type Probe, type ProbeTarget } from './probe.ts';

export function tcpProbe(options: { timeoutMs: number }, clock: Clock = systemClock): Probe {
  return (target: ProbeTarget) => new Promise<ProbeResult>((resolve) => {
    const settle = onceSettled(clock(), clock, resolve);
    const socket = connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      settle(false, `connect timed out after ${options.timeoutMs} ms`);
      socket.destroy();
    }, options.timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      settle(true, 'connected');
      socket.destroy();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      settle(false, describeSocketError(error));
    });
  });
}
