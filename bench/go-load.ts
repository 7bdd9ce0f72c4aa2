// The store benchmark's two load generators, and the Go one's build.
//
// * `go` (default): bench/go-load/main.go, on etcd's own Go client (clientv3), the client etcd's
//   `benchmark` tool uses. It costs about 30 µs of CPU per request on this machine.
// * `node`: bench/grpc-load.ts, on @grpc/grpc-js. It costs about 130 µs per request, so at 1000
//   clients on two cores it saturates its core first and both systems get only what is left of the
//   other: the benchmark then measures the generator, not the server.
//
// Both take the same LoadSpec and print the same LoadResult, histogram buckets included.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const LOAD_GENERATORS = ['go', 'node'] as const;
export type LoadGenerator = (typeof LOAD_GENERATORS)[number];

const BUILD_SCRIPT = fileURLToPath(new URL('../scripts/build-go-load.sh', import.meta.url));
const GO_LOAD_BINARY = fileURLToPath(new URL('../.build/go-load', import.meta.url));
const BUILD_TIMEOUT_MS = 300_000;
let built = false;

/**
 * Builds the Go generator if its binary is missing or older than its source, once per process
 * (every run asks for it); returns the binary's path. The build script's error names what to install.
 */
export function buildGoLoad(): string {
  if (built) return GO_LOAD_BINARY;
  const build = spawnSync('bash', [BUILD_SCRIPT], { encoding: 'utf8', timeout: BUILD_TIMEOUT_MS });
  if (build.error !== undefined) throw new Error(`cannot build the Go load generator: ${build.error.message}`);
  if (build.status !== 0) {
    throw new Error(`cannot build the Go load generator (scripts/build-go-load.sh exited with ${build.status}):\n${build.stderr.trim()}`);
  }
  built = true;
  return GO_LOAD_BINARY;
}
