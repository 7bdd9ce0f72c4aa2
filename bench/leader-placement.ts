// Puts a cluster's leader on its first member before a measurement, the same way for etcd and Concord.
//
// Why: the load generator gives its first connection to the first endpoint, and at 1 and 64 clients
// that is the only connection. A write through a follower costs a forward to the leader and a wait
// for the commit to come back, so whichever member won the (random) first election decided half of
// a run's latency. Placing the leader removes that coin toss from the comparison: both systems are
// measured with their first member leading, and the run records where the leader was before.
//
// It uses the etcd v3 API both systems serve: Maintenance.Status on every member (member ID and the
// leader it sees) and Maintenance.MoveLeader sent to the leader.

import { credentials, type CallOptions, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadEtcdProtos } from '../src/api/etcd/proto-loader.ts';
import { delay } from '../test/support/child-processes.ts';

const REQUEST_TIMEOUT_MS = 2_000;
/** A move waits for the target to catch up and win; etcd's own bound for a transfer is an election timeout. */
const PLACEMENT_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 100;

export interface LeaderPlacement {
  /** 1-based member index the leader was on before the placement (the target: nothing had to move). */
  leaderBefore: number;
}

interface StatusAnswer {
  header: { member_id: string };
  leader: string;
}

interface MaintenanceClient extends Client {
  Status(request: object, options: CallOptions, callback: (error: ServiceError | null, answer?: StatusAnswer) => void): void;
  MoveLeader(request: { targetID: string }, options: CallOptions, callback: (error: ServiceError | null) => void): void;
}

/** endpoints: the members' host:port, in member order. Throws when the leader cannot be placed in time. */
export function placeLeaderOnFirstMember(endpoints: readonly string[]): Promise<LeaderPlacement> {
  return placeLeaderOn(endpoints, 0);
}

/** Moves the leadership to the member at `target` (0-based) of `endpoints`, and waits until it leads. */
export async function placeLeaderOn(endpoints: readonly string[], target: number): Promise<LeaderPlacement> {
  const constructor = loadEtcdProtos().clients.Maintenance;
  const clients = endpoints.map((endpoint) => new constructor(endpoint, credentials.createInsecure()) as unknown as MaintenanceClient);
  try {
    const deadline = Date.now() + PLACEMENT_TIMEOUT_MS;
    let leaderBefore: number | undefined;
    let lastProblem = 'no answer yet';
    while (Date.now() < deadline) {
      const statuses = await Promise.all(clients.map((client) => status(client).catch((error: Error) => error)));
      const wanted = statuses[target]!;
      const leaderIndex = wanted instanceof Error ? -1 : statuses.findIndex((answer) => !(answer instanceof Error) && answer.header.member_id === wanted.leader);
      if (wanted instanceof Error || leaderIndex < 0) {
        lastProblem = wanted instanceof Error ? `member ${target + 1}: ${wanted.message}` : `no member is the leader member ${target + 1} sees`;
      } else {
        leaderBefore ??= leaderIndex + 1;
        if (leaderIndex === target) return { leaderBefore };
        const moved = await moveLeader(clients[leaderIndex]!, wanted.header.member_id, deadline).catch((error: Error) => error);
        if (moved instanceof Error) lastProblem = `MoveLeader: ${moved.message}`;
      }
      await delay(POLL_INTERVAL_MS);
    }
    throw new Error(`could not put the leader on member ${target + 1} within ${PLACEMENT_TIMEOUT_MS} ms (${lastProblem})`);
  } finally {
    for (const client of clients) client.close();
  }
}

function status(client: MaintenanceClient): Promise<StatusAnswer> {
  return new Promise((resolve, reject) => {
    client.Status({}, { deadline: Date.now() + REQUEST_TIMEOUT_MS }, (error, answer) => (error || !answer ? reject(error ?? new Error('empty answer')) : resolve(answer)));
  });
}

/** deadlineMs: the placement's own, so a slow move cannot outlast it. */
function moveLeader(client: MaintenanceClient, targetId: string, deadlineMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    client.MoveLeader({ targetID: targetId }, { deadline: deadlineMs }, (error) => (error ? reject(error) : resolve()));
  });
}
