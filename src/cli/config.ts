// `concord config validate|schema|apply|get`: the one configuration file, checked, described for
// editors, written to the coordination store (where proxies and control-plane members pick it up
// live), and read back.
//
// Exit codes: 0 done; 2 the file (or a flag) is invalid, every problem listed by path; 1 the store
// is unreachable, refused the request, or another apply came in between (--expect-revision).

import { InvalidArgumentError, type Command } from 'commander';
import { configJsonSchema, type ConcordConfig } from '../control/config.ts';
import { readConfigFileText } from '../server/config-file.ts';
import { applyConfig, digestOf, validateConfigText } from '../control/config-store.ts';
import { CONFIG_KEY } from '../control/store-keys.ts';
import { actingOperator } from './operator.ts';
import { addStoreOptions, withStore, type StoreFlagValues } from './store-flags.ts';

function summary(config: ConcordConfig): string {
  const pools = config.pools.map((pool) => {
    const parts = [pool.autoscale === undefined ? `${pool.backends.length} backends` : `autoscaled ${pool.autoscale.min}-${pool.autoscale.max}`];
    if (pool.health !== undefined) parts.push(`health every ${pool.health.intervalMs} ms`);
    if (pool.shed !== undefined) parts.push(`shed ${pool.shed.algorithm}`);
    return `${pool.name} (${parts.join(', ')})`;
  });
  return `${config.pools.length} pool${config.pools.length === 1 ? '' : 's'}${pools.length > 0 ? `: ${pools.join('; ')}` : ''}`;
}

function revisionFlag(value: string): bigint {
  if (!/^\d{1,19}$/.test(value)) throw new InvalidArgumentError('--expect-revision must be a store revision (a whole number; 0: only when nothing is applied yet)');
  return BigInt(value);
}

export function registerConfigCommand(program: Command, setExitCode: (code: number) => void): void {
  const config = program.command('config').description(`Check, describe, apply and read the configuration (stored at ${CONFIG_KEY}).`);

  config.command('validate')
    .description('Check a configuration file; every problem is listed by path (exit 2 when there is one).')
    .argument('<file>', 'YAML configuration file')
    .action((file: string) => {
      try {
        const parsed = validateConfigText(readConfigFileText(file), file);
        process.stdout.write(`${file} is valid: ${summary(parsed)}\n`);
      } catch (error) {
        process.stderr.write(`concord config validate: ${(error as Error).message}\n`);
        setExitCode(2);
      }
    });

  config.command('schema')
    .description('Print the JSON Schema of the configuration file (for editors: yaml-language-server, VS Code).')
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });

  addStoreOptions(config.command('apply')
    .description('Validate a configuration file and write it to the store; proxies and control-plane members switch to it live. An invalid file is refused whole and the running configuration stays.')
    .argument('<file>', 'YAML configuration file')
    .option('--expect-revision <n>', 'apply only if the stored configuration is still at this revision (0: only if none is stored)', revisionFlag)
    .option('--by <who>', 'who applies, recorded in the event timeline (default: the store user of --user, else user@host; with --user the store user is recorded)')
    .option('--json', 'print the outcome as one JSON object'))
    .action(async (file: string, options: StoreFlagValues & { expectRevision?: bigint; by?: string; json?: boolean }) => {
      let text: string;
      try {
        text = readConfigFileText(file);
        validateConfigText(text, file);
      } catch (error) {
        process.stderr.write(`concord config apply: ${(error as Error).message}\nnothing was applied; the running configuration stays\n`);
        setExitCode(2);
        return;
      }
      await withStore('config apply', options, setExitCode, async (store) => {
        const applied = await applyConfig(store, text, { by: actingOperator(store, options.by), atMs: Date.now(), ...(options.expectRevision === undefined ? {} : { expectRevision: options.expectRevision }) });
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ key: CONFIG_KEY, revision: applied.revision.toString(), previousRevision: applied.previousRevision?.toString() ?? null, digest: applied.digest })}\n`);
        } else {
          const previous = applied.previousRevision === undefined ? 'first configuration' : `replaces revision ${applied.previousRevision}`;
          process.stdout.write(`applied ${file} as revision ${applied.revision} (${applied.digest}, ${previous}): ${summary(applied.config)}\n`);
        }
      });
    });

  addStoreOptions(config.command('get')
    .description('Print the applied configuration as it was written (or, with --json, with its revision and digest).')
    .option('--json', 'print {key, revision, digest, valid, problems?, text} as one JSON object'))
    .action(async (options: StoreFlagValues & { json?: boolean }) => {
      await withStore('config get', options, setExitCode, async (store) => {
        const kv = await store.get(CONFIG_KEY);
        if (kv === undefined) {
          process.stderr.write(`concord config get: no configuration is applied (${CONFIG_KEY} is empty); apply one with: concord config apply FILE\n`);
          setExitCode(1);
          return;
        }
        // Shown even when it does not validate (written with etcdctl): the readers refuse it and say so.
        let problems: string | undefined;
        try {
          validateConfigText(kv.value, `the configuration at revision ${kv.modRevision}`);
        } catch (error) {
          problems = (error as Error).message;
        }
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ key: CONFIG_KEY, revision: kv.modRevision.toString(), digest: digestOf(kv.value), valid: problems === undefined, ...(problems === undefined ? {} : { problems }), text: kv.value })}\n`);
          return;
        }
        process.stdout.write(kv.value.endsWith('\n') ? kv.value : `${kv.value}\n`);
        if (problems !== undefined) process.stderr.write(`concord config get: warning: ${problems}\nproxies and control-plane members refuse it and keep their running configuration\n`);
      });
    });
}
