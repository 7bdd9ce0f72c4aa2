// A fault-injecting TCP relay in front of each member's peer port, for partitions between real
// processes without touching the host's firewall. Each member advertises its relay's address as
// its peer URL and dials its peers from its own loopback address (127.0.0.N, see
// store-server.ts outgoingAddress), so the relay knows which member a connection comes from.
//
// A blocked link is a black hole, as a real partition is: connections from the blocked source are
// accepted but nothing crosses (no reset, no answer), and the established ones are cut. Links are
// directional, so one-way partitions are possible too.

import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export interface RelayEndpoint {
  /** The member behind this relay. */
  member: string;
  /** Where the relay listens (the member's advertised peer address); port 0: one the system picks. */
  listenHost: string;
  listenPort: number;
  /** The member's real peer listener. */
  targetHost: string;
  targetPort: number;
}

interface Link {
  from: string;
  client: Socket;
  upstream?: Socket;
}

export class PeerRelay {
  private readonly servers: Server[] = [];
  private readonly links = new Set<Link>();
  /** "from>to" for each blocked direction. */
  private readonly blocked = new Set<string>();
  /** Loopback source address -> member name. */
  private readonly memberByAddress: Map<string, string>;
  private readonly endpoints: RelayEndpoint[];
  private readonly listenPorts = new Map<string, number>();
  connectionsHeld = 0;

  constructor(endpoints: RelayEndpoint[], memberByAddress: Map<string, string>) {
    this.endpoints = endpoints;
    this.memberByAddress = memberByAddress;
  }

  /**
   * Listens for every endpoint. A listenPort of 0 takes a port the system picks (see listenPortOf):
   * no port is chosen ahead and lost to another process meanwhile. If one listener fails, the
   * others are closed before the error is thrown, so nothing is left holding the process open.
   */
  async start(): Promise<void> {
    try {
      for (const endpoint of this.endpoints) {
        const server = createServer((client) => this.accept(endpoint, client));
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(endpoint.listenPort, endpoint.listenHost, () => resolve());
        });
        this.servers.push(server);
        this.listenPorts.set(endpoint.member, (server.address() as AddressInfo).port);
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** The port the relay in front of `member` listens on, once started. */
  listenPortOf(member: string): number {
    const port = this.listenPorts.get(member);
    if (port === undefined) throw new Error(`the relay has no listener for ${member} (not started?)`);
    return port;
  }

  /** Cuts traffic from `from` to `to` (one direction). */
  block(from: string, to: string): void {
    this.blocked.add(`${from}>${to}`);
    for (const link of this.links) {
      if (link.from === from && this.targetOf(link) === to) this.cut(link);
    }
  }

  unblock(from: string, to: string): void {
    this.blocked.delete(`${from}>${to}`);
  }

  /** Isolates `group` from everyone else, both ways. */
  partition(group: readonly string[], everyone: readonly string[]): void {
    for (const inside of group) {
      for (const outside of everyone.filter((member) => !group.includes(member))) {
        this.block(inside, outside);
        this.block(outside, inside);
      }
    }
  }

  healAll(): void {
    this.blocked.clear();
    // Held connections are cut so their dialers reconnect through the healed path at once.
    for (const link of this.links) if (!link.upstream) this.cut(link);
  }

  isBlocked(from: string, to: string): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  async stop(): Promise<void> {
    for (const link of this.links) this.cut(link);
    await Promise.all(this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private readonly targets = new WeakMap<Link, string>();

  private targetOf(link: Link): string | undefined {
    return this.targets.get(link);
  }

  private accept(endpoint: RelayEndpoint, client: Socket): void {
    const address = (client.remoteAddress ?? '').replace(/^::ffff:/, '');
    const from = this.memberByAddress.get(address) ?? `unknown(${address})`;
    const link: Link = { from, client };
    this.links.add(link);
    this.targets.set(link, endpoint.member);
    client.on('error', () => this.cut(link));
    client.on('close', () => this.cut(link));
    if (this.blocked.has(`${from}>${endpoint.member}`)) {
      // A black hole: accept, read and drop everything, answer nothing.
      this.connectionsHeld++;
      client.on('data', () => {});
      return;
    }
    const upstream = connect(endpoint.targetPort, endpoint.targetHost);
    link.upstream = upstream;
    upstream.on('error', () => this.cut(link));
    upstream.on('close', () => this.cut(link));
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private cut(link: Link): void {
    if (!this.links.delete(link)) return;
    link.client.destroy();
    link.upstream?.destroy();
  }
}
