// `concord server`: runs one member of the coordination store, with etcd's flag names.

import { Option } from 'commander';
import type { Command } from 'commander';
import { ConfigError, SERVER_SETTINGS, resolveServerConfig, settingsFromFile, settingsFromFlags } from '../server/server-config.ts';
import { StoreServer } from '../server/store-server.ts';

function camelFlag(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

export function registerServerCommand(program: Command, setExitCode: (code: number) => void): void {
  const command = program
    .command('server')
    .description('Run a member of the coordination store (speaks the etcd v3 API; takes etcd\'s flag names).')
    .option('--config-file <path>', 'YAML config file; its server: section holds the same settings (flags win)');
  for (const spec of SERVER_SETTINGS) command.option(`--${spec.flag} <value>`, spec.description);
  // Deliberate defects, so `concord chaos` can prove it catches them; hidden from --help.
  command.addOption(new Option('--bug <name>', 'switch on a deliberate defect (testing only)').argParser(collect).hideHelp());
  command.action(async (options: Record<string, string | undefined> & { bug?: string[] }) => {
    const flags: Record<string, string | undefined> = {};
    for (const spec of SERVER_SETTINGS) flags[spec.key] = options[camelFlag(spec.flag)];
    let server: StoreServer;
    let removed: () => void = () => {};
    const whenRemoved = new Promise<void>((resolve) => {
      removed = resolve;
    });
    try {
      const config = resolveServerConfig(options.configFile ? settingsFromFile(options.configFile) : {}, settingsFromFlags(flags), options.bug ?? []);
      server = await StoreServer.start(config, { onRemoved: () => removed() });
    } catch (error) {
      const known = error instanceof ConfigError || String((error as { code?: unknown }).code ?? '').startsWith('CONCORD_E_');
      process.stderr.write(`concord server: ${known ? '' : 'unexpected error: '}${(error as Error).message}\n`);
      setExitCode(known ? 2 : 1);
      return;
    }
    await new Promise<void>((resolve) => {
      const shutdown = (signal: string) => {
        process.stderr.write(`concord server: ${signal} received, shutting down\n`);
        server.stop().then(resolve, (error: unknown) => {
          process.stderr.write(`concord server: error while stopping: ${(error as Error).message}\n`);
          setExitCode(1);
          resolve();
        });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      void whenRemoved.then(resolve);
    });
  });
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
