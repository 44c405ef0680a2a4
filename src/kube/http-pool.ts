/**
 * The REST requests' connections to the API server: HTTP/1.1 over keep-alive sockets that
 * KubeClient opens (TLS with its session resumed, or plain TCP), each answer read by
 * ResponseReader.
 *
 * Why not Node's https.request: an Event posted through ClientRequest, its keep-alive Agent and
 * IncomingMessage costs about 0.7 ms of CPU under the image's node flags, most of it the
 * interpreter running Node's stream and event machinery; written and read here, about 0.3 ms
 * (`npm run bench:channel`). A reaped pod makes five REST requests.
 *
 * At most `max` connections are open; more requests wait for one. An idle connection closes
 * after `idleMs`, or as soon as the server closes it or sends anything unasked, and does not
 * keep the process alive. An idempotent request (GET, PUT, DELETE) that a reused connection
 * lost before any of its answer arrived is sent once more, on a new connection: the server most
 * likely closed the connection as idle while the request was on its way (Go's net/http retries
 * the same case). A POST is not: it may have been acted on.
 */
import type { Socket } from 'node:net';
import { ResponseReader } from './http1.ts';

/** What a request is: its head's fields, and a body already serialized. */
export interface PoolRequest {
  /** Not HEAD: its answer announces a body that never comes, which the reader would wait for. */
  readonly method: string;
  /** The path and query, as they go on the request line. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

export interface PoolAnswer {
  readonly status: number;
  readonly body: string;
}

export interface PoolOptions {
  /** Opens a connection; writes made before it is established wait for it. */
  readonly connect: () => Socket;
  /** The Host header's value. */
  readonly host: string;
  readonly max: number;
  readonly idleMs: number;
  /** A longer answer fails the request (a list page of 500 pods is a few MiB). */
  readonly maxBody: number;
}

/** Methods whose repetition changes nothing more (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'OPTIONS', 'PUT', 'DELETE']);

interface Conn {
  readonly socket: Socket;
  /** Whether it carried a request before the current one. */
  used: boolean;
  /** While idle: its timer, and what closes it on the server's close or unasked bytes. */
  idleTimer?: NodeJS.Timeout | undefined;
  onIdleEvent?: (() => void) | undefined;
}

/** An error of a request on a reused connection that may be sent again. */
class LostOnReuse extends Error {}

/**
 * What ends one request early, waiting for a connection included: its deadline (as Node's
 * ClientRequest timer did, a request still waiting when it passes is never sent) and its signal.
 */
interface Bounds {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  aborted(): Error;
  timedOut(): Error;
}

export class HttpPool {
  private readonly opts: PoolOptions;
  /** Idle connections, the most recently used last. */
  private readonly idle: Conn[] = [];
  private open = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;

  constructor(opts: PoolOptions) {
    this.opts = opts;
  }

  /** Sends a request and reads the whole answer; rejects on a broken connection, the timeout or an abort. */
  async request(req: PoolRequest): Promise<PoolAnswer> {
    const { method, path, signal } = req;
    const bounds: Bounds = {
      deadline: Date.now() + req.timeoutMs,
      signal,
      aborted: () => Object.assign(new Error(`${method} ${path}: aborted`), { name: 'AbortError', cause: signal?.reason }),
      timedOut: () => new Error(`${method} ${path}: no answer within ${req.timeoutMs / 1000}s`),
    };
    const conn = await this.acquire(bounds, false);
    try {
      return await this.exchange(conn, req, bounds);
    } catch (err) {
      if (!(err instanceof LostOnReuse) || Date.now() >= bounds.deadline) throw err instanceof LostOnReuse ? (err.cause as Error) : err;
      return this.exchange(await this.acquire(bounds, true), req, bounds);
    }
  }

  /** Closes the idle connections now, and the others once their answers are read. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) {
      this.unidle(c);
      c.socket.destroy();
    }
  }

  /** How many connections are open. */
  get connections(): number {
    return this.open;
  }

