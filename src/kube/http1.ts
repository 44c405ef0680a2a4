/**
 * An HTTP/1.1 response read from bytes as they arrive (RFC 9112), where no Node ClientRequest
 * runs: the API server's answer to a WebSocket upgrade, and a sidecar's answer through a
 * port-forward tunnel. The body ends where its Content-Length, its chunked coding or the
 * connection ends (section 6.3); at most `maxBody` bytes of it are kept. Interim 1xx responses
 * (100 Continue, 103 Early Hints) are skipped; a 101 ends the response at its head, and the bytes
 * after it belong to the upgraded protocol.
 */

/** A head longer than this is refused (Node's http client allows 16 KiB too). */
const MAX_HEAD = 16 * 1024;
/** A chunk-size line longer than this is refused. */
const MAX_CHUNK_LINE = 1024;

type BodyMode = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };
type ChunkState = 'size' | 'data' | 'data-end' | 'trailers';

export class ResponseReader {
  /** The status code, once the head is read. */
  status: number | undefined;
  /** Header fields by lower-case name; repeated fields joined with ", ". */
  readonly headers = new Map<string, string>();
  /** Whether the response is complete. */
  done = false;
  /** After a 101: the bytes that followed the head. */
  rest: Buffer = Buffer.alloc(0);
  /** Whether the body was longer than `maxBody` (only its first maxBody bytes are kept). */
  overflowed = false;
  /** Whether bytes came after a complete response (other than a 101's). */
  trailing = false;
  private readonly maxBody: number;
  private head: Buffer = Buffer.alloc(0);
  private mode: BodyMode | undefined;
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private chunk: ChunkState = 'size';
  private chunkLeft = 0;
  private line = '';

  constructor(maxBody: number) {
    this.maxBody = maxBody;
  }

  /** The body read so far (its first `maxBody` bytes). */
  get body(): Buffer {
    return Buffer.concat(this.kept, this.keptBytes);
  }

  /** Reads the next bytes; throws on a malformed response. Returns whether it is complete. */
  push(data: Buffer): boolean {
    let bytes = data;
    if (this.done && bytes.length > 0 && this.status !== 101) this.trailing = true;
    while (!this.done && bytes.length > 0) {
      bytes = this.mode === undefined ? this.readHead(bytes) : this.readBody(bytes);
    }
    if (bytes.length > 0 && this.status !== 101) this.trailing = true;
    return this.done;
  }

  /**
   * Whether the connection can carry another request: the response is complete, its end was
   * known without closing (a length or chunked coding), the server did not say `Connection:
   * close`, and nothing followed it.
   */
  get reusable(): boolean {
    return (
      this.done &&
      this.status !== 101 &&
      this.mode !== undefined &&
      this.mode.kind !== 'close' &&
      !this.trailing &&
      !/(^|,)\s*close\s*(,|$)/i.test(this.headers.get('connection') ?? '')
    );
  }

  /**
   * The connection ended. Returns whether the response was complete: a body that runs to the end
   * of the connection is, a shorter one than announced (or no head at all) is not.
   */
  end(): boolean {
    if (!this.done && this.mode?.kind === 'close') this.done = true;
    return this.done;
  }

