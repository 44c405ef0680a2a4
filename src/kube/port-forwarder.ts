/**
 * PortForwarder over the API server's pods/portforward WebSocket (v4.channel.k8s.io): the
 * tunnel becomes a Duplex stream and Node's own HTTP client speaks HTTP/1.1 over it.
 *
 * Channel 0 carries the port's data, channel 1 its errors; the server starts each channel with
 * the port number (2 bytes, little-endian), which is stripped here.
 */
import http from 'node:http';
import { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import type { HttpCall, HttpReply, PodRef, PortForwarder } from '../ports.ts';
import { ABNORMAL_CLOSURE, channelFrame, LOST_API_SERVER, openPodChannel } from './channel-socket.ts';
import type { KubeClient } from './kube-client.ts';

const MAX_BODY = 4096;

/** Wraps the data channel of a port-forward socket as a byte stream. */
class TunnelStream extends Duplex {
  private readonly ws: WebSocket;
  private readonly skip = [2, 2];
  private remoteError = '';

  constructor(ws: WebSocket) {
    super();
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary || data.length === 0) return;
      const channel = data[0] ?? -1;
      let payload = data.subarray(1);
      if (channel === 0 || channel === 1) {
        const toSkip = Math.min(this.skip[channel] ?? 0, payload.length);
        this.skip[channel] = (this.skip[channel] ?? 0) - toSkip;
        payload = payload.subarray(toSkip);
      }
      if (payload.length === 0) return;
      if (channel === 0) this.push(payload);
      else if (channel === 1) this.remoteError += payload.toString('utf8');
    });
    ws.on('close', (code: number) => {
      if (this.remoteError !== '') this.destroy(new Error(this.remoteError.trim()));
      else if (code === ABNORMAL_CLOSURE) this.destroy(new Error(LOST_API_SERVER));
      else this.push(null);
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.ws.send(channelFrame(0, chunk), { binary: true }, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.ws.terminate();
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

export class ApiPortForwarder implements PortForwarder {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  async request(pod: PodRef, call: HttpCall): Promise<HttpReply> {
    const { ws, signal } = await openPodChannel(this.client, pod, 'portforward', new URLSearchParams({ ports: String(call.port) }), {
      protocols: ['v4.channel.k8s.io'],
      timeoutMs: call.timeoutMs,
      signal: call.signal,
    });
    const tunnel = new TunnelStream(ws);
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
}
