// The etcd v3 services a member serves. Each service is a function of the member's context and of
// its AuthGate, which all of them share (who is calling, and may they); this is the one place that
// lists them.

import type { Server, UntypedServiceImplementation } from '@grpc/grpc-js';
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
import { withPutCodec } from './put-codec.ts';

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

export function registerEtcdServices(server: Server, context: EtcdServiceContext): void {
  const protos = loadEtcdProtos();
  const auth = new AuthGate(context, { tokens: context.serviceOptions?.authTokens });
  for (const [name, factory] of SERVICES) {
    // KV.Put is the write path's hot call: its messages skip the generic codec (see put-codec.ts).
    const definition = name === 'KV' ? withPutCodec(protos.services.KV) : protos.services[name];
    server.addService(definition, factory(context, auth));
  }
}