  private readHead(bytes: Buffer): Buffer {
    const start = Math.max(0, this.head.length - 3);
    this.head = this.head.length === 0 ? bytes : Buffer.concat([this.head, bytes]);
    const crlf = this.head.indexOf('\r\n\r\n', start);
    const lf = this.head.indexOf('\n\n', start);
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
    if (end < 0) {
      if (this.head.length > MAX_HEAD) throw new Error(`HTTP response head longer than ${MAX_HEAD} bytes`);
      return Buffer.alloc(0);
    }
    if (end > MAX_HEAD) throw new Error(`HTTP response head longer than ${MAX_HEAD} bytes`);
    const text = this.head.subarray(0, end).toString('latin1');
    const after = this.head.subarray(end);
    this.head = Buffer.alloc(0);
    const lines = text.split(/\r?\n/);
    const statusLine = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (statusLine === null) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
    const status = Number(statusLine[1]);
    if (status >= 100 && status < 200 && status !== 101) return after;
    this.status = status;
    for (const line of lines.slice(1)) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`malformed HTTP header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const before = this.headers.get(name);
      this.headers.set(name, before === undefined ? value : `${before}, ${value}`);
    }
    this.mode = this.bodyMode(status);
    if (status === 101) {
      this.rest = after;
      this.done = true;
      return Buffer.alloc(0);
    }
    if (this.mode.kind === 'none' || (this.mode.kind === 'length' && this.mode.left === 0)) this.done = true;
    return after;
  }

  private bodyMode(status: number): BodyMode {
    if (status === 101 || status === 204 || status === 304) return { kind: 'none' };
    const coding = this.headers.get('transfer-encoding');
    if (coding !== undefined) {
      if (/(^|,)\s*chunked\s*$/i.test(coding)) return { kind: 'chunked' };
      return { kind: 'close' };
    }
    const length = this.headers.get('content-length');
    if (length === undefined) return { kind: 'close' };
    // Repeated identical values ("5, 5") are one length (RFC 9110 8.6).
    const values = new Set(length.split(',').map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) throw new Error(`invalid Content-Length: ${JSON.stringify(length.slice(0, 40))}`);
    return { kind: 'length', left: Number(only) };
  }

  private readBody(bytes: Buffer): Buffer {
    const mode = this.mode as BodyMode;
    switch (mode.kind) {
      case 'none':
        this.done = true;
        return Buffer.alloc(0);
      case 'close':
        this.keep(bytes);
        return Buffer.alloc(0);
      case 'length': {
        const take = Math.min(mode.left, bytes.length);
        this.keep(bytes.subarray(0, take));
        mode.left -= take;
        if (mode.left === 0) this.done = true;
        return bytes.subarray(take);
      }
      case 'chunked':
        return this.readChunked(bytes);
    }
  }

  private readChunked(bytes: Buffer): Buffer {
    switch (this.chunk) {
      case 'data': {
        const take = Math.min(this.chunkLeft, bytes.length);
        this.keep(bytes.subarray(0, take));
        this.chunkLeft -= take;
        if (this.chunkLeft === 0) this.chunk = 'data-end';
        return bytes.subarray(take);
      }
      default: {
        // 'size', 'data-end' and 'trailers' read a line each.
        const nl = bytes.indexOf(10);
        const part = bytes.subarray(0, nl < 0 ? bytes.length : nl).toString('latin1');
        this.line += part;
        if (this.line.length > MAX_CHUNK_LINE) throw new Error('malformed chunked body: a line longer than 1 KiB');
        if (nl < 0) return Buffer.alloc(0);
        const line = this.line.replace(/\r$/, '');
        this.line = '';
        this.endOfLine(line);
        return bytes.subarray(nl + 1);
      }
    }
  }

  private endOfLine(line: string): void {
    if (this.chunk === 'data-end') {
      if (line !== '') throw new Error('malformed chunked body: no line end after a chunk');
      this.chunk = 'size';
    } else if (this.chunk === 'size') {
      const size = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
      if (size === null) throw new Error(`malformed chunk size: ${JSON.stringify(line.slice(0, 40))}`);
      this.chunkLeft = Number.parseInt(size[1] as string, 16);
      this.chunk = this.chunkLeft === 0 ? 'trailers' : 'data';
    } else if (line === '') {
      this.done = true;
    }
  }

  private keep(bytes: Buffer): void {
    const room = this.maxBody - this.keptBytes;
    if (bytes.length > room) this.overflowed = true;
    if (room <= 0 || bytes.length === 0) return;
    const part = bytes.length > room ? bytes.subarray(0, room) : bytes;
    this.kept.push(part);
    this.keptBytes += part.length;
  }
}