  /** An idle connection (unless `fresh`), else a new one, else the next one freed. */
  private async acquire(bounds: Bounds, fresh: boolean): Promise<Conn> {
    const { signal } = bounds;
    for (;;) {
      if (signal?.aborted) throw bounds.aborted();
      if (Date.now() >= bounds.deadline) throw bounds.timedOut();
      const c = fresh ? undefined : this.idle.pop();
      if (c !== undefined) {
        this.unidle(c);
        c.socket.ref();
        return c;
      }
      if (this.open < this.opts.max) return this.dial();
      // A retry needs a new connection: the idle one longest unused makes room for it.
      const oldest = fresh ? this.idle.shift() : undefined;
      if (oldest !== undefined) {
        this.unidle(oldest);
        oldest.socket.destroy();
      }
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        const wake = () => {
          done();
          resolve();
        };
        const giveUp = (err: Error) => {
          done();
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(err);
        };
        const onAbort = () => giveUp(bounds.aborted());
        const timer = setTimeout(() => giveUp(bounds.timedOut()), Math.max(0, bounds.deadline - Date.now()));
        this.waiting.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  private dial(): Conn {
    const socket = this.opts.connect();
    this.open += 1;
    const c: Conn = { socket, used: false };
    socket.once('close', () => {
      this.open -= 1;
      const i = this.idle.indexOf(c);
      if (i >= 0) this.idle.splice(i, 1);
      this.unidle(c);
      this.waiting.shift()?.();
    });
    // A request's own listener reports its errors; one while idle only closes the connection.
    socket.on('error', () => {});
    return c;
  }

  /** One request on `conn`, which it leaves idle in the pool, or closed. */
  private exchange(conn: Conn, req: PoolRequest, bounds: Bounds): Promise<PoolAnswer> {
    const { method, path, signal } = req;
    const reused = conn.used;
    conn.used = true;
    const { socket } = conn;
    return new Promise<PoolAnswer>((resolve, reject) => {
      const reader = new ResponseReader(this.opts.maxBody);
      let received = false;
      let settled = false;
      const settle = (err: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.off('data', onData);
        socket.off('end', onClosed);
        socket.off('close', onClosed);
        socket.off('error', onError);
        if (err === undefined && reader.overflowed) err = new Error(`${method} ${path}: the answer is longer than ${this.opts.maxBody} bytes`);
        if (err !== undefined) {
          socket.destroy();
          reject(err);
          return;
        }
        if (reader.reusable && !this.closed) this.release(conn);
        else socket.destroy();
        resolve({ status: reader.status ?? 0, body: reader.body.toString('utf8') });
      };
      /** A broken connection: lost on reuse (sent again) when nothing of the answer came. */
      const lost = (err: Error) => settle(reused && !received && IDEMPOTENT.has(method) ? new LostOnReuse(err.message, { cause: err }) : err);
      const onData = (data: Buffer) => {
        received = true;
        try {
          if (reader.push(data)) settle(undefined);
        } catch (err) {
          settle(new Error(`${method} ${path}: ${(err as Error).message}`));
        }
      };
      const onClosed = () => {
        // An answer whose body runs to the end of the connection is complete now.
        if (reader.status !== undefined && reader.end()) settle(undefined);
        else lost(Object.assign(new Error(`${method} ${path}: the connection closed before the answer was complete (socket hang up)`), { code: 'ECONNRESET' }));
      };
      const onError = (err: NodeJS.ErrnoException) => lost(Object.assign(new Error(`${method} ${path}: ${err.message}`), { code: err.code, cause: err }));
      const onAbort = () => settle(bounds.aborted());
      const timer = setTimeout(() => settle(bounds.timedOut()), Math.max(0, bounds.deadline - Date.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.on('data', onData);
      socket.once('end', onClosed);
      socket.once('close', onClosed);
      socket.on('error', onError);
      if (socket.destroyed) {
        onClosed();
        return;
      }
      let head = `${method} ${path} HTTP/1.1\r\nhost: ${this.opts.host}\r\n`;
      for (const name in req.headers) head += `${name}: ${req.headers[name]}\r\n`;
      if (req.body !== undefined) head += `content-length: ${Buffer.byteLength(req.body)}\r\n`;
      else if (method === 'POST' || method === 'PUT' || method === 'PATCH') head += 'content-length: 0\r\n';
      socket.write(req.body === undefined ? `${head}\r\n` : `${head}\r\n${req.body}`);
    });
  }

  /** Puts an answered connection back, for the next request or one waiting. */
  private release(c: Conn): void {
    const end = () => {
      const i = this.idle.indexOf(c);
      if (i >= 0) this.idle.splice(i, 1);
      this.unidle(c);
      c.socket.destroy();
    };
    c.onIdleEvent = end;
    c.socket.once('data', end);
    c.socket.once('end', end);
    c.idleTimer = setTimeout(end, this.opts.idleMs);
    c.idleTimer.unref();
    // An idle connection does not keep the process alive (as Node's keep-alive agent).
    c.socket.unref();
    this.idle.push(c);
    this.waiting.shift()?.();
  }

  private unidle(c: Conn): void {
    clearTimeout(c.idleTimer);
    c.idleTimer = undefined;
    if (c.onIdleEvent !== undefined) {
      c.socket.off('data', c.onIdleEvent);
      c.socket.off('end', c.onIdleEvent);
      c.onIdleEvent = undefined;
    }
  }
}
