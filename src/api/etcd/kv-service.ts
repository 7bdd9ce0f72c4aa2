// etcd's KV service (Range, Put, DeleteRange, Txn, Compact) over a Concord member. Writes go
// through Raft; reads are linearizable by default (a ReadIndex barrier first) and served from the
// local state machine when the request asks for a serializable read, as in etcd.
//
// With auth on, a read is checked here, against this member's auth state once the barrier is
// passed (as etcd checks in its API layer); a write carries its requester into the log and is
// checked when applied (auth/command-authorization.ts).

import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { checkRangeRequest } from '../../kv/request-check.ts';
import { KvError } from '../../kv/errors.ts';
import type { KvCommand, KvCommandResponse, PutRequest, RangeRequest, RangeResponse } from '../../kv/types.ts';
import type { ServerMetrics } from '../../observe/server-metrics.ts';
import type { HeaderSource, WireDeleteRangeRequest, WireRangeRequest, WireTxnRequest, WireInt64 } from './wire.ts';
import {
  deleteRangeRequestFromWire,
  deleteRangeResponseToWire,
  header,
  numberFromWire,
  rangeRequestFromWire,
  rangeResponseToWire,
  txnRequestFromWire,
  txnResponseToWire,
} from './wire.ts';
import type { KvBackend } from './kv-backend.ts';
import { PutResponseEncoder } from './put-codec.ts';
import type { AuthGate, CallIdentity } from './auth-gate.ts';
import { unary } from './unary-handler.ts';


/** The response, checked to be of the command's type. */
function responseOfType<T extends KvCommandResponse['type']>(response: KvCommandResponse, type: T): Extract<KvCommandResponse, { type: T }> {
  if (response.type !== type) throw new Error(`a ${type} command answered with a ${response.type} response`);
  return response as Extract<KvCommandResponse, { type: T }>;
}

export function kvService(
  backend: KvBackend, headers: HeaderSource, auth: AuthGate, limits: { maxRangeKeys: number }, metrics: ServerMetrics,
): UntypedServiceImplementation {
  const { maxRangeKeys } = limits;
  const putResponses = new PutResponseEncoder(headers);
  const propose = async <T extends KvCommandResponse['type']>(command: KvCommand, type: T, caller: CallIdentity) =>
    responseOfType(await backend.write(command, auth.requester(caller)), type);
  /**
   * --max-range-keys: a Range that would return more keys is refused, not cut short. etcd marks a
   * cut-short result with more: true only when the client asked for a limit, and clients that sent
   * none (etcdctl get --prefix, most libraries' getAll) do not look at `more`: a silently truncated
   * list would be taken for the whole one (a controller would think the missing keys deleted). A
   * clear error makes them page with `limit` instead. Count-only ranges return no keys and pass.
   */
  const rangeWithinLimit = (request: RangeRequest): RangeResponse => {
    const requested = request.limit ?? 0;
    if (request.countOnly === true || (requested > 0 && requested <= maxRangeKeys)) return backend.range(request);
    // Asking for one key past the bound tells whether the result fits, without building all of it.
    const response = backend.range({ ...request, limit: maxRangeKeys });
    if (!response.more) return response;
    metrics.refused.inc({ limit: 'max-range-keys' });
    throw new KvError('CONCORD_E_RANGE_TOO_MANY_KEYS', `${response.count} keys match, over --max-range-keys ${maxRangeKeys}; ` +
      `send limit (at most ${maxRangeKeys}) and continue from the key after the last one received`);
  };
  return {
    Range: unary(async (wire: WireRangeRequest, caller) => {
      const request = rangeRequestFromWire(wire);
      // A malformed request is refused as such before permissions are looked at, as etcd does.
      checkRangeRequest(request);
      if (!request.serializable) await backend.readBarrier();
      auth.checkRead(caller, request.key, request.rangeEnd);
      return rangeResponseToWire(rangeWithinLimit(request), headers);
    }),
    // Put's messages have their own codec (put-codec.ts, installed by services.ts): the request
    // arrives decoded into the store's PutRequest and the response leaves as encoded bytes.
    // Not an async function: a put is the hot path, and this spares it two promises.
    Put: unary((request: PutRequest, caller) => backend.write({ type: 'put', request }, auth.requester(caller))
      .then((response) => putResponses.encode(responseOfType(response, 'put').response))),
    DeleteRange: unary(async (wire: WireDeleteRangeRequest, caller) => {
      const { response } = await propose({ type: 'deleteRange', request: deleteRangeRequestFromWire(wire) }, 'deleteRange', caller);
      return deleteRangeResponseToWire(response, headers);
    }),
    Txn: unary(async (wire: WireTxnRequest, caller) => {
      const { response } = await propose({ type: 'txn', request: txnRequestFromWire(wire) }, 'txn', caller);
      return txnResponseToWire(response, headers);
    }),
    Compact: unary(async (wire: { revision?: WireInt64; physical?: boolean }, caller) => {
      const revision = numberFromWire(wire.revision, 'revision');
      const { response } = await propose({ type: 'compact', request: { revision, physical: wire.physical ?? false } }, 'compact', caller);
      return { header: header(headers, response.header.revision) };
    }),
  };
}
