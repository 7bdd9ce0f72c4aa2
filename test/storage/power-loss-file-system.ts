// An in-memory FileSystem that models what a power failure does below the page cache, so tests can
// prove durability claims instead of trusting them.
//
// Every file has a durable image and volatile changes: written bytes and truncations stay volatile
// until that file is fsynced. Every directory has durable entries and volatile changes: a created,
// renamed or unlinked name stays volatile until that directory is fsynced. crash() drops everything
// volatile. Given a random generator it may instead keep an in-order prefix of a file's unsynced
// writes (a torn write: the last kept write is cut at a random byte, and the rest of its last
// 512-byte sector may be garbage) and an in-order prefix of a directory's unsynced changes (as a
// journaling file system commits metadata operations in order). Out-of-order persistence of
// unsynced sectors is not modelled: the WAL's torn-tail rule assumes a prefix survives, as etcd's does.
//
// Fault injection: injectFault() fails chosen operations with ENOSPC or EIO (a failing write first
// writes half its bytes, as a short write before a full disk would); crashAfterOperations(n) lets n
// more operations run and then freezes the file system: every later operation throws
// SimulatedCrashError until crash() is called. Sweeping n over a workload's operation count visits
// every crash point.

import { posix } from 'node:path';
import type { FileHandle, FileSystem } from '../../src/storage/file-system.ts';
import { storageErrorFromOs } from '../../src/storage/file-system.ts';
import type { StorageError } from '../../src/storage/errors.ts';
import type { Random } from '../../src/random/seeded-random.ts';

export type OperationKind =
  | 'open'
  | 'create'
  | 'readFile'
  | 'rename'
  | 'unlink'
  | 'readdir'
  | 'mkdirp'
  | 'syncDir'
  | 'stat'
  | 'write'
  | 'read'
  | 'sync'
  | 'truncate'
  | 'size'
  | 'close';

export type FaultCode = 'ENOSPC' | 'EIO';

/** Thrown by every operation after the crash point, until crash() is called. */
export class SimulatedCrashError extends Error {
  override name = 'SimulatedCrashError';
}

export interface CrashOptions {
  /** Without a generator, crash() keeps exactly the durable image. */
  random?: Random;
  /** The chance that a file with unsynced writes keeps a torn prefix of them. Default 0.5. */
  tornWriteProbability?: number;
  /** The chance that a torn write leaves garbage in the rest of its last sector. Default 0.5. */
  garbageProbability?: number;
  /** The chance that a directory with unsynced changes keeps a prefix of them. Default 0.5. */
  dirChangesProbability?: number;
}

export interface CrashReport {
  /** Paths of files that kept a torn prefix of their unsynced writes. */
  tornFiles: string[];
  /** Bytes of unsynced writes that survived (all torn files together). */
  survivingUnsyncedBytes: number;
  /** Directories that kept some of their unsynced changes. */
  dirsWithSurvivingChanges: string[];
}

export interface FaultSpec {
  code: FaultCode;
  /** Only operations of these kinds fail. Default: any kind. */
  kinds?: OperationKind[];
  /** Skip this many operations (of any kind) before the fault becomes armed. Default 0. */
  afterOperations?: number;
  /** How many matching operations fail. Default: every one from then on (a full disk stays full). */
  times?: number;
}

const SECTOR_BYTES = 512;

/** A byte array that grows by doubling, so appends cost amortised O(bytes). */
class GrowableBytes {
  private buffer: Uint8Array;
  length = 0;

  constructor(initial?: Uint8Array) {
    this.buffer = new Uint8Array(Math.max(64, initial?.byteLength ?? 0));
    if (initial) {
      this.buffer.set(initial);
      this.length = initial.byteLength;
    }
  }

