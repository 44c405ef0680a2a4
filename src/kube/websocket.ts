/**
 * The client side of a Kubernetes "channel" WebSocket (exec, port-forward; RFC 6455), spoken
 * directly on the connection to the API server: the upgrade request, then frames. Each binary
 * message carries its channel number in its first byte.
 *
 * Why not the `ws` package: a sidecar stop opens one of these, sends a message or two and reads a
 * few; `ws` runs the upgrade through Node's http client and its frames through streams and event
 * emitters, which under V8's interpreter cost about as much CPU as the TLS handshake itself (a
 * port-forward to two ports, 600 times, in one process: 3.8-4.3 ms each with `ws` and
 * http.request, 2.0-2.2 ms here). What is left out is what these sockets never need: extensions
 * (permessage-deflate is not offered), text messages as strings, streaming of large messages.
 */
import { createHash, randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { ResponseReader } from './http1.ts';

/** RFC 6455 1.3: appended to the key to make Sec-WebSocket-Accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Close codes (RFC 6455 7.4.1). */
export const NORMAL_CLOSURE = 1000;
export const PROTOCOL_ERROR = 1002;
export const NO_STATUS = 1005;
/** A connection that ended without a close frame. */
export const ABNORMAL_CLOSURE = 1006;
export const TOO_BIG = 1009;
/**
 * A message larger than this ends the socket: exec's output and a sidecar's answer are read only
 * up to a few KiB, and the kubelet sends at most 32 KiB per message.
 */
const MAX_MESSAGE = 1024 * 1024;
/** The body of a refused upgrade kept for the error (a Status object is a few hundred bytes). */
const MAX_REFUSAL_BODY = 64 * 1024;
const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

export interface ChannelHandlers {
  /** A message: its channel (first byte) and the rest. Empty messages are not passed on. */
  message(channel: number, data: Buffer): void;
  /**
   * Once, when the connection has ended: the peer's close code ({@link NO_STATUS} if its close
   * frame had none, {@link ABNORMAL_CLOSURE} if there was no close frame), and for a peer that
   * broke the protocol, why.
   */
  close(code: number, error?: Error): void;
}

/** The upgrade's request, past the connection itself. */
export interface UpgradeRequest {
  /** Path and query. */
  readonly path: string;
  /** The Host header: host[:port] of the API server's URL. */
  readonly host: string;
  /** Sec-WebSocket-Protocol, most preferred first. */
  readonly protocols: readonly string[];
  /** Further headers (authorization, user-agent). */
  readonly headers: Readonly<Record<string, string>>;
  /** Bounds the whole upgrade; its reason is the rejection. */
  readonly signal?: AbortSignal | undefined;
}

/** What the server answered other than 101: its status and body (for the API server's Status). */
export interface Refusal {
  readonly status: number;
  readonly body: string;
}

/**
 * Sends the upgrade request on a fresh `socket` and reads the answer: a ChannelSocket, or the
 * refusal. Rejects when the connection fails or ends first, the answer is not a valid upgrade,
 * or `signal` aborts; the socket is then destroyed.
 */
export function upgrade(socket: Socket, request: UpgradeRequest): Promise<ChannelSocket | Refusal> {
  const key = randomBytes(16).toString('base64');
  let head: string;
  try {
    head = upgradeHead(request, key);
  } catch (err) {
    socket.destroy();
    return Promise.reject(err);
  }
  const { signal } = request;
  return new Promise((resolve, reject) => {
    const reader = new ResponseReader(MAX_REFUSAL_BODY);
    const finish = (result: ChannelSocket | Refusal | Error) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      if (result instanceof Error) {
        socket.destroy();
        reject(result);
      } else {
        resolve(result);
      }
    };
    const answered = () => {
      const status = reader.status ?? 0;
      if (status !== 101) {
        socket.destroy();
        finish({ status, body: reader.body.toString('utf8') });
        return;
      }
      const why = invalidUpgrade(reader.headers, key, request.protocols);
      if (why !== undefined) {
        finish(unreachable(why));
        return;
      }
      finish(new ChannelSocket(socket, reader.headers.get('sec-websocket-protocol') ?? '', reader.rest));
    };
    const onData = (data: Buffer) => {
      try {
        if (reader.push(data)) answered();
      } catch (err) {
        finish(unreachable((err as Error).message));
      }
    };
    const onEnd = () => {
      if (reader.status !== undefined && reader.status !== 101 && reader.end()) answered();
      else finish(unreachable('the connection closed before the upgrade was answered (socket hang up)'));
    };
    const onError = (err: Error) => finish(unreachable(err.message));
    const onAbort = () => finish(signal?.reason instanceof Error ? signal.reason : new Error(`aborted: ${String(signal?.reason)}`));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    socket.write(head);
  });
}

