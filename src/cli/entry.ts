// The process entry point: runs the CLI and sets the exit code. (bin/concord.js runs the compiled
// copy of this file; tests and developers may run it directly with Node 24.)

import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
