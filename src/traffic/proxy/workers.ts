// Several worker processes sharing the listen port. (Filled in below.)

import type { ConcordConfig } from '../../control/config.ts';

export async function runProxyWorkers(config: ConcordConfig): Promise<number> {
  process.stderr.write(`concord proxy: proxy.workers ${config.proxy.workers} is not supported yet; use 1\n`);
  return 2;
}
