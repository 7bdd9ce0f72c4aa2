// The CoordStore contract against a real etcd (Debian's etcd-server, started by the test).

import { defineCoordStoreContract } from './coord-store-contract.ts';
import { defineCoordStoreAuthContract } from './coord-store-auth-contract.ts';
import { startEtcd } from '../compat/etcd-process.ts';

defineCoordStoreContract('etcd', async () => {
  const member = await startEtcd({ name: 'coord-contract' });
  return { endpoint: member.endpoint, stop: () => member.stop() };
});

defineCoordStoreAuthContract('etcd', async () => {
  const member = await startEtcd({ name: 'coord-auth-contract' });
  return { endpoint: member.endpoint, stop: () => member.stop() };
});
