// A postmortem from the event timeline (`concord report --since ... --until ...`): what failed,
// when the failure began and when it was detected, how long until traffic moved away from it,
// when it came back; the pools' panic and shedding episodes; what the autoscaler decided and did;
// what operators did. Computed from the events alone (no clock, no I/O), so the same window always
// gives the same report.
//
// Times, for one backend failure:
//   began      the detected-at time less the detection time the checker reports (its first failed
//              probe); for a passive ejection, the ejection itself (the detector gives no start)
//   detected   the first marked-down or ejected event of the backend in the window
//   moved      when traffic stopped going to it: the last proxy to act on it, from the proxies' own
//              events; a verdict published by the control plane moves every store-fed proxy at once
//              (they follow the key), so without proxy events it is the verdict's time
//   recovered  the first marked-up or readmitted event after it

import type { TimelineEvent } from './events.ts';

const DOWN_KINDS = new Set(['marked-down', 'ejected']);
const UP_KINDS = new Set(['marked-up', 'readmitted']);
const OPERATOR_KINDS = new Set(['drain-requested', 'undrain-requested', 'freeze-set', 'freeze-cleared', 'config-applied', 'config-rejected', 'shed-override-changed']);
const SCALING_ACTION_KINDS = new Set(['launch', 'terminate', 'drain', 'action-failed', 'action-refused']);

export interface BackendFailure {
  pool: string;
  backend: string;
  /** What the detector saw ('status 500 (expected 200-299)', '5 consecutive 5xx'). */
  cause: string;
  beganAtMs: number;
  detectedAtMs: number;
  /** From began to detected. */
  detectionMs: number;
  movedAtMs: number;
  /** From began to moved: how long clients could be sent to the failed backend. */
  trafficMovedAfterMs: number;
  /** Undefined while it had not recovered by the end of the window. */
  recoveredAtMs: number | undefined;
  /** From began to recovered (or to the end of the window). */
  outageMs: number;
}

export interface PoolEpisode {
  pool: string;
  kind: 'panic' | 'shedding';
  startedAtMs: number;
  endedAtMs: number | undefined;
  durationMs: number;
}

export interface ScalingChange {
  pool: string;
  atMs: number;
  from: number;
  to: number;
  /** The decision's message: desired, current, actions, freeze. */
  summary: string;
}

export interface Postmortem {
  sinceMs: number;
  untilMs: number;
  events: number;
  failures: BackendFailure[];
  episodes: PoolEpisode[];
  autoscaler: {
    decisions: number;
    /** Decisions whose desired count differed from the current one. */
    changes: ScalingChange[];
    /** launch, terminate and drain actions recorded (and failed or refused ones), by kind. */
    actions: Record<string, number>;
  };
  /** What people did: drains, freezes, configuration changes, overrides. */
  operatorActions: { atMs: number; kind: string; pool: string | undefined; by: string; summary: string }[];
}

function dataOf(event: TimelineEvent): Record<string, unknown> {
  return typeof event.data === 'object' && event.data !== null && !Array.isArray(event.data) ? event.data as Record<string, unknown> : {};
}

function backendOf(event: TimelineEvent): string | undefined {
  const backend = dataOf(event).backend;
  return typeof backend === 'string' && backend !== '*' ? backend : undefined;
}

/** The detail after "<backend>: " in a health event's message. */
function causeOf(event: TimelineEvent): string {
  const separator = event.message.indexOf(': ');
  return separator < 0 ? event.message : event.message.slice(separator + 2);
}

/** Builds the report of events in [sinceMs, untilMs) (the events may be given in any order). */
export function buildPostmortem(all: readonly TimelineEvent[], sinceMs: number, untilMs: number): Postmortem {
  const events = all.filter((event) => event.atMs >= sinceMs && event.atMs < untilMs).sort((a, b) => a.atMs - b.atMs);
  return {
    sinceMs,
    untilMs,
    events: events.length,
    failures: failuresOf(events, untilMs),
    episodes: episodesOf(events, untilMs),
    autoscaler: autoscalerOf(events),
    operatorActions: events.filter((event) => OPERATOR_KINDS.has(event.kind) && event.source !== 'health')
      .map((event) => ({ atMs: event.atMs, kind: event.kind, pool: event.pool, by: typeof dataOf(event).by === 'string' ? dataOf(event).by as string : event.by, summary: event.message })),
  };
}

function failuresOf(events: readonly TimelineEvent[], untilMs: number): BackendFailure[] {
  const failures: BackendFailure[] = [];
  const open = new Map<string, { failure: BackendFailure; movers: Set<string> }>();
  for (const event of events) {
    const backend = backendOf(event);
    if (backend === undefined || event.pool === undefined) continue;
    const key = `${event.pool}/${backend}`;
    const current = open.get(key);
    if (DOWN_KINDS.has(event.kind)) {
      if (current !== undefined) {
        // Another component saw the same failure: a proxy acting on it moves traffic then.
        if (event.source === 'proxy' && !current.movers.has(event.by)) {
          current.movers.add(event.by);
          current.failure.movedAtMs = Math.max(current.failure.movedAtMs, event.atMs);
          current.failure.trafficMovedAfterMs = current.failure.movedAtMs - current.failure.beganAtMs;
        }
        continue;
      }
      const detectionMs = Number(dataOf(event).detectionMs);
      const began = Number.isFinite(detectionMs) && detectionMs >= 0 ? event.atMs - detectionMs : event.atMs;
      const failure: BackendFailure = {
        pool: event.pool, backend, cause: causeOf(event), beganAtMs: began, detectedAtMs: event.atMs, detectionMs: event.atMs - began,
        movedAtMs: event.atMs, trafficMovedAfterMs: event.atMs - began, recoveredAtMs: undefined, outageMs: untilMs - began,
      };
      failures.push(failure);
      open.set(key, { failure, movers: new Set(event.source === 'proxy' ? [event.by] : []) });
    } else if (UP_KINDS.has(event.kind) && current !== undefined) {
      current.failure.recoveredAtMs = event.atMs;
      current.failure.outageMs = event.atMs - current.failure.beganAtMs;
      open.delete(key);
    }
  }
  return failures;
}

