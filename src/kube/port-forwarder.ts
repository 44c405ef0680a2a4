/**
 * PortForwarder over the API server's pods/portforward WebSocket (v4.channel.k8s.io): each port
 * of the tunnel carries one HTTP/1.1 exchange, written and read here (./http1.ts) rather than by
 * Node's http client over a stream, which cost as much CPU as the rest of the call.
 *
 * One WebSocket per pod carries every port asked for at the same moment (`ports=4191,24444`):
 * the sidecars of a pod are stopped in parallel, and each WebSocket costs a TLS connection to
 * the API server, an upgrade and a stream at the kubelet. Port i of the socket has data channel
 * 2i and error channel 2i+1; the kubelet starts each channel with the port number (2 bytes,
 * little-endian), which is stripped here, and writes a port's error (e.g. connection refused)
 * as one message on its error channel, independently of the other ports. The socket closes once
 * every port's connection in the pod has ended; here it is closed once every call is done.
 */
import type { HttpCall, HttpReply, PodRef, PortForwarder } from '../ports.ts';
import { ABNORMAL_CLOSURE, LOST_API_SERVER, openPodChannel } from './channel-socket.ts';
import { ResponseReader } from './http1.ts';
import type { KubeClient } from './kube-client.ts';
import type { ChannelSocket } from './websocket.ts';

const MAX_BODY = 4096;
const PORT_PREFIX_BYTES = 2;
/** Methods whose empty body Node's http client also announces with Content-Length: 0. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** What a port of the socket tells the call using it. */
interface PortListener {
  data(payload: Buffer): void;
  /** The port's error message, or the socket's end: `error` undefined for a clean end. */
  end(error: Error | undefined): void;
}

/** One port of a shared port-forward socket. */
class TunnelPort {
  private readonly sendData: (payload: Buffer) => void;
  private readonly onRelease: () => void;
  /** The port-number prefix still to strip, per channel: [data, error]. */
  private readonly skip = [PORT_PREFIX_BYTES, PORT_PREFIX_BYTES];
  private listener: PortListener | undefined;
  /** What happened before a listener came: data, then how the port ended. */
  private early: Buffer[] = [];
  private ending: { error: Error | undefined } | undefined;
  private released = false;

  constructor(sendData: (payload: Buffer) => void, release: () => void) {
    this.sendData = sendData;
    this.onRelease = release;
  }

  /** Starts passing what the port receives on, first what came before. */
  listen(listener: PortListener): void {
    this.listener = listener;
    for (const data of this.early) listener.data(data);
    this.early = [];
    if (this.ending !== undefined) listener.end(this.ending.error);
  }

  send(payload: Buffer): void {
    if (!this.released) this.sendData(payload);
  }

  /** A message on this port's data (0) or error (1) channel. */
  receive(kind: 0 | 1, data: Buffer): void {
    const toSkip = Math.min(this.skip[kind] ?? 0, data.length);
    this.skip[kind] = (this.skip[kind] ?? 0) - toSkip;
    const payload = data.subarray(toSkip);
    if (payload.length === 0 || this.ending !== undefined) return;
    if (kind === 0) {
      if (this.listener === undefined) this.early.push(payload);
      else this.listener.data(payload);
      return;
    }
    // The kubelet writes a port's error in one message, once its connection in the pod ended.
    this.finish(new Error(payload.toString('utf8').trim()));
  }

  /** The socket ended: the end of this port's data, unless it broke. */
  socketClosed(code: number, error: Error | undefined): void {
    this.finish(error ?? (code === ABNORMAL_CLOSURE ? new Error(LOST_API_SERVER) : undefined));
  }

