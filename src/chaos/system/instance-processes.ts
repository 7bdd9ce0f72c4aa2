// The operating system's view of the autoscaler's instances: every process whose environment
// carries this run's marker (the pool's provider sets CONCORD_CHAOS_RUN=<run id>, and the process
// provider sets CONCORD_INSTANCE_ID). Read from /proc, so it sees what really runs, whatever the
// store or the members believe; a sampler keeps every instance it ever saw, for the accounting.

import { readdirSync, readFileSync } from 'node:fs';
import type { InstanceProcessView } from './instance-accounting-check.ts';

export const RUN_MARKER_VARIABLE = 'CONCORD_CHAOS_RUN';

export interface InstanceProcess extends InstanceProcessView {
  /** State letter from /proc/PID/stat: R, S, T (stopped), Z (zombie)... */
  state: string;
}

/** Live (not zombie) instance processes of the run `runId`. */
export function listInstanceProcesses(runId: string): InstanceProcess[] {
  const found: InstanceProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environment = readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      if (!environment.includes(`${RUN_MARKER_VARIABLE}=${runId}`)) continue;
      const instanceId = environment.find((line) => line.startsWith('CONCORD_INSTANCE_ID='))?.slice('CONCORD_INSTANCE_ID='.length);
      if (instanceId === undefined) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      found.push({ instanceId, pid: Number(entry), state });
    } catch {
      // Gone between the listing and the read, or not ours to read.
    }
  }
  return found;
}

/** Samples the instance processes every intervalMs; remembers each one seen and when the pool had none. */
export class InstanceSampler {
  /** Keyed by instance id and pid: a new leader's provider may give a relaunched instance an id used before. */
  readonly seen = new Map<string, InstanceProcessView>();
  /**
   * When the pool went empty (ms since the epoch): for each sample that found no instance process
   * alive, the time of the sample before it, the last moment one was seen. The processes died
   * somewhere in between, so requests failing in that interval belong to the outage too.
   */
  readonly emptyAtMs: number[] = [];
  private lastSampleMs: number | undefined;
  private readonly runId: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(runId: string) {
    this.runId = runId;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): InstanceProcess[] {
    const live = listInstanceProcesses(this.runId);
    for (const view of live) this.seen.set(`${view.instanceId}#${view.pid}`, { instanceId: view.instanceId, pid: view.pid });
    const now = Date.now();
    if (live.length === 0 && this.seen.size > 0) this.emptyAtMs.push(this.lastSampleMs ?? now);
    this.lastSampleMs = now;
    return live;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Sends `signal` to a process; false when it is gone. */
export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
