// The store member's Prometheus metrics. Names follow etcd's where the concept is the same
// (concord_ instead of etcd_), so dashboards and alerts translate directly.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** etcd's WAL fsync buckets: 1 ms doubling to about 8 s. */
const FSYNC_BUCKETS_SECONDS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

export class ServerMetrics {
  readonly registry = new Registry();
  readonly hasLeader = new Gauge({ name: 'concord_server_has_leader', help: '1 if this member knows a leader, else 0', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'concord_server_is_leader', help: '1 if this member is the leader, else 0', registers: [this.registry] });
  readonly term = new Gauge({ name: 'concord_server_term', help: 'current Raft term', registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'concord_server_leader_changes_seen_total', help: 'leader changes seen by this member', registers: [this.registry] });
  readonly proposalsCommitted = new Counter({ name: 'concord_server_proposals_committed_total', help: 'proposals committed and applied', registers: [this.registry] });
  readonly proposalsFailed = new Counter({ name: 'concord_server_proposals_failed_total', help: 'proposals that failed (dropped, timed out, refused)', registers: [this.registry] });
  readonly proposalsPending = new Gauge({ name: 'concord_server_proposals_pending', help: 'proposals waiting to be applied', registers: [this.registry] });
  readonly applyLagEntries = new Gauge({ name: 'concord_server_apply_lag_entries', help: 'committed entries not yet applied', registers: [this.registry] });
  readonly walFsyncSeconds = new Histogram({
    name: 'concord_disk_wal_fsync_duration_seconds', help: 'latency of WAL fsyncs', buckets: FSYNC_BUCKETS_SECONDS, registers: [this.registry],
  });
  readonly walFsyncsOnThread = new Counter({
    name: 'concord_disk_wal_fsyncs_on_thread_total',
    help: 'WAL fsyncs that waited on the member\'s event-loop thread (small batches on a fast disk), a part of those timed in concord_disk_wal_fsync_duration_seconds',
    registers: [this.registry],
  });
  readonly dbSizeBytes = new Gauge({ name: 'concord_mvcc_db_total_size_bytes', help: 'estimated size of the key-value history', registers: [this.registry] });
  readonly watchers = new Gauge({ name: 'concord_mvcc_watchers', help: 'active watchers', registers: [this.registry] });
  readonly leases = new Gauge({ name: 'concord_server_leases', help: 'granted leases', registers: [this.registry] });
  readonly peersConnected = new Gauge({ name: 'concord_network_peers_connected', help: 'peers this member\'s outbound streams are connected to', registers: [this.registry] });
  readonly peerMessagesSent = new Counter({ name: 'concord_network_peer_messages_sent_total', help: 'Raft messages sent to peers', registers: [this.registry] });
  readonly peerMessagesDropped = new Counter({
    name: 'concord_network_peer_messages_dropped_total', help: 'Raft messages dropped (peer down or its queue full; Raft re-sends)', registers: [this.registry],
  });

  /**
   * Requests, connections and streams refused by a resource limit; the label is the limit's flag
   * name (max-leases, max-client-connections, ...), so an alert names what to raise or fix.
   */
  readonly refused = new Counter({
    name: 'concord_store_refused_total', help: 'requests, connections and streams refused by a resource limit, by the limit\'s flag name',
    labelNames: ['limit'], registers: [this.registry],
  });
  readonly clientConnections = new Gauge({ name: 'concord_store_client_connections', help: 'open client connections, all listeners together', registers: [this.registry] });
  readonly watchStreams = new Gauge({ name: 'concord_store_watch_streams', help: 'open Watch streams', registers: [this.registry] });
  /** What concord_store_watch_queued_bytes reads when it is collected (the watch service sets it). */
  watchQueuedBytesSource: () => number = () => 0;
  readonly watchQueuedBytes: Gauge = new Gauge({
    name: 'concord_store_watch_queued_bytes', help: 'watch responses (estimated bytes) waiting for slow streams', registers: [this.registry],
    // Read at collection rather than set at every change: the backlog changes with every response sent and drained.
    collect: () => this.watchQueuedBytes.set(this.watchQueuedBytesSource()),
  });

  constructor() {
    // The process's own figures (resident memory, heap, open file descriptors, event-loop lag), as
    // etcd exposes process_* and go_memstats_*: a leak shows on a dashboard before it kills the member.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Gauges read at scrape time from the live member, so they are never stale. */
  sampleAtScrape(samples: {
    pendingProposals(): number; applyLagEntries(): number; dbSizeBytes(): number;
    peersConnected(): number; peerMessagesSent(): number; peerMessagesDropped(): number;
  }): void {
    const at = (gauge: Gauge, read: () => number) => {
      (gauge as unknown as { collect: () => void }).collect = () => gauge.set(read());
    };
    at(this.proposalsPending, samples.pendingProposals);
    at(this.applyLagEntries, samples.applyLagEntries);
    at(this.dbSizeBytes, samples.dbSizeBytes);
    at(this.peersConnected, samples.peersConnected);
    catchUp(this.peerMessagesSent, samples.peerMessagesSent);
    catchUp(this.peerMessagesDropped, samples.peerMessagesDropped);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** A counter whose total is kept elsewhere (the transport's): it catches up with it at each scrape. */
function catchUp(counter: Counter, readTotal: () => number): void {
  let seen = 0;
  (counter as unknown as { collect: () => void }).collect = () => {
    const total = readTotal();
    if (total > seen) counter.inc(total - seen);
    seen = total;
  };
}
