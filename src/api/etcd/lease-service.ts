// etcd's Lease service (LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases) over
// a Concord member. Grants and revokes are replicated commands; keep-alives and remaining TTLs are
// the leader's business (LeaseKeeper), because lease deadlines live only on the leader, as in etcd.
//
// As etcd, a member that does not lead forwards keep-alives and TimeToLive to the leader (over the
// peer transport, through ClusterAdmin.callLeader); without a leader within etcd's request timeout
// the request fails with "etcdserver: no leader" (UNAVAILABLE, so clients retry).
//
// Auth, as etcd: grants need nothing, a revoke needs write permission on the lease's keys (checked
// when applied), keep-alives and the lease list need nothing. TimeToLive with keys needs read
// permission on every attached key (etcd 3.4.26's fix for CVE-2023-32082; 3.4.23 let anyone list
// them); the leader checks it against the keys it lists, for the user named in the forwarded call.

import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { KvError, isKvError } from '../../kv/errors.ts';
import { LeaseIdGenerator, MAX_LEASE_TTL_SECONDS, checkLeaseId, leaseTimeToLive } from '../../kv/lease.ts';
import type { KvCommand, KvCommandResponse } from '../../kv/types.ts';
import { LeaseKeeper } from '../../server/lease-keeper.ts';
import { MemberError } from '../../server/raft-member.ts';
import { toServiceError } from './grpc-errors.ts';
import type { LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest } from './proto-loader.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { bigintFromWire, header } from './wire.ts';
import type { AuthGate, CallIdentity } from './auth-gate.ts';
import type { Requester } from '../../kv/auth/auth-types.ts';
import { ANONYMOUS_REQUESTER } from '../../kv/auth/auth-types.ts';
import { unary } from './unary-handler.ts';

/** etcd's request timeout is 5 s plus two election timeouts (ServerConfig.ReqTimeout). */
const REQUEST_TIMEOUT_BASE_MS = 5_000;

export interface LeaseServiceOptions {
  /** How often the leader looks for expired leases; default LEASE_EXPIRY_CHECK_INTERVAL_MS (500). */
  expiryCheckIntervalMs?: number;
}

type KeepAliveCall = ServerDuplexStream<LeaseKeepAliveRequest, unknown>;


/** A lease ID from the wire: any int64 (etcd allows negative IDs too; 0 means "pick one"). */
function leaseIdFromWire(value: LeaseGrantRequest['ID'] | undefined): bigint {
  const id = bigintFromWire(value, 'ID');
  checkLeaseId(id);
  return id;
}

/**
 * The requested TTL as etcd's lessor judges it: above MAX_LEASE_TTL_SECONDS is "too large lease
 * TTL" however large (not a wire range error), and anything below the minimum is raised, so a
 * negative TTL becomes 0 here and the minimum in the state machine.
 */
function ttlFromWire(value: LeaseGrantRequest['TTL'] | undefined): number {
  const ttl = bigintFromWire(value, 'TTL');
  if (ttl > BigInt(MAX_LEASE_TTL_SECONDS)) throw new KvError('CONCORD_E_LEASE_TTL_TOO_LARGE', `${ttl} s`);
  return ttl < 0n ? 0 : Number(ttl);
}

