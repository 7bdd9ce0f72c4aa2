// What `concord controller --config FILE` reads from Concord's YAML configuration: each pool's
// name and its `autoscale:` section (src/control/autoscale-config.ts), and the control plane's
// `controlPlane: { autoscale: { hardMaxInstances } }`. Every other key belongs to the proxy's schema
// (src/control/config.ts, the full shared schema) and is not looked at here, so this reader keeps
// working as that schema grows; when it lands, this file becomes a call into it.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AutoscaleConfigError, autoscaledPoolProblem, formatPath, parseAutoscaleSection, parseControlPlaneSettings, toPolicyConfig, type AutoscaleSection, type ControlPlaneSettings } from '../../control/autoscale-config.ts';
import type { PolicyConfig } from '../policy/types.ts';
import { createProvider } from '../providers/create-provider.ts';
import { POOL_NAME_PATTERN } from '../state/keys.ts';
import type { PoolSetup } from './pool-period.ts';

/**
 * An exec provider's list comes from a tool (a cloud's API), which may not show an instance it has
 * just launched; the process provider's list is exact.
 */
export const EXEC_LIST_GRACE_MS = 30_000;

/** A larger configuration file is refused (it is certainly not a configuration). */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;

const fileSchema = z
  .object({
    controlPlane: z.unknown().optional(),
    pools: z.array(
      z.looseObject({
        name: z.string({ error: 'name must be a string' }).regex(POOL_NAME_PATTERN, "name must be letters, digits, '.', '_' or '-' (at most 63), starting with a letter or digit"),
        autoscale: z.unknown().optional(),
        backends: z.unknown().optional(),
      }),
      { error: 'pools must be a list of pools' },
    ),
  })
  .loose();

export interface AutoscaledPool {
  name: string;
  section: AutoscaleSection;
  config: PolicyConfig;
  /** A digest of the provider section: instances launched under another are refreshed. */
  launchVersion: string;
}

/** The launch configuration's version: the provider section's digest, so editing the command rolls the pool. */
export function launchVersionOf(section: AutoscaleSection): string {
  return createHash('sha256').update(JSON.stringify(section.provider)).digest('hex').slice(0, 12);
}

/** Validates a parsed configuration; throws AutoscaleConfigError listing every problem by path. */
export function autoscaledPools(raw: unknown): AutoscaledPool[] {
  const parsed = fileSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new AutoscaleConfigError(parsed.error.issues.map((issue) => `${formatPath('', issue.path) || '(top level)'}: ${issue.message}`));
  const problems: string[] = [];
  let settings: ControlPlaneSettings | undefined;
  try {
    settings = parseControlPlaneSettings(parsed.data.controlPlane);
  } catch (error) {
    if (!(error instanceof AutoscaleConfigError)) throw error;
    problems.push(...error.problems);
  }
  const names = new Set<string>();
  const pools: AutoscaledPool[] = [];
  parsed.data.pools.forEach((pool, index) => {
    if (names.has(pool.name)) problems.push(`pools[${index}].name: pool '${pool.name}' is defined twice`);
    names.add(pool.name);
    const mixed = autoscaledPoolProblem(pool);
    if (mixed !== undefined) problems.push(`pools[${index}].backends: ${mixed}`);
    if (pool.autoscale === undefined || settings === undefined) return;
    try {
      const section = parseAutoscaleSection(pool.autoscale, { hardMaxInstances: settings.autoscale.hardMaxInstances, path: `pools[${index}].autoscale` });
      pools.push({ name: pool.name, section, config: toPolicyConfig(pool.name, section, settings), launchVersion: launchVersionOf(section) });
    } catch (error) {
      if (!(error instanceof AutoscaleConfigError)) throw error;
      problems.push(...error.problems);
    }
  });
  if (problems.length === 0 && pools.length === 0) problems.push('pools: no pool has an autoscale: section, so there is nothing to control');
  if (problems.length > 0) throw new AutoscaleConfigError(problems);
  return pools;
}

export function readControllerConfig(file: string): AutoscaledPool[] {
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.byteLength > MAX_CONFIG_FILE_BYTES) throw new AutoscaleConfigError([`${file}: ${bytes.byteLength} bytes is over the ${MAX_CONFIG_FILE_BYTES}-byte limit for a configuration file`]);
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof AutoscaleConfigError) throw error;
    throw new AutoscaleConfigError([`${file}: cannot read it (${(error as Error).message})`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new AutoscaleConfigError([`${file}: not valid YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
  return autoscaledPools(raw);
}

/** The controller's view of a pool: the provider its section names, made fresh whenever needed. */
export function poolSetupOf(pool: AutoscaledPool): PoolSetup {
  return {
    name: pool.name,
    config: pool.config,
    launchVersion: pool.launchVersion,
    createProvider: (onEvent) => createProvider(pool.section.provider, { pool: pool.name, onEvent }),
    // A process provider's children die with the controller that started them.
    instancesDieWithController: 'process' in pool.section.provider,
    listGraceMs: 'process' in pool.section.provider ? 0 : EXEC_LIST_GRACE_MS,
  };
}