function episodesOf(events: readonly TimelineEvent[], untilMs: number): PoolEpisode[] {
  const episodes: PoolEpisode[] = [];
  // Every proxy reports its own episode; the pool's runs while any proxy is in one.
  const open = new Map<string, { episode: PoolEpisode; reporters: Set<string> }>();
  const kinds: Record<string, ['panic' | 'shedding', boolean]> = {
    'panic-started': ['panic', true], 'panic-ended': ['panic', false], 'shed-started': ['shedding', true], 'shed-stopped': ['shedding', false],
  };
  for (const event of events) {
    const meaning = kinds[event.kind];
    if (meaning === undefined || event.pool === undefined) continue;
    const [kind, starts] = meaning;
    const key = `${event.pool}/${kind}`;
    const current = open.get(key);
    if (starts) {
      if (current !== undefined) {
        current.reporters.add(event.by);
        continue;
      }
      const episode: PoolEpisode = { pool: event.pool, kind, startedAtMs: event.atMs, endedAtMs: undefined, durationMs: untilMs - event.atMs };
      episodes.push(episode);
      open.set(key, { episode, reporters: new Set([event.by]) });
    } else if (current !== undefined) {
      current.reporters.delete(event.by);
      if (current.reporters.size > 0) continue;
      current.episode.endedAtMs = event.atMs;
      current.episode.durationMs = event.atMs - current.episode.startedAtMs;
      open.delete(key);
    }
  }
  return episodes;
}

function autoscalerOf(events: readonly TimelineEvent[]): Postmortem['autoscaler'] {
  const changes: ScalingChange[] = [];
  const actions: Record<string, number> = {};
  let decisions = 0;
  for (const event of events) {
    if (event.source !== 'autoscaler' && event.source !== 'controller') continue;
    if (event.kind === 'decision' && event.pool !== undefined) {
      decisions += 1;
      const counts = /^desired (\d+) \(current (\d+)/.exec(event.message);
      if (counts !== null && counts[1] !== counts[2]) changes.push({ pool: event.pool, atMs: event.atMs, from: Number(counts[2]), to: Number(counts[1]), summary: event.message });
    } else if (SCALING_ACTION_KINDS.has(event.kind)) {
      actions[event.kind] = (actions[event.kind] ?? 0) + 1;
    }
  }
  return { decisions, changes, actions };
}

function clock(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1_000).toFixed(1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** The report as text for a person (the --json form is the Postmortem object itself). */
export function formatPostmortem(report: Postmortem): string {
  const lines = [`Postmortem ${clock(report.sinceMs)} to ${clock(report.untilMs)}: ${report.events} events`, ''];
  lines.push(report.failures.length === 0 ? 'What failed: no backend was marked down or ejected.' : `What failed (${report.failures.length}):`);
  for (const failure of report.failures) {
    lines.push(`  pool ${failure.pool}, backend ${failure.backend}: ${failure.cause}`);
    lines.push(`    began ${clock(failure.beganAtMs)}, detected ${clock(failure.detectedAtMs)} (after ${duration(failure.detectionMs)}), traffic moved away after ${duration(failure.trafficMovedAfterMs)}`);
    lines.push(failure.recoveredAtMs === undefined
      ? `    not recovered by the end of the window (${duration(failure.outageMs)} so far)`
      : `    recovered ${clock(failure.recoveredAtMs)} (out for ${duration(failure.outageMs)})`);
  }
  lines.push('');
  lines.push(report.episodes.length === 0 ? 'Pools: no panic, no shedding.' : 'Pools:');
  for (const episode of report.episodes) {
    const what = episode.kind === 'panic' ? 'in panic (too few healthy backends: spreading over all of them)' : 'shedding load';
    lines.push(`  pool ${episode.pool} ${what} from ${clock(episode.startedAtMs)} ${episode.endedAtMs === undefined ? `until past the window (${duration(episode.durationMs)} so far)` : `for ${duration(episode.durationMs)}`}`);
  }
  lines.push('');
  const actions = Object.entries(report.autoscaler.actions).map(([kind, count]) => `${kind} x${count}`).join(', ');
  lines.push(`Autoscaler: ${report.autoscaler.decisions} decisions, ${report.autoscaler.changes.length} changed the instance count${actions === '' ? '' : `; actions: ${actions}`}`);
  for (const change of report.autoscaler.changes) lines.push(`  ${clock(change.atMs)} pool ${change.pool}: ${change.from} -> ${change.to}: ${change.summary}`);
  lines.push('');
  lines.push(report.operatorActions.length === 0 ? 'Operators: nothing.' : 'Operators:');
  for (const action of report.operatorActions) lines.push(`  ${clock(action.atMs)} ${action.kind}${action.pool === undefined ? '' : ` pool ${action.pool}`}: ${action.summary}`);
  return `${lines.join('\n')}\n`;
}