export function leaseService(context: EtcdServiceContext, auth: AuthGate, options: LeaseServiceOptions = {}): UntypedServiceImplementation {
  const { backend, headers } = context;
  const keeper = new LeaseKeeper(context, { expiryCheckIntervalMs: options.expiryCheckIntervalMs });
  const ids = new LeaseIdGenerator(context.member.memberId, context.clock.nowMs());
  const requestTimeoutMs = REQUEST_TIMEOUT_BASE_MS + 2 * context.config.electionTimeoutMs;
  const keepAliveStreams = new Set<KeepAliveCall>();
  keeper.start();
  context.onStop(() => {
    keeper.stop();
    const stopped = toServiceError(new MemberError('CONCORD_E_STOPPED', 'the member is shutting down'));
    for (const call of keepAliveStreams) call.emit('error', stopped);
    keepAliveStreams.clear();
  });

  const propose = async <T extends KvCommandResponse['type']>(command: KvCommand, type: T, caller: CallIdentity) => {
    const response = await backend.write(command, auth.requester(caller));
    if (response.type !== type) throw new Error(`a ${command.type} command answered with a ${response.type} response`);
    return response as Extract<KvCommandResponse, { type: T }>;
  };

  /** Waits (bounded) for this member to track lease deadlines, as etcd waits for a leader to forward to. */
  const awaitPrimary = async () => {
    if (!(await keeper.waitUntilPrimary(requestTimeoutMs))) throw keeper.notPrimaryError();
  };

  /** On the leader: etcd answers a keep-alive for an unknown or expired lease with TTL 0, not an error. */
  const renewHere = async (id: bigint): Promise<number> => {
    await awaitPrimary();
    try {
      return keeper.renew(id);
    } catch (error) {
      if (isKvError(error, 'CONCORD_E_LEASE_NOT_FOUND')) return 0;
      throw error;
    }
  };

  /** On the leader: TimeToLive from its deadlines and its state, in wire form (it may travel to a follower). */
  const timeToLiveHere = async (id: bigint, keys: boolean, user: string) => {
    await awaitPrimary();
    const machine = context.stateMachine();
    if (keys) {
      // The token was checked where the call arrived; the user's permissions are checked here, on the keys listed.
      const requester: Requester = user === '' ? ANONYMOUS_REQUESTER : { kind: 'client', user, authRevision: machine.auth.revision };
      for (const key of machine.lease(id)?.keys ?? []) machine.auth.checkRead(requester, key);
    }
    const answer = leaseTimeToLive(machine.lease(id), keeper.remainingTtlSeconds(id), { id, keys }, machine.currentRevision);
    return {
      header: header(headers, answer.header.revision),
      ID: answer.id.toString(),
      TTL: String(answer.ttl),
      grantedTTL: String(answer.grantedTtl),
      keys: answer.keys.map((key) => Buffer.from(key).toString('base64')),
    };
  };

  context.cluster.handle('leaseKeepAlive', async (params) => ({ ttl: await renewHere(BigInt((params as { id: string }).id)) }));
  context.cluster.handle('leaseTimeToLive', async (params) => {
    const { id, keys, user } = params as { id: string; keys: boolean; user?: string };
    return timeToLiveHere(BigInt(id), keys, user ?? '');
  });

  /**
   * --max-leases is checked where the grant arrives, before it is proposed, not when it is applied:
   * members may run with different limits, and an applied command must have the same outcome on
   * every member. Grants in flight at the same moment can therefore pass the bound by their number.
   */
  const refuseOverLeaseLimit = () => {
    const { maxLeases } = context.config.limits;
    const leases = context.stateMachine().leaseCount;
    if (leases < maxLeases) return;
    context.metrics.refused.inc({ limit: 'max-leases' });
    throw new KvError('CONCORD_E_LEASE_LIMIT', `${leases} leases exist (--max-leases ${maxLeases}); share a lease between the keys of a session, revoke unused ones, or raise the limit`);
  };

  const renew = async (id: bigint): Promise<number> => {
    const { ttl } = (await context.cluster.callLeader('leaseKeepAlive', { id: id.toString() })) as { ttl: number };
    return ttl;
  };

  return {
    LeaseGrant: unary(async (wire: LeaseGrantRequest, caller) => {
      const ttl = ttlFromWire(wire.TTL);
      let id = leaseIdFromWire(wire.ID);
      refuseOverLeaseLimit();
      // etcd's leader picks the ID of a grant that asks for 0; it travels in the command.
      if (id === 0n) id = ids.next();
      const { response } = await propose({ type: 'leaseGrant', request: { id, ttl } }, 'leaseGrant', caller);
      return { header: header(headers, response.header.revision), ID: response.id.toString(), TTL: String(response.ttl), error: '' };
    }),

    LeaseRevoke: unary(async (wire: LeaseRevokeRequest, caller) => {
      const id = leaseIdFromWire(wire.ID);
      const { response } = await propose({ type: 'leaseRevoke', request: { id } }, 'leaseRevoke', caller);
      keeper.revoked(id);
      return { header: header(headers, response.header.revision) };
    }),

    LeaseTimeToLive: unary(async (wire: LeaseTimeToLiveRequest, caller) => {
      const id = leaseIdFromWire(wire.ID);
      // The token is checked here; only the user it stands for travels to the leader.
      const requester = wire.keys ? auth.requester(caller) : ANONYMOUS_REQUESTER;
      const user = requester.kind === 'client' ? requester.user : '';
      if (wire.keys && auth.store.enabled && user === '') throw new KvError('CONCORD_E_AUTH_USER_EMPTY');
      const answer = (await context.cluster.callLeader('leaseTimeToLive', { id: id.toString(), keys: wire.keys, user })) as { keys: string[] };
      return { ...answer, keys: answer.keys.map((key) => Buffer.from(key, 'base64')) };
    }),

    LeaseLeases: unary(async () => {
      const machine = context.stateMachine();
      const ids = keeper.byExpiry(machine.leaseIds());
      return { header: header(headers, machine.currentRevision), leases: ids.map((id) => ({ ID: id.toString() })) };
    }),

    LeaseKeepAlive: (call: KeepAliveCall) => {
      keepAliveStreams.add(call);
      let open = true;
      const close = () => {
        open = false;
        keepAliveStreams.delete(call);
      };
      call.on('data', (request: LeaseKeepAliveRequest) => {
        // One renewal at a time: answers leave in request order, and requests are read no faster
        // than answers are written (the stream's backpressure bounds both).
        call.pause();
        const answer = async () => {
          const id = leaseIdFromWire(request.ID);
          // As etcd, the header is taken before renewing, so a keep-alive never reports a revision
          // after that of the lease's revoke.
          const revision = context.stateMachine().currentRevision;
          const ttl = await renew(id);
          return { header: header(headers, revision), ID: id.toString(), TTL: String(ttl) };
        };
        answer().then(
          (response) => {
            if (!open) return;
            if (call.write(response)) call.resume();
            else call.once('drain', () => call.resume());
          },
          (error: unknown) => {
            if (!open) return;
            close();
            call.emit('error', toServiceError(error));
          },
        );
      });
      // The client closed its side: etcd ends the stream with OK once the last answer is out.
      call.on('end', () => {
        if (!open) return;
        close();
        call.end();
      });
      call.on('cancelled', close);
      call.on('close', close);
      call.on('error', close);
    },
  };
}