  view(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  clone(): GrowableBytes {
    return new GrowableBytes(this.view());
  }

  private ensure(capacity: number): void {
    if (capacity <= this.buffer.byteLength) return;
    const grown = new Uint8Array(Math.max(capacity, this.buffer.byteLength * 2));
    grown.set(this.view());
    this.buffer = grown;
  }

  write(position: number, data: Uint8Array): void {
    const end = position + data.byteLength;
    this.ensure(end);
    if (position > this.length) this.buffer.fill(0, this.length, position);
    this.buffer.set(data, position);
    this.length = Math.max(this.length, end);
  }

  truncate(sizeBytes: number): void {
    if (sizeBytes > this.length) {
      this.ensure(sizeBytes);
      this.buffer.fill(0, this.length, sizeBytes);
    }
    this.length = sizeBytes;
  }
}

type FileOp = { kind: 'write'; position: number; data: Uint8Array } | { kind: 'truncate'; sizeBytes: number };

interface Inode {
  kind: 'file';
  current: GrowableBytes;
  durable: GrowableBytes;
  pending: FileOp[];
}

/** One atomic directory change: names set to a node or removed (undefined). */
type DirChange = [string, Node | undefined][];

interface Dir {
  kind: 'dir';
  entries: Map<string, Node>;
  durable: Map<string, Node>;
  pending: DirChange[];
}

type Node = Inode | Dir;

function newDir(): Dir {
  return { kind: 'dir', entries: new Map(), durable: new Map(), pending: [] };
}

function applyFileOp(bytes: GrowableBytes, op: FileOp): void {
  if (op.kind === 'write') bytes.write(op.position, op.data);
  else bytes.truncate(op.sizeBytes);
}

/** The error NodeFileSystem would report for the same OS error code. */
function osError(code: FaultCode | 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'EBADF', operation: string, path: string): StorageError {
  return storageErrorFromOs(Object.assign(new Error(`simulated ${code}`), { code }), operation, path);
}

interface ArmedFault {
  code: FaultCode;
  kinds: OperationKind[] | undefined;
  fromOperation: number;
  remaining: number;
}

export class PowerLossFileSystem implements FileSystem {
  /** Operations started so far (each FileSystem or FileHandle call is one). */
  operations = 0;
  /** The kind of every operation started, in order: crash-point sweeps use it to aim at fsyncs. */
  readonly operationKinds: OperationKind[] = [];
  private root: Dir = newDir();

  /** `durableDirs` exist from the start, durably, as the disk's existing folders would. */
  constructor(durableDirs: string[] = []) {
    for (const path of durableDirs) {
      let dir = this.root;
      for (const name of components(path)) {
        let child = dir.entries.get(name);
        if (child?.kind === 'file') throw new Error(`${path} crosses a file`);
        if (!child) {
          child = newDir();
          dir.entries.set(name, child);
          dir.durable.set(name, child);
        }
        dir = child;
      }
    }
  }
  private crashAtOperation: number | undefined;
  private frozen = false;
  /** Bumped by crash(): handles from before it stop working, as the process that held them died. */
  private generation = 0;
  private faults: ArmedFault[] = [];

  get isFrozen(): boolean {
    return this.frozen;
  }

  /** Lets `count` more operations run; the one after them, and every later one, throws SimulatedCrashError. */
  crashAfterOperations(count: number): void {
    this.crashAtOperation = this.operations + count;
  }

