// One TCP (or TLS) connection between members, dialed or accepted, with the frame decoder on its
// input. Both peer streams and snapshot streams use it, on either side.

import { connect as connectTcp } from 'node:net';
import type { Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Frame, FrameType } from './frame.ts';
import { FrameDecoder, ProtocolError, encodeFrame } from './frame.ts';

/** TLS settings for dialing peers (client side of mutual TLS). */
export type PeerDialTls = Pick<TlsConnectionOptions, 'key' | 'cert' | 'ca' | 'rejectUnauthorized'>;

export interface DialOptions {
  url: URL;
  /** Bind outgoing connections to this address, so peers and firewalls see which member dials. */
  localAddress?: string;
  tls?: PeerDialTls;
  connectTimeoutMs: number;
}

/** A HELLO frame is small: until the handshake is done no frame may be larger than this. */
export const MAX_HANDSHAKE_FRAME_BYTES = 64 * 1024;

export class PeerConnection {
  readonly socket: Socket;
  readonly decoder: FrameDecoder;
  private closed = false;
  private readonly closeListeners: ((reason: string) => void)[] = [];
  private readonly partialFrameTimeoutMs: number;
  private partialFrameTimer: NodeJS.Timeout | undefined;

  /**
   * partialFrameTimeoutMs: a frame begun and not finished, with no byte arriving for this long,
   * closes the connection (a truncated frame must not hold a connection and its buffer forever).
   */
  constructor(socket: Socket, onFrame: (frame: Frame) => void, partialFrameTimeoutMs: number) {
    this.socket = socket;
    this.decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
    this.partialFrameTimeoutMs = partialFrameTimeoutMs;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) return;
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (error) {
        this.close(error instanceof ProtocolError ? error.message : String(error));
        return;
      }
      this.watchPartialFrame();
      for (const frame of frames) {
        if (this.closed) return;
        try {
          onFrame(frame);
        } catch (error) {
          this.close(error instanceof ProtocolError ? error.message : `unexpected error: ${(error as Error).message}`);
          return;
        }
      }
    });
    socket.on('end', () => {
      if (this.decoder.pendingBytes > 0) this.close(`truncated frame: the connection ended after ${this.decoder.pendingBytes} bytes of a frame`);
    });
    socket.on('error', (error) => this.close(error.message));
    socket.on('close', () => this.close('connection closed'));
  }

  /**
   * Arms the partial-frame timer while the decoder holds part of a frame; each chunk restarts it
   * (one timer per connection, refreshed: this runs on every chunk a busy peer stream reads).
   */
  private watchPartialFrame(): void {
    if (this.decoder.pendingBytes === 0) {
      clearTimeout(this.partialFrameTimer);
      this.partialFrameTimer = undefined;
    } else if (this.partialFrameTimer) {
      this.partialFrameTimer.refresh();
    } else {
      this.partialFrameTimer = setTimeout(() => {
        this.close(`truncated frame: ${this.decoder.pendingBytes} bytes of a frame, then nothing for ${this.partialFrameTimeoutMs} ms`);
      }, this.partialFrameTimeoutMs);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Writes a frame; returns false when the socket's buffer is above its high-water mark. */
  write(type: FrameType, payload: Uint8Array): boolean {
    if (this.closed) return false;
    return this.socket.write(encodeFrame(type, payload));
  }

  /** Writes bytes that are already framed (several frames batched into one write). */
  writeFramed(bytes: Uint8Array): boolean {
    if (this.closed) return false;
    return this.socket.write(bytes);
  }

  /** Resolves when the socket can take more bytes (or is closed). */
  drained(): Promise<void> {
    if (this.closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        const at = this.closeListeners.indexOf(done);
        if (at >= 0) this.closeListeners.splice(at, 1);
        resolve();
      };
      this.socket.once('drain', done);
      this.closeListeners.push(done);
    });
  }

  get queuedBytes(): number {
    return this.socket.writableLength;
  }

  onClose(listener: (reason: string) => void): void {
    if (this.closed) listener('already closed');
    else this.closeListeners.push(listener);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.partialFrameTimer);
    this.socket.destroy();
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }

  /** Sends the last frames and closes once they are written. */
  end(type: FrameType, payload: Uint8Array): void {
    if (this.closed) return;
    this.socket.end(encodeFrame(type, payload));
  }
}

/** Dials a peer URL; resolves with the connected socket, or rejects after connectTimeoutMs. */
export function dial(options: DialOptions): Promise<Socket> {
  const host = options.url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(options.url.port);
  return new Promise((resolve, reject) => {
    const common = { host, port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) };
    const socket = options.url.protocol === 'https:'
      ? connectTls({ ...common, ...options.tls, servername: isIpAddress(host) ? undefined : host })
      : connectTcp(common);
    const connectedEvent = options.url.protocol === 'https:' ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connecting to ${options.url.host} timed out after ${options.connectTimeoutMs} ms`));
    }, options.connectTimeoutMs);
    socket.once(connectedEvent, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
