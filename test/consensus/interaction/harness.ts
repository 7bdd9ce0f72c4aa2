// An interpreter for scripted Raft scenarios, modelled on etcd raft's "interaction" tests
// (rafttest/interaction_env*.go with testdata/*.txt). A script drives a small cluster of RaftNodes
// step by step — ticks, proposals, Ready handling, message delivery — and everything observable is
// printed, so a scenario file reads as an annotated protocol trace and doubles as a golden test.
//
// File layout (cockroachdb/datadriven, as etcd uses it):
//
//   # comment lines and blank lines, kept as they are
//   command arg key=value key=(1,2,3)
//   ----
//   expected output (never contains a blank line)
//   <blank line>
//
// Rewriting golden files: when the environment variable CONCORD_REWRITE=1 is set, or the test file
// runs with `--rewrite` in process.argv, each file is rewritten with the actual output instead of
// being compared. Review the diff (git diff test/consensus/testdata) before keeping it:
//
//   CONCORD_REWRITE=1 node --test test/consensus/scenarios.test.ts
//   node test/consensus/scenarios.test.ts --rewrite
//
// Besides the golden comparison, the harness checks three safety properties after every command
// and throws when one fails: at most one leader per term (Election Safety), every node applies the
// same entry at a given index (State Machine Safety), and no node's commit index goes backwards.
//
// Commands (IDs are node numbers; lists are written (1,2,3)):
//   add-nodes N [voters=(..)] [learners=(..)] [prevote=true] [checkquorum=true] [election=10]
//             [heartbeat=1] [max-size-per-msg=B] [max-inflight=N] [max-inflight-bytes=B]
//             [read-only=safe|lease]        adds N nodes; voters default to the new nodes' IDs
//   campaign ID                             the node starts an election now
//   tick ID N | tick-heartbeat ID           N ticks | heartbeatTick ticks
//   tick-election ID                        a leader: electionTick ticks (one CheckQuorum round);
//                                           others: tick until the randomized election timer fires
//   propose ID DATA                         proposes a normal entry
//   propose-conf-change ID add-node|add-learner|remove-node NODE [raw=true]
//   process-ready ID...                     persist, send, apply (incl. conf changes), advance
//   deliver-msgs [drop=(..)] [type=T] [ID...]  deliver in-flight messages to ID... (all when
//                                           none given); messages to drop=(..) are discarded
//   stabilize [ID...]                       process-ready and deliver until nothing is left to do
//   read-index ID CTX | transfer-leadership from=ID to=ID
//   compact ID INDEX                        snapshot at INDEX (must be applied), then compact
//   restart ID                              crash and restart from what the node persisted
//   isolate ID... | partition (..) (..) | heal   network partitions: they drop the messages sent
//                                           across them, and those in flight when delivered
//   status ID | raft-log ID | raft-state [ID...]

import { readFileSync, writeFileSync } from 'node:fs';
import { RaftNode } from '../../../src/consensus/raft-node.ts';
import type { RaftConfig } from '../../../src/consensus/raft.ts';
import type { ProgressState } from '../../../src/consensus/progress.ts';
import type { ReadOnlyOption } from '../../../src/consensus/read-only.ts';
import { MemoryStorage } from '../../../src/consensus/storage.ts';
import { decodeConfChange, encodeConfChange } from '../../../src/consensus/conf-change-codec.ts';
import type { ConfChangeType, Entry, Message, NodeId, Ready, Role, Snapshot } from '../../../src/consensus/types.ts';
import { NO_NODE, RaftError } from '../../../src/consensus/types.ts';
import { SeededRandom } from '../../../src/random/seeded-random.ts';

/** `stabilize` gives up (and fails the scenario) after this many rounds of Ready handling and delivery. */
export const MAX_STABILIZE_ROUNDS = 100;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

// -------------------------------------------------------------------------------------------------
// Formatting, close to etcd's raft.DescribeMessage / DescribeEntry / DescribeReady

function ids(list: readonly NodeId[]): string {
  return `(${list.map(String).join(' ')})`;
}

function quoted(bytes: Uint8Array): string {
  return JSON.stringify(textDecoder.decode(bytes));
}

