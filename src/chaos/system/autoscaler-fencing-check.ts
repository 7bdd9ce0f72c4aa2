// At most one autoscaler acts at any moment, judged from the store's history. An accepted action
// is a launch or terminate whose intent (the action record, written in a transaction fenced by the
// leader's election key) or outcome (the timeline's launch/terminate event, written in a fenced
// transaction after the provider accepted the request) reached the store; each carries the
// fencing token of the leader that acted. In commit (revision) order:
// * tokens never go backwards: once a newer leader acted, no older one may act again;
// * maxConcurrentAutoscalers: the most leaders whose first-to-last action spans overlap.
// With fencing working this is 1; two leaders acting in the same period make it 2.
//
// Pure: no I/O; the caller passes the history (store-history.ts).

import type { StoreChange } from './store-history.ts';

export interface AcceptedAction {
  revision: bigint;
  kind: 'launch' | 'terminate';
  requestId: string;
  fencingToken: bigint;
  /** The leader's name, when the record says it. */
  leader?: string;
  /** 'intent' (the action record) or 'outcome' (the timeline event). */
  stage: 'intent' | 'outcome';
}

export interface FencingVerdict {
  actions: number;
  leaders: number;
  maxConcurrentAutoscalers: number;
  /** Accepted actions whose token is older than one accepted before them. */
  tokenRegressions: string[];
}

const ACTION_KEY = /^\/concord\/autoscale\/pools\/[^/]+\/actions\/(.+)$/;
const EVENT_KEY = /^\/concord\/events\//;

/** The accepted launches and terminates in the history, in revision order. */
export function acceptedActions(history: readonly StoreChange[]): AcceptedAction[] {
  const actions: AcceptedAction[] = [];
  for (const change of history) {
    if (change.type !== 'put') continue;
    if (ACTION_KEY.test(change.key)) {
      const record = parseJson(change.value) as { kind?: unknown; requestId?: unknown; fencingToken?: unknown; leader?: unknown } | undefined;
      if ((record?.kind === 'launch' || record?.kind === 'terminate') && typeof record.requestId === 'string' && typeof record.fencingToken === 'string') {
        actions.push({ revision: change.revision, kind: record.kind, requestId: record.requestId, fencingToken: BigInt(record.fencingToken), ...(typeof record.leader === 'string' ? { leader: record.leader } : {}), stage: 'intent' });
      }
    } else if (EVENT_KEY.test(change.key)) {
      const event = parseJson(change.value) as { source?: unknown; kind?: unknown; by?: unknown; data?: { requestId?: unknown; fencingToken?: unknown } } | undefined;
      if (event?.source !== 'autoscaler' || (event.kind !== 'launch' && event.kind !== 'terminate')) continue;
      const { requestId, fencingToken } = event.data ?? {};
      if (typeof requestId !== 'string' || typeof fencingToken !== 'string') continue;
      actions.push({ revision: change.revision, kind: event.kind, requestId, fencingToken: BigInt(fencingToken), ...(typeof event.by === 'string' ? { leader: event.by } : {}), stage: 'outcome' });
    }
  }
  return actions.sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
}

export function checkFencing(actions: readonly AcceptedAction[]): FencingVerdict {
  const tokenRegressions: string[] = [];
  let highest: AcceptedAction | undefined;
  const spans = new Map<bigint, { first: bigint; last: bigint }>();
  for (const action of actions) {
    if (highest !== undefined && action.fencingToken < highest.fencingToken) {
      tokenRegressions.push(`${action.stage} of ${action.kind} ${action.requestId} at revision ${action.revision} carries fencing token ${action.fencingToken}` +
        ` (${action.leader ?? 'unknown leader'}), older than token ${highest.fencingToken} (${highest.leader ?? 'unknown leader'}) accepted at revision ${highest.revision}`);
    }
    if (highest === undefined || action.fencingToken > highest.fencingToken) highest = action;
    const span = spans.get(action.fencingToken);
    if (span === undefined) spans.set(action.fencingToken, { first: action.revision, last: action.revision });
    else span.last = action.revision;
  }
  return { actions: actions.length, leaders: spans.size, maxConcurrentAutoscalers: maxOverlap([...spans.values()]), tokenRegressions };
}

/** The most spans [first, last] that share a revision. */
function maxOverlap(spans: readonly { first: bigint; last: bigint }[]): number {
  const points = spans.flatMap((span) => [{ at: span.first, delta: 1 }, { at: span.last, delta: -1 }]);
  // At one revision, openings count before closings: spans touching at a revision overlap there.
  points.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : b.delta - a.delta));
  let open = 0;
  let max = 0;
  for (const point of points) {
    open += point.delta;
    max = Math.max(max, open);
  }
  return max;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
