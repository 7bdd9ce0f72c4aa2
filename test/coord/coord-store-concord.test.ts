// The CoordStore contract against the embedded Concord store (a member in this process).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig, settingsFromFlags } from '../../src/server/server-config.ts';
import { StoreServer } from '../../src/server/store-server.ts';
import { QUIET_LOGGER } from '../support/store-member.ts';
import { defineCoordStoreContract } from './coord-store-contract.ts';
import { defineCoordStoreAuthContract } from './coord-store-auth-contract.ts';

defineCoordStoreContract('concord', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-coord-'));
  // etcd's test timing (as test/compat/etcd-process.ts starts etcd): 1 s is then the shortest lease
  // TTL; expired leases are looked for every 100 ms.
  const config = resolveServerConfig({}, settingsFromFlags({
    name: 'coord', dataDir: join(dir, 'coord'), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', heartbeatIntervalMs: '25', electionTimeoutMs: '250',
  }));
  const server = await StoreServer.start(config, { logger: QUIET_LOGGER, serviceOptions: { lease: { expiryCheckIntervalMs: 100 } } });
  return {
    endpoint: server.clientAddresses[0]!,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

defineCoordStoreAuthContract('concord', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'concord-coord-auth-'));
  const config = resolveServerConfig({}, settingsFromFlags({
    name: 'coord-auth', dataDir: join(dir, 'coord-auth'), listenClientUrls: 'http://127.0.0.1:0', listenPeerUrls: 'http://127.0.0.1:0', heartbeatIntervalMs: '25', electionTimeoutMs: '250',
  }));
  const server = await StoreServer.start(config, { logger: QUIET_LOGGER });
  return {
    endpoint: server.clientAddresses[0]!,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
