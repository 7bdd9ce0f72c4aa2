// No leaked or orphaned instances. Every instance process the run saw (the OS view: processes
// carrying the run's marker, instance-processes.ts; an instance is an id and a pid, since a new
// leader's provider may reuse an id) is accounted for at the end:
//   launched = running + terminated
// where running are the instance processes alive at the end and terminated those that are gone
// (stopped by the autoscaler, killed by the run, or dead with the member that started them: the
// process provider's instances die with their leader, by design). Accepted launches (the
// timeline's launch events) are reported next to it. Then:
// * leaked: an instance process alive at the end that no instance record names (nobody manages
//   it: it would run forever), or one still alive after every member was stopped;
// * orphaned records: an instance record at the end whose process is gone (the autoscaler
//   counts capacity that does not exist).
//
// Pure: no I/O.

export interface InstanceProcessView {
  instanceId: string;
  pid: number;
}

export interface InstanceAccountingInput {
  /** Every instance process seen during the run. */
  seenProcesses: readonly InstanceProcessView[];
  /** Instance processes alive at the end, members still running. */
  runningAtEnd: readonly InstanceProcessView[];
  /** Instance ids recorded in the store at the end. */
  recordedAtEnd: readonly string[];
  /** Instance processes alive after every member was stopped. */
  survivorsAfterStop: readonly InstanceProcessView[];
}

export interface InstanceAccounting {
  /** Instance processes seen (id and pid). */
  launched: number;
  running: number;
  terminated: number;
  leakedInstances: number;
  orphanedRecords: number;
  problems: string[];
}

export function accountInstances(input: InstanceAccountingInput): InstanceAccounting {
  const processKey = (view: InstanceProcessView) => `${view.instanceId}#${view.pid}`;
  const launched = new Set([...input.seenProcesses, ...input.runningAtEnd].map(processKey));
  const runningProcesses = new Set(input.runningAtEnd.map(processKey));
  const running = new Set(input.runningAtEnd.map((view) => view.instanceId));
  const recorded = new Set(input.recordedAtEnd);
  const problems: string[] = [];
  const unmanaged = [...running].filter((id) => !recorded.has(id));
  for (const id of unmanaged) problems.push(`leaked instance ${id}: its process runs but no instance record names it`);
  const survivors = input.survivorsAfterStop.filter((view) => !unmanaged.includes(view.instanceId));
  for (const view of survivors) problems.push(`leaked instance ${view.instanceId}: pid ${view.pid} outlived every member`);
  const orphaned = [...recorded].filter((id) => !running.has(id));
  for (const id of orphaned) problems.push(`orphaned record ${id}: the store records the instance, its process is gone`);
  const terminated = [...launched].filter((key) => !runningProcesses.has(key)).length;
  return { launched: launched.size, running: runningProcesses.size, terminated, leakedInstances: unmanaged.length + survivors.length, orphanedRecords: orphaned.length, problems };
}
