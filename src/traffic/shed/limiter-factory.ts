// Builds the configured limit algorithm. The adaptive ones start where Netflix's and Envoy's do
// unless initialLimit says otherwise: aimd and vegas at 20 (within the bounds), gradient at minLimit.

import type { Random } from '../../random/seeded-random.ts';
import { AimdLimiter } from './aimd-limiter.ts';
import { FixedLimiter, NoLimiter } from './fixed-limiter.ts';
import { GradientLimiter } from './gradient-limiter.ts';
import { clampLimit, type Limiter } from './limiter.ts';
import type { ShedSettings } from './shed-settings.ts';
import { VegasLimiter } from './vegas-limiter.ts';

/** Netflix's initial limit for AIMD and Vegas. */
export const NETFLIX_INITIAL_LIMIT = 20;

export function createLimiter(settings: ShedSettings, random: Random, nowMs: number): Limiter {
  const bounds = { minLimit: settings.minLimit, maxLimit: settings.maxLimit };
  switch (settings.algorithm) {
    case 'none':
      return new NoLimiter();
    case 'fixed':
      if (settings.fixed.limit === undefined) throw new RangeError('bug: algorithm fixed without fixed.limit (the schema requires it)');
      return new FixedLimiter(settings.fixed.limit);
    case 'aimd':
      return new AimdLimiter({ ...bounds, ...settings.aimd, initialLimit: settings.initialLimit ?? clampLimit(NETFLIX_INITIAL_LIMIT, bounds) });
    case 'vegas':
      return new VegasLimiter({ ...bounds, ...settings.vegas, initialLimit: settings.initialLimit ?? clampLimit(NETFLIX_INITIAL_LIMIT, bounds) }, random);
    case 'gradient':
      return new GradientLimiter({ ...bounds, ...settings.gradient, initialLimit: settings.initialLimit ?? settings.minLimit }, random, nowMs);
  }
}