export function describeEntry(entry: Entry): string {
  if (entry.type === 'normal') return `${entry.term}/${entry.index} EntryNormal ${quoted(entry.data)}`;
  try {
    const change = decodeConfChange(entry.data);
    return `${entry.term}/${entry.index} EntryConfChange ${change.type} ${change.nodeId}`;
  } catch {
    return `${entry.term}/${entry.index} EntryConfChange <undecodable ${entry.data.byteLength} bytes>`;
  }
}

function describeSnapshot(snapshot: Snapshot): string {
  const { index, term, confState } = snapshot.metadata;
  return `Index:${index} Term:${term} Voters:${ids(confState.voters)} Learners:${ids(confState.learners)}`;
}

export function describeMessage(m: Message): string {
  let text = `${m.from}->${m.to} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) text += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) text += ` Commit:${m.commit}`;
  if (m.entries.length > 0) text += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.context.byteLength > 0) text += ` Context:${quoted(m.context)}`;
  if (m.snapshot) text += ` Snapshot:[${describeSnapshot(m.snapshot)}]`;
  return text;
}

const STATE_NAMES: Record<Role, string> = {
  follower: 'StateFollower',
  preCandidate: 'StatePreCandidate',
  candidate: 'StateCandidate',
  leader: 'StateLeader',
};

const ROLE_WORDS: Record<Role, string> = {
  follower: 'follower',
  preCandidate: 'pre-candidate',
  candidate: 'candidate',
  leader: 'leader',
};

const PROGRESS_NAMES: Record<ProgressState, string> = {
  probe: 'StateProbe',
  replicate: 'StateReplicate',
  snapshot: 'StateSnapshot',
};

/** `dropped` marks messages that the network discards as they are sent (across a partition). */
function describeReady(ready: Ready, dropped: (m: Message) => boolean): string[] {
  const lines = [`Ready MustSync=${ready.mustSync}:`];
  if (ready.softState) lines.push(`Lead:${ready.softState.leader} State:${STATE_NAMES[ready.softState.role]}`);
  if (ready.hardState) {
    const { term, vote, commit } = ready.hardState;
    lines.push(`HardState Term:${term} Vote:${vote} Commit:${commit}`);
  }
  if (ready.snapshot) lines.push(`Snapshot ${describeSnapshot(ready.snapshot)}`);
  const section = (title: string, items: string[]): void => {
    if (items.length === 0) return;
    lines.push(`${title}:`, ...items);
  };
  section('Entries', ready.entries.map(describeEntry));
  section('CommittedEntries', ready.committedEntries.map(describeEntry));
  section('Messages', ready.messages.map((m) => describeMessage(m) + (dropped(m) ? ' (dropped: partitioned)' : '')));
  section('ReadStates', ready.readStates.map((read) => `Index:${read.index} Context:${quoted(read.context)}`));
  return lines;
}

/** Collects output lines; nested printers indent what they write under a header. */
class Printer {
  readonly lines: string[];
  private readonly indent: string;

  constructor(lines: string[] = [], indent = '') {
    this.lines = lines;
    this.indent = indent;
  }

  line(text: string): void {
    this.lines.push(this.indent + text);
  }

  nested(): Printer {
    return new Printer(this.lines, this.indent + '  ');
  }
}

// -------------------------------------------------------------------------------------------------
// Command lines

interface CommandLine {
  name: string;
  positional: string[];
  options: Map<string, string>;
}

/** Splits on spaces outside parentheses, so both `voters=(1,2,3)` and `voters=(1, 2, 3)` work. */
function tokenize(line: string): string[] {
  const tokens: string[] = [];
  let current = '';
  let depth = 0;
  for (const char of line) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (/\s/.test(char) && depth === 0) {
      if (current) tokens.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  if (current) tokens.push(current);
  return tokens;
}

function parseCommandLine(line: string): CommandLine {
  const [name, ...rest] = tokenize(line);
  if (name === undefined) throw new Error('empty command');
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (const token of rest) {
    const equals = token.indexOf('=');
    // A key=value option has a word key; anything else (e.g. a list) is positional.
    if (equals > 0 && /^[a-z-]+$/.test(token.slice(0, equals))) options.set(token.slice(0, equals), token.slice(equals + 1));
    else positional.push(token);
  }
  return { name, positional, options };
}

function parseInteger(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`${what} must be a non-negative integer, got "${text}"`);
  return Number(text);
}

function parseIdList(text: string): NodeId[] {
  const match = /^\((.*)\)$/.exec(text.trim());
  if (!match) throw new Error(`expected a list like (1,2,3), got "${text}"`);
  return match[1]!
    .split(/[\s,]+/)
    .filter((part) => part.length > 0)
    .map((part) => BigInt(parseInteger(part, 'node id')));
}

function parseBoolean(text: string, what: string): boolean {
  if (text !== 'true' && text !== 'false') throw new Error(`${what} must be true or false, got "${text}"`);
  return text === 'true';
}

// -------------------------------------------------------------------------------------------------
// Safety checks run after every command

class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** What was applied at each index, by whichever node applied it first. */
  private readonly appliedAt = new Map<number, { entry: string; by: NodeId }>();
  private readonly lastCommit = new Map<NodeId, number>();

  recordApplied(node: NodeId, entry: Entry): void {
    const described = describeEntry(entry);
    const first = this.appliedAt.get(entry.index);
    if (!first) this.appliedAt.set(entry.index, { entry: described, by: node });
    else if (first.entry !== described) {
      throw new Error(`State Machine Safety violated: ${node} applied ${described} but ${first.by} applied ${first.entry}`);
    }
  }

  recordSnapshot(node: NodeId, snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    const first = this.appliedAt.get(index);
    if (first && !first.entry.startsWith(`${term}/${index} `)) {
      throw new Error(`State Machine Safety violated: ${node} restored a snapshot at ${term}/${index} but ${first.by} applied ${first.entry}`);
    }
  }

  forgetCommit(node: NodeId): void {
    this.lastCommit.delete(node);
  }

  check(nodes: Iterable<SimNode>): void {
    for (const { id, node } of nodes) {
      const raft = node.raft;
      if (raft.role === 'leader') {
        const known = this.leaderOfTerm.get(raft.term);
        if (known === undefined) this.leaderOfTerm.set(raft.term, id);
        else if (known !== id) throw new Error(`Election Safety violated: ${known} and ${id} both led term ${raft.term}`);
      }
      const previous = this.lastCommit.get(id) ?? 0;
      if (raft.log.committed < previous) throw new Error(`${id}'s commit index went back from ${previous} to ${raft.log.committed}`);
      this.lastCommit.set(id, raft.log.committed);
    }
  }
}

