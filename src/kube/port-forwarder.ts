/**
 * PortForwarder over the API server's pods/portforward WebSocket (v4.channel.k8s.io): each port
 * of the tunnel becomes a Duplex stream and Node's own HTTP client speaks HTTP/1.1 over it.
 *
 * One WebSocket per pod carries every port asked for at the same moment (`ports=4191,24444`):
 * the sidecars of a pod are stopped in parallel, and each WebSocket costs a TLS connection to
 * the API server, an upgrade and a stream at the kubelet. Port i of the socket has data channel
 * 2i and error channel 2i+1; the kubelet starts each channel with the port number (2 bytes,
 * little-endian), which is stripped here, and writes a port's error (e.g. connection refused)
 * as one message on its error channel, independently of the other ports. The socket closes once
 * every port's connection in the pod has ended; here it is closed once every call is done.
 */
import { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { http } from '../node-http.ts';
import type { HttpCall, HttpReply, PodRef, PortForwarder } from '../ports.ts';
import { ABNORMAL_CLOSURE, channelFrame, LOST_API_SERVER, openPodChannel } from './channel-socket.ts';
import type { KubeClient } from './kube-client.ts';

const MAX_BODY = 4096;
const PORT_PREFIX_BYTES = 2;

/** One port of a shared port-forward socket, as a byte stream. */
class TunnelStream extends Duplex {
  private readonly send: (payload: Buffer, cb: (err?: Error) => void) => void;
  private readonly release: () => void;
  /** The port-number prefix still to strip, per channel: [data, error]. */
  private readonly skip = [PORT_PREFIX_BYTES, PORT_PREFIX_BYTES];

  constructor(send: (payload: Buffer, cb: (err?: Error) => void) => void, release: () => void) {
    super();
    this.send = send;
    this.release = release;
    // A port's error reaches the HTTP client through its own listener; one that comes before the
    // client took the stream, or after it let go of it, must not become an uncaught error.
    this.on('error', () => {});
  }

  /** A message on this port's data (0) or error (1) channel. */
  receive(kind: 0 | 1, data: Buffer): void {
    const toSkip = Math.min(this.skip[kind] ?? 0, data.length);
    this.skip[kind] = (this.skip[kind] ?? 0) - toSkip;
    const payload = data.subarray(toSkip);
    if (payload.length === 0 || this.destroyed) return;
    if (kind === 0) {
      this.push(payload);
      return;
    }
    // The kubelet writes a port's error in one message, once its connection in the pod ended.
    this.destroy(new Error(payload.toString('utf8').trim()));
  }

  /** The socket closed: the end of this port's data, unless it broke. */
  socketClosed(code: number): void {
    if (this.destroyed) return;
    if (code === ABNORMAL_CLOSURE) this.destroy(new Error(LOST_API_SERVER));
    else this.push(null);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.release();
    cb(err);
  }

  /** Sockets' no-ops that Node's HTTP client may call. */
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
}

/** Streams for each port of one port-forward socket; the socket is closed when all are done. */
function splitPorts(ws: WebSocket, count: number): TunnelStream[] {
  let open = count;
  const release = () => {
    open -= 1;
    if (open === 0) ws.terminate();
  };
  const streams = Array.from({ length: count }, (_, i) => {
    let released = false;
    return new TunnelStream(
      (payload, cb) => ws.send(channelFrame(2 * i, payload), { binary: true }, cb),
      () => {
        if (released) return;
        released = true;
        release();
      },
    );
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary || data.length === 0) return;
    const channel = data[0] ?? 0;
    streams[channel >> 1]?.receive((channel & 1) as 0 | 1, data.subarray(1));
  });
  ws.on('close', (code: number) => {
    for (const s of streams) s.socketClosed(code);
  });
  ws.on('error', (err) => {
    for (const s of streams) s.destroy(err);
  });
  return streams;
}

/** A call waiting for its port's stream. */
interface Waiter {
  readonly port: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  settled: boolean;
  resolve(stream: TunnelStream): void;
  reject(err: unknown): void;
}

