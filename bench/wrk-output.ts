// Reads wrk's --latency report: requests/s and the 50th and 99th percentiles, in milliseconds.

function wrkMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) throw new Error(`cannot read wrk latency '${text}'`);
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

export function parseWrk(output: string): { rps: number; p50Ms: number; p99Ms: number } {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1]);
  const p50 = /^\s+50%\s+(\S+)/m.exec(output)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(output)?.[1];
  if (!Number.isFinite(rps) || p50 === undefined || p99 === undefined) throw new Error(`cannot read wrk output:\n${output}`);
  return { rps, p50Ms: wrkMs(p50), p99Ms: wrkMs(p99) };
}