// -------------------------------------------------------------------------------------------------
// The cluster

interface SimNode {
  id: NodeId;
  /** Nodes bootstrapped with disjoint memberships form independent clusters, checked separately. */
  cluster: number;
  /** Replaced on restart; the config is kept to build the new incarnation. */
  node: RaftNode;
  config: RaftConfig;
  storage: MemoryStorage;
  electionTick: number;
  heartbeatTick: number;
  /** A toy state machine: the payloads of the applied non-empty normal entries, in order. */
  stateMachine: string[];
}

/** What a node looks like from outside, to print what an action changed. */
interface Observation {
  role: Role;
  term: number;
  vote: NodeId;
  leadTransferee: NodeId;
  progress: Map<NodeId, ProgressState>;
}

function observe(sim: SimNode): Observation {
  const raft = sim.node.raft;
  const progress = new Map<NodeId, ProgressState>();
  for (const [id, pr] of raft.progress) progress.set(id, pr.state);
  return { role: raft.role, term: raft.term, vote: raft.vote, leadTransferee: raft.leadTransferee, progress };
}

function describeChanges(id: NodeId, before: Observation, after: Observation): string[] {
  const lines: string[] = [];
  if (before.role !== after.role || before.term !== after.term) {
    lines.push(`${id} became ${ROLE_WORDS[after.role]} at term ${after.term}`);
  }
  if (after.vote !== before.vote && after.vote !== NO_NODE && after.vote !== id) {
    lines.push(`${id} voted for ${after.vote} at term ${after.term}`);
  }
  if (before.role === 'leader' && after.role === 'leader' && before.term === after.term) {
    for (const [peer, state] of after.progress) {
      const old = before.progress.get(peer);
      if (peer !== id && old !== undefined && old !== state) {
        lines.push(`${id} progress of ${peer}: ${PROGRESS_NAMES[old]} -> ${PROGRESS_NAMES[state]}`);
      }
    }
  }
  if (after.leadTransferee !== before.leadTransferee) {
    if (after.leadTransferee !== NO_NODE) lines.push(`${id} is transferring leadership to ${after.leadTransferee}`);
    else if (after.role === 'leader') lines.push(`${id} abandoned the leadership transfer to ${before.leadTransferee}`);
  }
  return lines;
}