export class ApiPortForwarder implements PortForwarder {
  private readonly client: KubeClient;
  /** Calls to a pod made in the same turn of the event loop, opened together. */
  private readonly gathering = new Map<string, Waiter[]>();

  constructor(client: KubeClient) {
    this.client = client;
  }

  async request(pod: PodRef, call: HttpCall): Promise<HttpReply> {
    const timeout = AbortSignal.timeout(call.timeoutMs);
    const signal = call.signal === undefined ? timeout : AbortSignal.any([call.signal, timeout]);
    const tunnel = await this.tunnel(pod, call.port, call.timeoutMs, signal);
    try {
      return await new Promise<HttpReply>((resolve, reject) => {
        const req = http.request({
          method: call.method,
          path: call.path,
          headers: { host: `localhost:${call.port}`, connection: 'close', 'user-agent': 'hahaha' },
          createConnection: () => tunnel as unknown as import('node:net').Socket,
          signal,
        });
        req.on('error', (err) => reject(signal.aborted ? new Error(`timed out after ${call.timeoutMs / 1000}s`) : err));
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            if (body.length < MAX_BODY) body += d;
          });
          const done = () => resolve({ status: res.statusCode ?? 0, body });
          res.on('end', done);
          // The sidecar may exit right after answering; what was read is the answer.
          res.on('error', done);
          res.on('aborted', done);
        });
        req.end();
      });
    } finally {
      tunnel.destroy();
    }
  }

  /**
   * A stream to the port, on a socket shared with the other calls to the pod made in the same
   * turn of the event loop (the reconciler starts a pod's stops together).
   */
  private tunnel(pod: PodRef, port: number, timeoutMs: number, signal: AbortSignal): Promise<TunnelStream> {
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const key = `${pod.namespace}/${pod.name}/${pod.uid}`;
      let waiters = this.gathering.get(key);
      if (waiters === undefined) {
        const gathered: Waiter[] = [];
        waiters = gathered;
        this.gathering.set(key, gathered);
        setImmediate(() => {
          this.gathering.delete(key);
          // Two calls to one port cannot share a socket: the kubelet has one stream per port.
          const groups: Waiter[][] = [];
          for (const w of gathered) {
            const group = groups.find((g) => g.every((o) => o.port !== w.port));
            if (group === undefined) groups.push([w]);
            else group.push(w);
          }
          for (const group of groups) void this.open(pod, group);
        });
      }
      const waiter: Waiter = {
        port,
        timeoutMs,
        signal,
        settled: false,
        resolve: (stream) => {
          waiter.settled = true;
          signal.removeEventListener('abort', onAbort);
          resolve(stream);
        },
        reject: (err) => {
          waiter.settled = true;
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => waiter.reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      waiters.push(waiter);
    });
  }

  /** Opens one socket for the group's ports and hands each waiter its stream. */
  private async open(pod: PodRef, group: readonly Waiter[]): Promise<void> {
    // The handshake is bounded by the longest call, and given up when every call has been.
    const giveUp = new AbortController();
    const onGone = () => {
      if (group.every((w) => w.settled)) giveUp.abort(new Error('every call gave up'));
    };
    for (const w of group) w.signal.addEventListener('abort', onGone, { once: true });
    onGone();
    let ws: WebSocket;
    try {
      ({ ws } = await openPodChannel(this.client, pod, 'portforward', new URLSearchParams({ ports: group.map((w) => w.port).join(',') }), {
        protocols: ['v4.channel.k8s.io'],
        timeoutMs: Math.max(...group.map((w) => w.timeoutMs)),
        signal: giveUp.signal,
      }));
    } catch (err) {
      for (const w of group) if (!w.settled) w.reject(err);
      return;
    } finally {
      for (const w of group) w.signal.removeEventListener('abort', onGone);
    }
    const streams = splitPorts(ws, group.length);
    group.forEach((w, i) => {
      const stream = streams[i] as TunnelStream;
      if (w.settled) stream.destroy();
      else w.resolve(stream);
    });
  }
}
