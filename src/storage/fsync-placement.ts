// Where the WAL waits for a batch's fsync: on the event loop's own thread, or in libuv's thread pool.
//
// An fsync handed to the thread pool costs two thread wake-ups on top of the disk's own time: the
// pool thread is woken to run it, and the event loop is woken when it is done. On this project's
// 2-core VMs that added 0.1-0.3 ms to an fsync of about 0.2 ms: with one client, a third of a put's
// time on one member. Waiting on the loop's own thread skips both wake-ups, but nothing else runs
// meanwhile (no request is read, no peer message handled, no timer fires).
//
// So a batch waits on this thread only when both hold:
// - it is small (at most onThreadFsyncMaxEntries log entries): few writers at once, so little arrives that
//   the wait could delay. A large batch means many clients, whose next requests the loop reads and
//   proposes while the pool waits for the disk;
// - the disk has been fast: each of the last FAST_FSYNCS_BEFORE_ON_THREAD fsyncs took at most
//   onThreadFsyncMaxMs. One slower fsync sends the next FAST_FSYNCS_BEFORE_ON_THREAD to the pool, so a
//   slow or stalling disk blocks the loop at most once (the fsync that showed it), not again and again.

/** Consecutive fast fsyncs needed before a batch may wait on the loop's thread again. */
export const FAST_FSYNCS_BEFORE_ON_THREAD = 32;

/** The WAL's options of the same names (WalOptions). */
export interface FsyncPlacementOptions {
  /** The largest batch (in log entries) that may be fsynced on the loop's thread; 0 never does. */
  onThreadFsyncMaxEntries: number;
  /** An fsync slower than this (milliseconds) keeps the next ones in the thread pool. */
  onThreadFsyncMaxMs: number;
}

export class FsyncPlacement {
  private readonly options: FsyncPlacementOptions;
  /** Fast fsyncs in a row, counted up to FAST_FSYNCS_BEFORE_ON_THREAD. */
  private fastInARow = 0;

  constructor(options: FsyncPlacementOptions) {
    this.options = options;
  }

  /** Whether a batch of this many log entries waits for its fsync on the loop's own thread. */
  onThisThread(entries: number): boolean {
    return entries <= this.options.onThreadFsyncMaxEntries && this.fastInARow >= FAST_FSYNCS_BEFORE_ON_THREAD;
  }

  /** Records how long an fsync took, wherever it ran. */
  observe(durationMs: number): void {
    this.fastInARow = durationMs > this.options.onThreadFsyncMaxMs ? 0 : Math.min(this.fastInARow + 1, FAST_FSYNCS_BEFORE_ON_THREAD);
  }
}