  /** The call is done with the port. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.listener = undefined;
    this.onRelease();
  }

  private finish(error: Error | undefined): void {
    if (this.ending !== undefined) return;
    this.ending = { error };
    this.listener?.end(error);
  }
}

/** The ports of one port-forward socket; the socket is closed once every call let go of its port. */
function splitPorts(socket: ChannelSocket, count: number): TunnelPort[] {
  let open = count;
  const ports = Array.from(
    { length: count },
    (_, i) =>
      new TunnelPort(
        (payload) => socket.send(2 * i, payload),
        () => {
          open -= 1;
          if (open === 0) socket.terminate();
        },
      ),
  );
  socket.start({
    message(channel, data) {
      ports[channel >> 1]?.receive((channel & 1) as 0 | 1, data);
    },
    close(code, error) {
      for (const p of ports) p.socketClosed(code, error);
    },
  });
  return ports;
}

/**
 * Sends one request on `port` and reads the answer. The sidecar may exit right after it
 * answered, cutting its body short: what was read is the answer.
 */
function exchange(port: TunnelPort, call: HttpCall, signal: AbortSignal): Promise<HttpReply> {
  const reader = new ResponseReader(MAX_BODY);
  return new Promise<HttpReply>((resolve, reject) => {
    const settle = (outcome: HttpReply | Error) => {
      signal.removeEventListener('abort', onAbort);
      port.release();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const reply = () => ({ status: reader.status ?? 0, body: reader.body.toString('utf8') });
    const onAbort = () => settle(new Error(`timed out after ${call.timeoutMs / 1000}s`));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    port.listen({
      data(payload) {
        try {
          if (reader.push(payload)) settle(reply());
        } catch (err) {
          settle(new Error(`unreadable answer from port ${call.port}: ${(err as Error).message}`));
        }
      },
      end(error) {
        reader.end();
        if (reader.status !== undefined) settle(reply());
        else settle(error ?? new Error('the port-forward closed before the sidecar answered (socket hang up)'));
      },
    });
    const body = BODY_METHODS.has(call.method) ? 'Content-Length: 0\r\n' : '';
    port.send(
      Buffer.from(`${call.method} ${call.path} HTTP/1.1\r\nHost: localhost:${call.port}\r\nConnection: close\r\nUser-Agent: hahaha\r\n${body}\r\n`, 'latin1'),
    );
  });
}

/** A call waiting for its port. */
interface Waiter {
  readonly port: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  settled: boolean;
  resolve(port: TunnelPort): void;
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
    // A line break or blank in either would make the request another one.
    if (!/^[A-Z]+$/.test(call.method) || !/^\/\S*$/.test(call.path)) {
      throw new Error(`invalid HTTP request line: ${JSON.stringify(`${call.method} ${call.path}`)}`);
    }
    const timeout = AbortSignal.timeout(call.timeoutMs);
    const signal = call.signal === undefined ? timeout : AbortSignal.any([call.signal, timeout]);
    const port = await this.tunnel(pod, call.port, call.timeoutMs, signal);
    return exchange(port, call, signal);
  }

  /**
   * The port's channel, on a socket shared with the other calls to the pod made in the same
   * turn of the event loop (the reconciler starts a pod's stops together).
   */
  private tunnel(pod: PodRef, port: number, timeoutMs: number, signal: AbortSignal): Promise<TunnelPort> {
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
        resolve: (tunnelPort) => {
          waiter.settled = true;
          signal.removeEventListener('abort', onAbort);
          resolve(tunnelPort);
        },
        reject: (err) => {
          waiter.settled = true;
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      // Timed out before the port was open: the request was never written, so the sidecar was
      // not asked (the kubelet only connects to the port); said so, for the cause (strategy.ts).
      const onAbort = () =>
        waiter.reject(
          (signal.reason as Error | undefined)?.name === 'TimeoutError'
            ? new Error(`the API server did not open the port-forward within ${timeoutMs / 1000}s`)
            : signal.reason,
        );
      signal.addEventListener('abort', onAbort, { once: true });
      waiters.push(waiter);
    });
  }

  /** Opens one socket for the group's ports and hands each waiter its port. */
  private async open(pod: PodRef, group: readonly Waiter[]): Promise<void> {
    // The handshake is bounded by the longest call, and given up when every call has been.
    const giveUp = new AbortController();
    const onGone = () => {
      if (group.every((w) => w.settled)) giveUp.abort(new Error('every call gave up'));
    };
    for (const w of group) w.signal.addEventListener('abort', onGone, { once: true });
    onGone();
    let socket: ChannelSocket;
    try {
      ({ socket } = await openPodChannel(this.client, pod, 'portforward', new URLSearchParams({ ports: group.map((w) => w.port).join(',') }), {
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
    const ports = splitPorts(socket, group.length);
    group.forEach((w, i) => {
      const port = ports[i] as TunnelPort;
      if (w.settled) port.release();
      else w.resolve(port);
    });
  }
}
