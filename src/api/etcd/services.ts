// The etcd v3 services a member serves. Each service is a function of the member's context; this
// is the one place that lists them.

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

type ServiceFactory = (context: EtcdServiceContext) => UntypedServiceImplementation;

const SERVICES: [EtcdServiceName, ServiceFactory][] = [
  ['KV', (context) => kvService(context.backend, context.headers)],
  ['Watch', (context) => watchService(context, context.serviceOptions?.watch)],
  ['Lease', (context) => leaseService(context, context.serviceOptions?.lease)],
  ['Cluster', clusterService],
  ['Maintenance', maintenanceService],
  ['Election', electionService],
  ['Lock', lockService],
];

export function registerEtcdServices(server: Server, context: EtcdServiceContext): void {
  const protos = loadEtcdProtos();
  for (const [name, factory] of SERVICES) server.addService(protos.services[name], factory(context));
}