/**
 * A failure before the upgrade was answered, in the words the strategies read (causeOf in
 * strategies/strategy.ts tells a refused connection, which carried nothing, from one that broke).
 */
function unreachable(why: string): Error {
  return new Error(`cannot reach the API server: ${why}`);
}

/** The upgrade request's head. */
function upgradeHead(request: UpgradeRequest, key: string): string {
  const lines = [
    `GET ${request.path} HTTP/1.1`,
    `Host: ${request.host}`,
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${key}`,
    `Sec-WebSocket-Protocol: ${request.protocols.join(', ')}`,
  ];
  for (const [name, value] of Object.entries(request.headers)) {
    // A value with a line break would end the head early and smuggle in what follows.
    if (/[\r\n]/.test(value)) throw new Error(`invalid ${name} header: it contains a line break`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Why a 101 answer is not the upgrade asked for (RFC 6455 4.1), else undefined. */
export function invalidUpgrade(headers: ReadonlyMap<string, string>, key: string, protocols: readonly string[]): string | undefined {
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return 'the upgrade answer has no "Upgrade: websocket"';
  if (!/(^|,)\s*upgrade\s*(,|$)/i.test(headers.get('connection') ?? '')) return 'the upgrade answer has no "Connection: Upgrade"';
  const accept = createHash('sha1')
    .update(key + ACCEPT_GUID)
    .digest('base64');
  if (headers.get('sec-websocket-accept') !== accept) return 'invalid Sec-WebSocket-Accept header';
  if (headers.has('sec-websocket-extensions')) return 'the server chose a WebSocket extension, and none was offered';
  const chosen = headers.get('sec-websocket-protocol');
  if (chosen === undefined) return `the server chose none of the subprotocols ${protocols.join(', ')}`;
  if (!protocols.includes(chosen)) return `the server chose the subprotocol ${JSON.stringify(chosen)}, which was not offered`;
  return undefined;
}

/**
 * An open channel WebSocket. Frames that arrive before {@link start} (even with the upgrade's
 * answer) wait for it.
 */
export class ChannelSocket {
  /** The subprotocol the server chose (e.g. v5.channel.k8s.io). */
  readonly protocol: string;
  private readonly socket: Socket;
  private handlers: ChannelHandlers | undefined;
  private readonly frames = new FrameReader();
  private pending: Buffer[] = [];
  private closeCode = ABNORMAL_CLOSURE;
  private protocolError: Error | undefined;
  private closeSent = false;
  private ended = false;

  constructor(socket: Socket, protocol: string, rest: Buffer) {
    this.socket = socket;
    this.protocol = protocol;
    if (rest.length > 0) this.pending.push(rest);
    socket.on('data', (data: Buffer) => {
      if (this.handlers === undefined) this.pending.push(data);
      else this.read(data);
    });
    // A reset or any other error ends in 'close' without a close frame: 1006, reported there.
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.handlers === undefined) return;
      this.closed();
    });
  }

  /** Starts passing messages on, first those that arrived before. */
  start(handlers: ChannelHandlers): void {
    this.handlers = handlers;
    const pending = this.pending;
    this.pending = [];
    for (const data of pending) this.read(data);
    if (this.socket.destroyed) this.closed();
  }

  /** Sends `payload` as one binary message on `channel`. */
  send(channel: number, payload: Buffer): void {
    if (this.closeSent || this.socket.destroyed) return;
    const message = Buffer.allocUnsafe(1 + payload.length);
    message[0] = channel;
    payload.copy(message, 1);
    this.socket.write(maskedFrame(OP_BINARY, message));
  }

  /** Ends the connection at once, without the close handshake. */
  terminate(): void {
    this.socket.destroy();
  }

  private read(data: Buffer): void {
    if (this.ended) return;
    let frames: Frame[];
    try {
      frames = this.frames.push(data);
    } catch (err) {
      const tooBig = err instanceof MessageTooBig;
      this.fail(tooBig ? TOO_BIG : PROTOCOL_ERROR, err as Error);
      return;
    }
    for (const frame of frames) {
      if (this.ended) return;
      this.handle(frame);
    }
  }

  private handle(frame: Frame): void {
    switch (frame.op) {
      case OP_TEXT:
      case OP_BINARY:
        if (frame.payload.length > 0) this.handlers?.message(frame.payload[0] as number, frame.payload.subarray(1));
        return;
      case OP_PING:
        if (!this.closeSent) this.socket.write(maskedFrame(OP_PONG, frame.payload));
        return;
      case OP_PONG:
        return;
      case OP_CLOSE: {
        if (frame.payload.length === 1) {
          this.fail(PROTOCOL_ERROR, new Error('the API server sent a close frame with a 1-byte payload'));
          return;
        }
        this.closeCode = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : NO_STATUS;
        this.ended = true;
        // Answer with the same code (RFC 6455 5.5.1).
        // The server closes the connection next; nothing more is read from it either way.
        if (!this.closeSent) {
          this.closeSent = true;
          this.socket.write(maskedFrame(OP_CLOSE, frame.payload.subarray(0, 2)));
        }
        this.socket.destroySoon();
        return;
      }
    }
  }

  /** The server broke the protocol: say why in a close frame and drop the connection. */
  private fail(code: number, error: Error): void {
    this.ended = true;
    this.protocolError = error;
    this.closeCode = code;
    if (!this.closeSent) {
      this.closeSent = true;
      const payload = Buffer.alloc(2);
      payload.writeUInt16BE(code);
      this.socket.write(maskedFrame(OP_CLOSE, payload));
    }
    this.socket.destroySoon();
  }

  private closed(): void {
    const handlers = this.handlers;
    if (handlers === undefined) return;
    this.handlers = undefined;
    this.ended = true;
    handlers.close(this.closeCode, this.protocolError);
  }
}

interface Frame {
  readonly op: number;
  readonly payload: Buffer;
}

class MessageTooBig extends Error {}

/**
 * Frames from a server (RFC 6455 5.2): unmasked, no extension bits; control frames whole;
 * fragmented messages joined. Throws on a frame that breaks the protocol.
 */
export class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  /** The fragments of a message still open (its first frame had FIN unset). */
  private fragments: { op: number; parts: Buffer[]; bytes: number } | undefined;

  /** Reads the next bytes; returns the complete frames (messages) among them. */
  push(data: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? data : Buffer.concat([this.buffer, data]);
    const out: Frame[] = [];
    for (;;) {
      const frame = this.next();
      if (frame === undefined) return out;
      const message = this.assemble(frame);
      if (message !== undefined) out.push(message);
    }
  }

  private next(): (Frame & { fin: boolean }) | undefined {
    const b = this.buffer;
    if (b.length < 2) return undefined;
    const first = b[0] as number;
    const second = b[1] as number;
    if ((first & 0x70) !== 0) throw new Error('the API server set a WebSocket reserved bit, and no extension was agreed');
    if ((second & 0x80) !== 0) throw new Error('the API server sent a masked WebSocket frame');
    let length = second & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(MAX_MESSAGE)) throw new MessageTooBig(`the API server sent a WebSocket message over ${MAX_MESSAGE} bytes`);
      length = Number(big);
      offset = 10;
    }
    const op = first & 0x0f;
    const fin = (first & 0x80) !== 0;
    if (op >= 0x8 && (!fin || length > 125)) throw new Error('the API server sent a fragmented or long WebSocket control frame');
    if (length > MAX_MESSAGE) throw new MessageTooBig(`the API server sent a WebSocket message over ${MAX_MESSAGE} bytes`);
    if (b.length < offset + length) return undefined;
    const payload = b.subarray(offset, offset + length);
    this.buffer = b.subarray(offset + length);
    return { op, fin, payload };
  }

  private assemble(frame: Frame & { fin: boolean }): Frame | undefined {
    const { op, fin, payload } = frame;
    if (op === OP_CLOSE || op === OP_PING || op === OP_PONG) return { op, payload };
    if (op === OP_TEXT || op === OP_BINARY) {
      if (this.fragments !== undefined) throw new Error('the API server began a WebSocket message inside another');
      if (fin) return { op, payload };
      this.fragments = { op, parts: [Buffer.from(payload)], bytes: payload.length };
      return undefined;
    }
    if (op !== OP_CONTINUATION) throw new Error(`the API server sent a WebSocket frame of unknown opcode ${op}`);
    const open = this.fragments;
    if (open === undefined) throw new Error('the API server continued a WebSocket message it had not begun');
    open.bytes += payload.length;
    if (open.bytes > MAX_MESSAGE) throw new MessageTooBig(`the API server sent a WebSocket message over ${MAX_MESSAGE} bytes`);
    open.parts.push(Buffer.from(payload));
    if (!fin) return undefined;
    this.fragments = undefined;
    return { op: open.op, payload: Buffer.concat(open.parts, open.bytes) };
  }
}

/** Random bytes for keys and masks, drawn from a pool refilled when used up. */
const pool = Buffer.alloc(4096);
let poolUsed = pool.length;

function randomBytes(n: number): Buffer {
  if (poolUsed + n > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const out = Buffer.from(pool.subarray(poolUsed, poolUsed + n));
  poolUsed += n;
  return out;
}

/** A client frame (RFC 6455 5.3: masked), FIN set. */
export function maskedFrame(op: number, payload: Buffer): Buffer {
  const length = payload.length;
  const head = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + length);
  frame[0] = 0x80 | op;
  if (head === 2) {
    frame[1] = 0x80 | length;
  } else if (head === 4) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, head);
  const body = head + 4;
  for (let i = 0; i < length; i++) frame[body + i] = (payload[i] as number) ^ (mask[i & 3] as number);
  return frame;
}