  injectFault(spec: FaultSpec): void {
    this.faults.push({
      code: spec.code,
      kinds: spec.kinds,
      fromOperation: this.operations + (spec.afterOperations ?? 0),
      remaining: spec.times ?? Infinity,
    });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Power fails now: volatile state is dropped (or torn, see CrashOptions). Unfreezes the file system. */
  crash(options: CrashOptions = {}): CrashReport {
    const report: CrashReport = { tornFiles: [], survivingUnsyncedBytes: 0, dirsWithSurvivingChanges: [] };
    const seen = new Set<Node>();
    this.crashDir(this.root, '/', options, report, seen);
    this.generation++;
    this.frozen = false;
    this.crashAtOperation = undefined;
    this.faults = [];
    return report;
  }

  /** A copy of the whole state (durable and volatile); the copy has no faults or crash point armed. */
  clone(): PowerLossFileSystem {
    const copy = new PowerLossFileSystem();
    const copies = new Map<Node, Node>();
    const cloneNode = (node: Node): Node => {
      const known = copies.get(node);
      if (known) return known;
      if (node.kind === 'file') {
        const file: Inode = { kind: 'file', current: node.current.clone(), durable: node.durable.clone(), pending: node.pending.slice() };
        copies.set(node, file);
        return file;
      }
      const dir = newDir();
      copies.set(node, dir);
      for (const [name, child] of node.entries) dir.entries.set(name, cloneNode(child));
      for (const [name, child] of node.durable) dir.durable.set(name, cloneNode(child));
      dir.pending = node.pending.map((change) => change.map(([name, child]) => [name, child && cloneNode(child)]));
      return dir;
    };
    copy.root = cloneNode(this.root) as Dir;
    return copy;
  }

  /** What would survive if the power failed now, leaving this file system untouched. */
  crashedCopy(options: CrashOptions = {}): PowerLossFileSystem {
    const copy = this.clone();
    copy.crash(options);
    return copy;
  }

  // ---- test helpers (not operations: they are not counted and never fail) ----

  /** The current content of a file, as a reader would see it. */
  fileBytes(path: string): Uint8Array {
    return this.lookupFile(path, 'inspect').current.view().slice();
  }

  /** Flips bits of one byte of a file, in its durable image too: bit rot, not a crash. */
  corruptByte(path: string, offset: number, xorMask = 0xff): void {
    const file = this.lookupFile(path, 'corrupt');
    for (const bytes of [file.current, file.durable]) {
      const view = bytes.view();
      if (offset >= view.byteLength) throw new Error(`cannot corrupt byte ${offset} of ${path}: it has ${view.byteLength} bytes`);
      view[offset]! ^= xorMask;
    }
  }

  /** Every file path, sorted. */
  listFiles(): string[] {
    const paths: string[] = [];
    const walk = (dir: Dir, prefix: string): void => {
      for (const [name, node] of dir.entries) {
        const path = posix.join(prefix, name);
        if (node.kind === 'dir') walk(node, path);
        else paths.push(path);
      }
    };
    walk(this.root, '/');
    return paths.sort();
  }

  // ---- FileSystem ----

  async open(path: string): Promise<FileHandle> {
    const fault = this.begin('open', path);
    if (fault) throw osError(fault, 'open', path);
    return new MemoryFileHandle(this, path, this.lookupFile(path, 'open'));
  }

  async createExclusive(path: string): Promise<FileHandle> {
    const fault = this.begin('create', path);
    if (fault) throw osError(fault, 'create', path);
    const { dir, name } = this.parentOf(path, 'create');
    if (dir.entries.has(name)) throw osError('EEXIST', 'create', path);
    const file: Inode = { kind: 'file', current: new GrowableBytes(), durable: new GrowableBytes(), pending: [] };
    this.changeDir(dir, [[name, file]]);
    return new MemoryFileHandle(this, path, file);
  }

  async readFile(path: string): Promise<Uint8Array> {
    const fault = this.begin('readFile', path);
    if (fault) throw osError(fault, 'read', path);
    return this.lookupFile(path, 'read').current.view().slice();
  }

  async rename(from: string, to: string): Promise<void> {
    const fault = this.begin('rename', from);
    if (fault) throw osError(fault, 'rename', from);
    const source = this.parentOf(from, 'rename');
    const node = source.dir.entries.get(source.name);
    if (!node) throw osError('ENOENT', 'rename', from);
    const target = this.parentOf(to, 'rename');
    if (target.dir.entries.get(target.name)?.kind === 'dir') throw osError('EISDIR', 'rename', to);
    if (source.dir === target.dir) {
      this.changeDir(source.dir, [
        [source.name, undefined],
        [target.name, node],
      ]);
    } else {
      this.changeDir(target.dir, [[target.name, node]]);
      this.changeDir(source.dir, [[source.name, undefined]]);
    }
  }

  async unlink(path: string): Promise<void> {
    const fault = this.begin('unlink', path);
    if (fault) throw osError(fault, 'unlink', path);
    const { dir, name } = this.parentOf(path, 'unlink');
    const node = dir.entries.get(name);
    if (!node) throw osError('ENOENT', 'unlink', path);
    if (node.kind === 'dir') throw osError('EISDIR', 'unlink', path);
    this.changeDir(dir, [[name, undefined]]);
  }

  async readdir(path: string): Promise<string[]> {
    const fault = this.begin('readdir', path);
    if (fault) throw osError(fault, 'list', path);
    return [...this.lookupDir(path, 'list').entries.keys()];
  }

  async mkdirp(path: string): Promise<void> {
    const fault = this.begin('mkdirp', path);
    if (fault) throw osError(fault, 'mkdir', path);
    let dir = this.root;
    for (const name of components(path)) {
      const child = dir.entries.get(name);
      if (child?.kind === 'file') throw osError('ENOTDIR', 'mkdir', path);
      if (child) {
        dir = child;
        continue;
      }
      const created = newDir();
      this.changeDir(dir, [[name, created]]);
      dir = created;
    }
  }

  async syncDir(path: string): Promise<void> {
    const fault = this.begin('syncDir', path);
    if (fault) throw osError(fault, 'fsync directory', path);
    const dir = this.lookupDir(path, 'fsync directory');
    dir.durable = new Map(dir.entries);
    dir.pending = [];
  }

  async statSizeBytes(path: string): Promise<number> {
    const fault = this.begin('stat', path);
    if (fault) throw osError(fault, 'stat', path);
    return this.lookupFile(path, 'stat').current.length;
  }

  // ---- internals ----

  /**
   * Counts an operation and decides its fate: throws SimulatedCrashError past the crash point,
   * returns a fault code if an injected fault hits it, else undefined.
   */
  begin(kind: OperationKind, path: string, generation = this.generation): FaultCode | undefined {
    if (this.frozen) throw new SimulatedCrashError(`${kind} ${path}: the power is off`);
    if (generation !== this.generation) throw osError('EBADF', kind, `${path} (a handle from before a crash)`);
    const number = this.operations++;
    this.operationKinds.push(kind);
    if (this.crashAtOperation !== undefined && number >= this.crashAtOperation) {
      this.frozen = true;
      throw new SimulatedCrashError(`${kind} ${path}: the power failed`);
    }
    for (const fault of this.faults) {
      if (fault.remaining > 0 && number >= fault.fromOperation && (fault.kinds === undefined || fault.kinds.includes(kind))) {
        fault.remaining--;
        return fault.code;
      }
    }
    return undefined;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  private changeDir(dir: Dir, change: DirChange): void {
    for (const [name, node] of change) {
      if (node) dir.entries.set(name, node);
      else dir.entries.delete(name);
    }
    dir.pending.push(change);
  }

  private crashDir(dir: Dir, path: string, options: CrashOptions, report: CrashReport, seen: Set<Node>): void {
    if (seen.has(dir)) return;
    seen.add(dir);
    const entries = new Map(dir.durable);
    const random = options.random;
    if (random && dir.pending.length > 0 && random.nextFloat() < (options.dirChangesProbability ?? 0.5)) {
      const kept = random.nextInt(dir.pending.length + 1);
      for (const change of dir.pending.slice(0, kept)) {
        for (const [name, node] of change) {
          if (node) entries.set(name, node);
          else entries.delete(name);
        }
      }
      if (kept > 0) report.dirsWithSurvivingChanges.push(path);
    }
    dir.entries = entries;
    dir.durable = new Map(entries);
    dir.pending = [];
    for (const [name, node] of entries) {
      if (node.kind === 'dir') this.crashDir(node, posix.join(path, name), options, report, seen);
      else this.crashFile(node, posix.join(path, name), options, report, seen);
    }
  }

  private crashFile(file: Inode, path: string, options: CrashOptions, report: CrashReport, seen: Set<Node>): void {
    if (seen.has(file)) return;
    seen.add(file);
    const survivor = file.durable.clone();
    const random = options.random;
    if (random && file.pending.length > 0 && random.nextFloat() < (options.tornWriteProbability ?? 0.5)) {
      const complete = random.nextInt(file.pending.length);
      let survivingBytes = 0;
      for (const op of file.pending.slice(0, complete)) {
        applyFileOp(survivor, op);
        if (op.kind === 'write') survivingBytes += op.data.byteLength;
      }
      const torn = file.pending[complete]!;
      if (torn.kind === 'truncate') {
        if (random.nextFloat() < 0.5) applyFileOp(survivor, torn);
      } else {
        const keptBytes = random.nextInt(torn.data.byteLength + 1);
        survivor.write(torn.position, torn.data.subarray(0, keptBytes));
        survivingBytes += keptBytes;
        const end = torn.position + keptBytes;
        const sectorEnd = Math.min(Math.ceil((end + 1) / SECTOR_BYTES) * SECTOR_BYTES, torn.position + torn.data.byteLength);
        if (keptBytes < torn.data.byteLength && random.nextFloat() < (options.garbageProbability ?? 0.5)) {
          const garbage = new Uint8Array(sectorEnd - end);
          for (let i = 0; i < garbage.byteLength; i++) garbage[i] = random.nextInt(256);
          survivor.write(end, garbage);
        }
      }
      report.tornFiles.push(path);
      report.survivingUnsyncedBytes += survivingBytes;
    }
    file.current = survivor;
    file.durable = survivor.clone();
    file.pending = [];
  }

  private lookup(path: string): Node | undefined {
    let node: Node = this.root;
    for (const name of components(path)) {
      if (node.kind !== 'dir') return undefined;
      const child: Node | undefined = node.entries.get(name);
      if (!child) return undefined;
      node = child;
    }
    return node;
  }

  private lookupFile(path: string, operation: string): Inode {
    const node = this.lookup(path);
    if (!node) throw osError('ENOENT', operation, path);
    if (node.kind !== 'file') throw osError('EISDIR', operation, path);
    return node;
  }

  private lookupDir(path: string, operation: string): Dir {
    const node = this.lookup(path);
    if (!node) throw osError('ENOENT', operation, path);
    if (node.kind !== 'dir') throw osError('ENOTDIR', operation, path);
    return node;
  }

  private parentOf(path: string, operation: string): { dir: Dir; name: string } {
    const names = components(path);
    const name = names.pop();
    if (name === undefined) throw osError('EISDIR', operation, path);
    return { dir: this.lookupDir(`/${names.join('/')}`, operation), name };
  }
}

function components(path: string): string[] {
  if (!posix.isAbsolute(path)) throw new Error(`PowerLossFileSystem needs absolute paths, got ${path}`);
  return posix
    .normalize(path)
    .split('/')
    .filter((name) => name !== '');
}

class MemoryFileHandle implements FileHandle {
  readonly path: string;
  private readonly fs: PowerLossFileSystem;
  private readonly file: Inode;
  private readonly generation: number;
  private closed = false;

  constructor(fs: PowerLossFileSystem, path: string, file: Inode) {
    this.fs = fs;
    this.path = path;
    this.file = file;
    this.generation = fs.currentGeneration;
  }

  private begin(kind: OperationKind): FaultCode | undefined {
    const fault = this.fs.begin(kind, this.path, this.generation);
    if (this.closed) throw osError('EBADF', kind, this.path);
    return fault;
  }

  async write(data: Uint8Array, positionBytes: number): Promise<void> {
    const fault = this.begin('write');
    if (fault === 'ENOSPC') {
      // A full disk often takes part of a write before refusing the rest.
      this.apply({ kind: 'write', position: positionBytes, data: data.slice(0, Math.floor(data.byteLength / 2)) });
    }
    if (fault) throw osError(fault, 'write', this.path);
    this.apply({ kind: 'write', position: positionBytes, data: data.slice() });
  }

  async read(positionBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const fault = this.begin('read');
    if (fault) throw osError(fault, 'read', this.path);
    return this.file.current.view().slice(positionBytes, positionBytes + lengthBytes);
  }

  async sync(): Promise<void> {
    this.syncOnThisThread();
  }

  syncOnThisThread(): void {
    const fault = this.begin('sync');
    if (fault) throw osError(fault, 'fsync', this.path);
    for (const op of this.file.pending) applyFileOp(this.file.durable, op);
    this.file.pending = [];
  }

  async truncate(sizeBytes: number): Promise<void> {
    const fault = this.begin('truncate');
    if (fault) throw osError(fault, 'truncate', this.path);
    this.apply({ kind: 'truncate', sizeBytes });
  }

  async sizeBytes(): Promise<number> {
    const fault = this.begin('size');
    if (fault) throw osError(fault, 'stat', this.path);
    return this.file.current.length;
  }

  async close(): Promise<void> {
    const fault = this.begin('close');
    this.closed = true;
    if (fault) throw osError(fault, 'close', this.path);
  }

  private apply(op: FileOp): void {
    applyFileOp(this.file.current, op);
    this.file.pending.push(op);
  }
}