const CONF_CHANGE_TYPES: Record<string, ConfChangeType> = {
  'add-node': 'addNode',
  'add-learner': 'addLearner',
  'remove-node': 'removeNode',
};

export class InteractionEnv {
  private readonly nodes = new Map<NodeId, SimNode>();
  /** Messages sent and not yet delivered or dropped, in the order they were sent. */
  private inFlight: Message[] = [];
  /** Network partition: a message is delivered only between nodes of the same group. */
  private readonly groupOf = new Map<NodeId, number>();
  private nextGroup = 1;
  /** One safety checker per cluster: two clusters may well both have a leader in term 1. */
  private readonly safety = new Map<number, SafetyChecker>();

  /** Runs one command line and returns its output (never empty, never with blank lines). */
  handle(line: string): string {
    const command = parseCommandLine(line);
    const out = new Printer();
    this.dispatch(command, out);
    for (const [cluster, checker] of this.safety) {
      checker.check([...this.nodes.values()].filter((sim) => sim.cluster === cluster));
    }
    if (out.lines.length === 0) out.line('ok');
    return out.lines.map((text) => (text.trim() === '' ? '<blank>' : text)).join('\n');
  }

  private dispatch(command: CommandLine, out: Printer): void {
    const { name, positional, options } = command;
    const nodeArg = (index: number): SimNode => this.node(positional[index], name);
    switch (name) {
      case 'add-nodes':
        return this.addNodes(parseInteger(positional[0] ?? '', 'node count'), options, out);
      case 'campaign':
        return this.act(nodeArg(0), out, (sim) => sim.node.campaign());
      case 'tick':
        return this.tick(nodeArg(0), parseInteger(positional[1] ?? '', 'tick count'), out);
      case 'tick-heartbeat': {
        const sim = nodeArg(0);
        return this.tick(sim, sim.heartbeatTick, out);
      }
      case 'tick-election':
        return this.tickElection(nodeArg(0), out);
      case 'propose': {
        const data = positional[1];
        if (data === undefined) throw new Error('usage: propose ID DATA');
        return this.act(nodeArg(0), out, (sim) => {
          const outcome = sim.node.propose(textEncoder.encode(data));
          if (!outcome.accepted) out.line(`proposal dropped: ${outcome.reason}`);
        });
      }
      case 'propose-conf-change': {
        const type = CONF_CHANGE_TYPES[positional[1] ?? ''];
        if (!type) throw new Error('usage: propose-conf-change ID add-node|add-learner|remove-node NODE');
        const nodeId = BigInt(parseInteger(positional[2] ?? '', 'node id'));
        const change = { type, nodeId, context: new Uint8Array(0) };
        return this.act(nodeArg(0), out, (sim) => {
          // raw=true skips RaftNode's up-front refusals, to show what the core itself does with a
          // change that reaches it anyway (e.g. forwarded by a follower with an older view).
          const outcome = options.get('raw') === 'true'
            ? sim.node.raft.propose([{ term: 0, index: 0, type: 'confChange', data: encodeConfChange(change) }])
            : sim.node.proposeConfChange(change);
          if (!outcome.accepted) out.line(`proposal dropped: ${outcome.reason}`);
        });
      }
      case 'process-ready':
        for (const sim of this.selectNodes(positional, name)) {
          if (!this.processReady(sim, out)) {
            out.line(`> ${sim.id} handling Ready`);
            out.nested().line('<empty Ready>');
          }
        }
        return;
      case 'deliver-msgs':
        return this.deliverMsgs(positional, options, out);
      case 'stabilize':
        return this.stabilize(this.selectNodes(positional, name), out);
      case 'read-index': {
        const context = positional[1];
        if (context === undefined) throw new Error('usage: read-index ID CTX');
        return this.act(nodeArg(0), out, (sim) => sim.node.readIndex(textEncoder.encode(context)));
      }
      case 'transfer-leadership': {
        const from = this.node(options.get('from'), name);
        const to = BigInt(parseInteger(options.get('to') ?? '', 'to'));
        return this.act(from, out, (sim) => sim.node.transferLeadership(to));
      }
      case 'restart':
        return this.restart(nodeArg(0), out);
      case 'compact':
        return this.compact(nodeArg(0), parseInteger(positional[1] ?? '', 'index'), out);
      case 'isolate':
        for (const id of positional) this.groupOf.set(this.node(id, name).id, this.nextGroup++);
        return;
      case 'partition':
        this.groupOf.clear();
        for (const list of positional) {
          const group = this.nextGroup++;
          for (const id of parseIdList(list)) this.groupOf.set(id, group);
        }
        return;
      case 'heal':
        this.groupOf.clear();
        return;
      case 'status':
        return this.status(nodeArg(0), out);
      case 'raft-log':
        return this.raftLog(nodeArg(0), out);
      case 'raft-state':
        return this.raftState(this.selectNodes(positional, name), out);
      default:
        throw new Error(`unknown command "${name}"`);
    }
  }

