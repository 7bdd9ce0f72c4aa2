// The etcd v3 services a member serves. Each service is a function of the member's context and of
// its AuthGate, which all of them share (who is calling, and may they); this is the one place that
// lists them.

import type { Server, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadEtcdProtos } from './proto-loader.ts';
import type { EtcdServiceName } from './proto-loader.ts';
import type { EtcdServiceContext } from './service-context.ts';
import { kvService } from './kv-service.ts';
import { watchService } from './watch-service.ts';
import { leaseService } from './lease-service.ts';
import { clusterService } from './cluster-service.ts';
import { maintenanceService } from './maintenance-service.ts';
import { electionService } from './election-service.ts';
import { lockService } from './lock-service.ts';
import { authService } from './auth-service.ts';
import { AuthGate } from './auth-gate.ts';
import { awaitingTokenCatchUp } from './token-catch-up.ts';
import { withPutCodec } from './put-codec.ts';
import type { UnaryMethod } from './unary-fast-path.ts';

type ServiceFactory = (context: EtcdServiceContext, auth: AuthGate) => UntypedServiceImplementation;

const SERVICES: [EtcdServiceName, ServiceFactory][] = [
  ['KV', (context, auth) => kvService(context.backend, context.headers, auth, context.config.limits, context.metrics)],
  ['Watch', (context, auth) => watchService(context, auth, context.serviceOptions?.watch)],
  ['Lease', (context, auth) => leaseService(context, auth, context.serviceOptions?.lease)],
  ['Cluster', clusterService],
  ['Maintenance', maintenanceService],
  ['Auth', authService],
  ['Election', electionService],
  ['Lock', lockService],
];

/** The calls the unary fast path serves (unary-fast-path.ts): the whole KV service. */
const FAST_PATH_SERVICE: EtcdServiceName = 'KV';

/**
 * Registers every service with grpc-js, and returns the fast path's methods: the same definitions
 * (codecs) and handlers as registered.
 */
export function registerEtcdServices(server: Server, context: EtcdServiceContext): UnaryMethod[] {
  const protos = loadEtcdProtos();
  const auth = new AuthGate(context, { tokens: context.serviceOptions?.authTokens });
  const fastPathMethods: UnaryMethod[] = [];
  for (const [name, factory] of SERVICES) {
    // KV.Put is the write path's hot call: its messages skip the generic codec (see put-codec.ts).
    const definition = name === 'KV' ? withPutCodec(protos.services.KV) : protos.services[name];
    const implementation = awaitingTokenCatchUp(factory(context, auth), auth);
    server.addService(definition, implementation);
    if (name === FAST_PATH_SERVICE) fastPathMethods.push(...unaryMethods(definition, implementation));
  }
  return fastPathMethods;
}

function unaryMethods(definition: ServiceDefinition, implementation: UntypedServiceImplementation): UnaryMethod[] {
  return Object.entries(definition)
    .filter(([name, method]) => !method.requestStream && !method.responseStream && typeof implementation[name] === 'function')
    .map(([name, method]) => ({
      path: method.path,
      requestDeserialize: method.requestDeserialize,
      responseSerialize: method.responseSerialize,
      handler: implementation[name] as UnaryMethod['handler'],
    }));
}
