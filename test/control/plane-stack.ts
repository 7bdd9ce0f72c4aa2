// A whole control-plane stack in this process for end-to-end tests: a real store member, a real
// ControlPlane (admin API on a free port), a real proxy fed from the store, and one real backend
// in pool `web` with active health checks and load shedding; the store is Concord's own or a real
// etcd. stop() removes everything.

import { stringify } from 'yaml';
import { applyConfig } from '../../src/control/config-store.ts';
import { validateConfig } from '../../src/control/config.ts';
import { ControlPlane } from '../../src/control/plane.ts';
import type { EtcdCoordStore } from '../../src/coord/etcd-coord-store.ts';
import { AccessLog } from '../../src/traffic/proxy/access-log.ts';
import { startAssembledProxy, type AssembledProxy } from '../../src/traffic/proxy/proxy-assembly.ts';
import { startTestStore, storeClient, type TestStore } from '../autoscale/controller-harness.ts';
import { startEtcd } from '../compat/etcd-process.ts';
import { LogSink, startBackend, type TestBackend } from '../traffic/proxy-harness.ts';

export interface PlaneStack {
  store: Pick<TestStore, 'endpoint' | 'stop'>;
  /** A client of the store for the test's own reads. */
  admin: EtcdCoordStore;
  plane: ControlPlane;
  proxy: AssembledProxy;
  backend: TestBackend;
  /** http://127.0.0.1:PORT of the proxy's traffic listener. */
  proxyUrl: string;
  stop(): Promise<void>;
}

/** `concord`: one Concord store member in this process; `etcd`: Debian's etcd in its own process. */
export async function startPlaneStack(options: { store?: 'concord' | 'etcd' } = {}): Promise<PlaneStack> {
  const store = options.store === 'etcd' ? await startEtcd({ name: 'etcd' }) : await startTestStore();
  const admin = storeClient(store.endpoint);
  const backend = await startBackend((_req, res) => res.end('ok'));
  const cleanups: (() => Promise<void> | void)[] = [() => store.stop(), () => backend.close(), () => admin.close()];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    await applyConfig(admin, stringify({
      controlPlane: { membership: { leaseTtlSeconds: 1 }, health: { refreshMs: 300, maxResultAgeMs: 3000 } },
      pools: [{
        name: 'web', backends: [{ address: backend.address }], health: { http: { path: '/healthz' }, intervalMs: 300, timeoutMs: 200 },
        shed: { algorithm: 'fixed', fixed: { limit: 100 } },
      }],
    }), { by: 'test', atMs: Date.now() });
    const planeClient = storeClient(store.endpoint);
    cleanups.push(() => planeClient.close());
    const plane = await ControlPlane.start({ store: planeClient, cluster: planeClient.cluster, name: 'member-a', admin: '127.0.0.1:0', configWaitMs: 3000 });
    cleanups.push(() => plane.stop());
    const proxyClient = storeClient(store.endpoint);
    cleanups.push(() => proxyClient.close());
    const proxy = await startAssembledProxy({
      config: validateConfig({ proxy: { listen: '127.0.0.1:0', admin: '127.0.0.1:0', name: 'proxy-1' } }), store: proxyClient, seed: 1,
      log: new AccessLog(new LogSink() as unknown as ConstructorParameters<typeof AccessLog>[0]), feed: { healthTickMs: 100, startTimeoutMs: 3000 },
    });
    cleanups.push(() => proxy.stop(500));
    return { store, admin, plane, proxy, backend, proxyUrl: `http://127.0.0.1:${proxy.proxy.trafficAddress.port}`, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