  private safetyOf(sim: SimNode): SafetyChecker {
    return this.safety.get(sim.cluster)!;
  }

  private node(text: string | undefined, command: string): SimNode {
    if (text === undefined) throw new Error(`${command}: missing node id`);
    const sim = this.nodes.get(BigInt(parseInteger(text, 'node id')));
    if (!sim) throw new Error(`${command}: no node ${text}`);
    return sim;
  }

  private selectNodes(positional: string[], command: string): SimNode[] {
    if (positional.length === 0) return this.sortedNodes();
    return positional.map((text) => this.node(text, command));
  }

  private sortedNodes(): SimNode[] {
    return [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private connected(a: NodeId, b: NodeId): boolean {
    return (this.groupOf.get(a) ?? 0) === (this.groupOf.get(b) ?? 0);
  }

  /**
   * Runs an action against one node and prints what it changed (role, term, vote, the leader's
   * view of its followers). Expected failures (RaftError) are part of the behaviour under test and
   * are printed; anything else (e.g. a RaftBugError) aborts the scenario.
   */
  private act(sim: SimNode, out: Printer, action: (sim: SimNode) => void): void {
    const before = observe(sim);
    try {
      action(sim);
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
      out.line(`error: ${error.message}`);
    }
    for (const text of describeChanges(sim.id, before, observe(sim))) out.line(text);
  }

  private addNodes(count: number, options: Map<string, string>, out: Printer): void {
    const firstId = BigInt(this.nodes.size + 1);
    const newIds = Array.from({ length: count }, (_, i) => firstId + BigInt(i));
    const voters = options.has('voters') ? parseIdList(options.get('voters')!) : newIds;
    const learners = options.has('learners') ? parseIdList(options.get('learners')!) : [];
    const number = (key: string): number | undefined =>
      options.has(key) ? parseInteger(options.get(key)!, key) : undefined;
    const readOnly = options.get('read-only');
    if (readOnly !== undefined && readOnly !== 'safe' && readOnly !== 'lease') throw new Error(`bad read-only=${readOnly}`);
    // Nodes that name an existing node in their membership join its cluster; otherwise a new one starts.
    const existing = [...voters, ...learners].map((id) => this.nodes.get(id)).find((sim) => sim !== undefined);
    const cluster = existing?.cluster ?? this.safety.size + 1;
    if (!this.safety.has(cluster)) this.safety.set(cluster, new SafetyChecker());
    const electionTick = number('election') ?? 10;
    const heartbeatTick = number('heartbeat') ?? 1;
    for (const id of newIds) {
      const storage = MemoryStorage.bootstrap({ voters, learners });
      const config: RaftConfig = {
        id,
        electionTick,
        heartbeatTick,
        storage,
        preVote: options.has('prevote') ? parseBoolean(options.get('prevote')!, 'prevote') : false,
        checkQuorum: options.has('checkquorum') ? parseBoolean(options.get('checkquorum')!, 'checkquorum') : false,
        maxSizePerMsgBytes: number('max-size-per-msg'),
        maxInflightMsgs: number('max-inflight'),
        maxInflightBytes: number('max-inflight-bytes'),
        readOnlyOption: readOnly as ReadOnlyOption | undefined,
        // A fixed seed per node: election jitter differs between nodes but not between runs.
        random: new SeededRandom(Number(id)),
      };
      this.nodes.set(id, { id, cluster, node: new RaftNode(config), config, storage, electionTick, heartbeatTick, stateMachine: [] });
      out.line(`${id}: voters=${ids(voters)} learners=${ids(learners)} election=${electionTick} heartbeat=${heartbeatTick}`);
    }
  }

  private tick(sim: SimNode, count: number, out: Printer): void {
    this.act(sim, out, () => {
      for (let i = 0; i < count; i++) sim.node.tick();
    });
  }

  private tickElection(sim: SimNode, out: Printer): void {
    const raft = sim.node.raft;
    if (raft.role === 'leader') {
      this.tick(sim, sim.electionTick, out);
      return;
    }
    // The randomized timeout lies in [electionTick, 2*electionTick): stop as soon as it fires.
    const isVoteRequest = (m: Message): boolean => m.type === 'MsgVote' || m.type === 'MsgPreVote';
    this.act(sim, out, () => {
      const role = raft.role;
      const term = raft.term;
      const voteRequests = raft.msgs.filter(isVoteRequest).length;
      for (let i = 0; i < 2 * sim.electionTick; i++) {
        sim.node.tick();
        if (raft.role !== role || raft.term !== term || raft.msgs.filter(isVoteRequest).length > voteRequests) return;
      }
    });
  }

  /** Handles one Ready the way an application must; returns false when there was none. */
  private processReady(sim: SimNode, out: Printer): boolean {
    if (!sim.node.hasReady()) return false;
    out.line(`> ${sim.id} handling Ready`);
    const inner = out.nested();
    this.act(sim, inner, () => {
      const ready = sim.node.ready();
      const partitioned = (m: Message): boolean => !this.connected(m.from, m.to);
      for (const text of describeReady(ready, partitioned)) inner.line(text);
      // 1. Persist: snapshot, then entries, then the hard state.
      if (ready.snapshot) {
        sim.storage.applySnapshot(ready.snapshot);
        sim.stateMachine = JSON.parse(textDecoder.decode(ready.snapshot.data)) as string[];
        this.safetyOf(sim).recordSnapshot(sim.id, ready.snapshot);
      }
      sim.storage.append(ready.entries);
      if (ready.hardState) sim.storage.setHardState(ready.hardState);
      // 2. Send (only after persisting). A partition drops what is sent across it.
      this.inFlight.push(...ready.messages.filter((m) => !partitioned(m)));
      // 3. Apply.
      for (const entry of ready.committedEntries) this.apply(sim, entry, inner);
      sim.node.advance();
    });
    return true;
  }

  private apply(sim: SimNode, entry: Entry, out: Printer): void {
    this.safetyOf(sim).recordApplied(sim.id, entry);
    if (entry.type === 'confChange') {
      const change = decodeConfChange(entry.data);
      const confState = sim.node.applyConfChange(change);
      out.line(`${sim.id} applied ${change.type} ${change.nodeId}: voters=${ids(confState.voters)} learners=${ids(confState.learners)}`);
    } else if (entry.data.byteLength > 0) {
      sim.stateMachine.push(textDecoder.decode(entry.data));
    }
  }

  private deliverMsgs(positional: string[], options: Map<string, string>, out: Printer): void {
    const type = options.get('type');
    const matches = (m: Message): boolean => type === undefined || m.type === type;
    const drop = options.has('drop') ? parseIdList(options.get('drop')!) : [];
    if (drop.length > 0) {
      const dropped = this.inFlight.filter((m) => drop.includes(m.to) && matches(m));
      this.inFlight = this.inFlight.filter((m) => !dropped.includes(m));
      for (const m of dropped) out.line(`dropped: ${describeMessage(m)}`);
    }
    // With only drop=(..) given, nothing is delivered.
    if (positional.length === 0 && drop.length > 0) return;
    for (const sim of this.selectNodes(positional, 'deliver-msgs')) this.deliver(sim, matches, out);
  }

  /** Steps every in-flight message addressed to `sim` (that `matches`); returns false when there was none. */
  private deliver(sim: SimNode, matches: (m: Message) => boolean, out: Printer): boolean {
    const batch = this.inFlight.filter((m) => m.to === sim.id && matches(m));
    if (batch.length === 0) return false;
    this.inFlight = this.inFlight.filter((m) => !batch.includes(m));
    out.line(`> ${sim.id} receiving messages`);
    const inner = out.nested();
    for (const m of batch) {
      if (!this.connected(m.from, m.to)) {
        inner.line(`${describeMessage(m)} (dropped: partitioned)`);
        continue;
      }
      inner.line(describeMessage(m));
      this.act(sim, inner.nested(), () => sim.node.step(m));
    }
    return true;
  }

  private stabilize(selected: SimNode[], out: Printer): void {
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let busy = false;
      for (const sim of selected) busy = this.processReady(sim, out) || busy;
      for (const sim of selected) busy = this.deliver(sim, () => true, out) || busy;
      if (!busy) return;
    }
    throw new Error(`stabilize: still busy after MAX_STABILIZE_ROUNDS=${MAX_STABILIZE_ROUNDS} rounds`);
  }

  /**
   * A crash and restart: only what was persisted survives (the storage: entries, hard state,
   * snapshot). Unsent messages, unpersisted entries and the in-memory state machine are lost; the
   * state machine is rebuilt from the snapshot and the committed entries are applied again.
   */
  private restart(sim: SimNode, out: Printer): void {
    const snapshot = sim.storage.snapshot();
    sim.config = { ...sim.config, random: new SeededRandom(Number(sim.id)), applied: snapshot.metadata.index };
    sim.node = new RaftNode(sim.config);
    sim.stateMachine = snapshot.metadata.index > 0 ? (JSON.parse(textDecoder.decode(snapshot.data)) as string[]) : [];
    // The commit index is volatile state (Figure 2): it may restart lower.
    this.safetyOf(sim).forgetCommit(sim.id);
    const { term, vote, commit } = sim.storage.hardState;
    out.line(`${sim.id} restarted: Term:${term} Vote:${vote} Commit:${commit} LastIndex:${sim.storage.lastIndex()}`);
  }

  private compact(sim: SimNode, index: number, out: Printer): void {
    const raft = sim.node.raft;
    if (index > raft.log.applied) throw new Error(`compact: ${sim.id} has applied only up to ${raft.log.applied}`);
    // Conf changes take effect when applied, so the current membership is the one at `applied`;
    // snapshotting at an earlier index would need the membership of that time.
    if (index !== raft.log.applied) throw new Error('compact: this harness snapshots at the applied index only');
    const data = textEncoder.encode(JSON.stringify(sim.stateMachine));
    sim.storage.createSnapshot(index, raft.confState(), data);
    sim.storage.compact(index);
    out.line(`${sim.id} compacted its log up to ${index}; first index is now ${raft.log.firstIndex()}`);
  }

  private status(sim: SimNode, out: Printer): void {
    const raft = sim.node.raft;
    const status = sim.node.status();
    const { term, vote, commit } = status.hardState;
    out.line(
      `${sim.id}: ${STATE_NAMES[raft.role]} Term:${term} Vote:${vote} Lead:${status.softState.leader} ` +
        `Commit:${commit} Applied:${status.applied} LastIndex:${status.lastIndex}`,
    );
    out.line(`StateMachine: [${sim.stateMachine.join(' ')}]`);
    if (status.leadTransferee !== NO_NODE) out.line(`transferring leadership to ${status.leadTransferee}`);
    if (raft.role !== 'leader') return;
    out.line('Progress:');
    for (const id of [...raft.progress.keys()].sort((a, b) => (a < b ? -1 : 1))) {
      out.nested().line(`${id}: ${raft.progress.get(id)!.describe()}`);
    }
  }

  private raftLog(sim: SimNode, out: Printer): void {
    const log = sim.node.raft.log;
    if (log.firstIndex() > 1) {
      const snapshot = log.snapshot().metadata;
      out.line(`snapshot ${snapshot.term}/${snapshot.index}: entries up to ${snapshot.index} compacted`);
    }
    const entries = log.allEntriesFrom(log.firstIndex());
    if (entries.length === 0) out.line(`log is empty: first index=${log.firstIndex()}, last index=${log.lastIndex()}`);
    for (const entry of entries) out.line(describeEntry(entry));
    out.line(`committed=${log.committed} applied=${log.applied}`);
  }

  private raftState(selected: SimNode[], out: Printer): void {
    for (const sim of selected) {
      const raft = sim.node.raft;
      const membership = raft.voterIds().includes(sim.id) ? 'Voter' : raft.learnerIds().includes(sim.id) ? 'Learner' : 'Non-member';
      const reachable = [...this.nodes.values()].filter((other) => other !== sim && other.cluster === sim.cluster && this.connected(sim.id, other.id));
      const isolated = reachable.length === 0 && this.nodes.size > 1 ? ' (isolated)' : '';
      out.line(`${sim.id}: ${STATE_NAMES[raft.role]} (${membership}) Term:${raft.term} Lead:${raft.leader}${isolated}`);
    }
  }
}

// -------------------------------------------------------------------------------------------------
// Scenario files

export interface ScenarioBlock {
  /** Comment and blank lines before the command, kept verbatim on rewrite. */
  preamble: string[];
  command: string;
  expected: string;
  /** 1-based line number of the command, for error messages. */
  line: number;
}

export interface ParsedScenario {
  blocks: ScenarioBlock[];
  trailer: string[];
}

export function parseScenario(text: string): ParsedScenario {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const blocks: ScenarioBlock[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      preamble.push(line);
      i++;
      continue;
    }
    const commandLine = i + 1;
    if (lines[i + 1] !== '----') throw new Error(`line ${commandLine}: expected "----" after command "${line}"`);
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    i++; // the blank line that ends the block
    blocks.push({ preamble, command: line, expected: expected.join('\n'), line: commandLine });
    preamble = [];
  }
  return { blocks, trailer: preamble };
}

