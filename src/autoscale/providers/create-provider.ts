// The provider a pool's validated `autoscale.provider` section asks for.

import type { AutoscaleSection } from '../../control/autoscale-config.ts';
import { ExecProvider } from './exec-provider.ts';
import { ProcessProvider } from './process-provider.ts';
import type { Provider, ProviderEvent } from './provider.ts';

export interface ProviderContext {
  pool: string;
  onEvent?: (event: ProviderEvent) => void;
  nowMs?: () => number;
}

export function createProvider(section: AutoscaleSection['provider'], context: ProviderContext): Provider {
  if ('process' in section) return new ProcessProvider({ ...section.process, ...context });
  return new ExecProvider({ ...section.exec, ...context });
}