export function renderScenario(scenario: ParsedScenario, outputs: readonly string[]): string {
  const lines: string[] = [];
  scenario.blocks.forEach((block, i) => {
    lines.push(...block.preamble, block.command, '----', outputs[i] ?? '', '');
  });
  lines.push(...scenario.trailer);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n') + '\n';
}

/** Runs a scenario's commands in a fresh environment; returns the actual output of each. */
export function runScenario(scenario: ParsedScenario): string[] {
  const env = new InteractionEnv();
  return scenario.blocks.map((block) => {
    try {
      return env.handle(block.command);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`line ${block.line}: "${block.command}" failed: ${reason}`, { cause: error });
    }
  });
}

export function rewriteRequested(): boolean {
  return process.env['CONCORD_REWRITE'] === '1' || process.argv.includes('--rewrite');
}

/**
 * Runs a scenario file. Returns the expected and actual file text, which the caller compares; in
 * rewrite mode the file is first overwritten with the actual text (so they compare equal).
 */
export function runScenarioFile(path: string, rewrite = rewriteRequested()): { expected: string; actual: string } {
  const expected = readFileSync(path, 'utf8');
  const scenario = parseScenario(expected);
  const actual = renderScenario(scenario, runScenario(scenario));
  if (rewrite && actual !== expected) {
    writeFileSync(path, actual);
    return { expected: actual, actual };
  }
  return { expected, actual };
}
