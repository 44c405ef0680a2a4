/**
 * HttpPool, KubeClient's REST connections, against a local TCP server that writes its answers
 * byte for byte: connections are reused only when the answer allows it, a connection the server
 * closed while idle is never used, an idempotent request lost on a reused connection is sent once
 * more and a POST is not, and an idle pool does not keep the process alive.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HttpPool } from '../../src/kube/http-pool.ts';

interface Received {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly socket: net.Socket;
  /** Which connection it came on, counting from 1. */
  readonly conn: number;
}

/** What the server does with a request: write an answer (or nothing), maybe close. */
type Script = (r: Received) => void;

const json = (body: string, extra = '') =>
  `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

describe('HttpPool', () => {
  let script: Script = (r) => r.socket.write(json('{}'));
  const received: Received[] = [];
  const sockets: net.Socket[] = [];
  let conns = 0;
  const server = net.createServer((socket) => {
    conns += 1;
    const conn = conns;
    sockets.push(socket);
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const [method = '', path = ''] = head.split(' ');
        const body = buf.subarray(end + 4, end + 4 + length).toString();
        buf = buf.subarray(end + 4 + length);
        const r = { method, path, body, socket, conn };
        received.push(r);
        script(r);
      }
    });
  });
  let port = 0;
  const pool = (o: Partial<{ max: number; idleMs: number; maxBody: number }> = {}) =>
    new HttpPool({
      connect: () => net.connect({ host: '127.0.0.1', port }),
      host: `127.0.0.1:${port}`,
      max: o.max ?? 4,
      idleMs: o.idleMs ?? 5000,
      maxBody: o.maxBody ?? 1 << 20,
    });
  const get = (p: HttpPool, path = '/a', timeoutMs = 2000, signal?: AbortSignal) =>
    p.request({ method: 'GET', path, headers: { accept: 'application/json' }, timeoutMs, signal });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  beforeEach(() => {
    script = (r) => r.socket.write(json('{}'));
    received.length = 0;
    conns = 0;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends the method, path, host and headers, and a body with its length; reuses the connection', async () => {
    const p = pool();
    script = (r) => r.socket.write(json(`{"got":${JSON.stringify(r.body)}}`));
    const a = await p.request({
      method: 'POST',
      path: '/api/v1/namespaces/ns/events?x=1',
      headers: { 'content-type': 'application/json' },
      body: '{"ü":1}',
      timeoutMs: 2000,
    });
    assert.deepEqual(a, { status: 200, body: '{"got":"{\\"ü\\":1}"}' });
    assert.equal((await get(p)).status, 200);
    assert.deepEqual(
      received.map((r) => `${r.method} ${r.path} conn ${r.conn}`),
      ['POST /api/v1/namespaces/ns/events?x=1 conn 1', 'GET /a conn 1'],
    );
    p.close();
  });

  it('reads chunked and empty answers and keeps the connection; a close-delimited one ends with the connection', async () => {
    const p = pool();
    script = (r) => {
      if (r.path === '/chunked') r.socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
      else if (r.path === '/empty') r.socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else r.socket.end('HTTP/1.1 200 OK\r\n\r\nto the end');
    };
    assert.deepEqual(await get(p, '/chunked'), { status: 200, body: 'abcde' });
    assert.deepEqual(await get(p, '/empty'), { status: 204, body: '' });
    assert.deepEqual(await get(p, '/close'), { status: 200, body: 'to the end' });
    assert.deepEqual(await get(p, '/chunked'), { status: 200, body: 'abcde' });
    assert.deepEqual(
      received.map((r) => r.conn),
      [1, 1, 1, 2],
    );
    p.close();
  });

  it('does not reuse a connection the answer says to close, or one with bytes after the answer', async () => {
    const p = pool();
    script = (r) => {
      if (r.path === '/close') r.socket.write(json('{}', 'connection: close\r\n'));
      else if (r.path === '/extra') r.socket.write(`${json('{}')}HTTP/1.1 200 OK\r\n`);
      else r.socket.write(json('{}'));
    };
    await get(p, '/close');
    await get(p, '/extra');
    await get(p, '/next');
    assert.deepEqual(
      received.map((r) => r.conn),
      [1, 2, 3],
    );
    p.close();
  });

  it('drops a connection the server closed while it was idle, and opens a new one', async () => {
    const p = pool();
    await get(p);
    received[0]?.socket.end();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(p.connections, 0);
    assert.equal((await get(p)).status, 200);
    assert.deepEqual(
      received.map((r) => r.conn),
      [1, 2],
    );
    p.close();
  });

  it('sends a GET lost on a reused connection once more on a new one; a POST is not sent again', async () => {
    const p = pool();
    await get(p);
    // The server closes the reused connection as the next request arrives, without answering.
    script = (r) => {
      if (r.conn === 1) r.socket.destroy();
      else r.socket.write(json('{"again":true}'));
    };
    assert.deepEqual(await get(p, '/b'), { status: 200, body: '{"again":true}' });
    assert.deepEqual(
      received.map((r) => `${r.method} ${r.path} conn ${r.conn}`),
      ['GET /a conn 1', 'GET /b conn 1', 'GET /b conn 2'],
    );
    received.length = 0;
    script = (r) => r.socket.destroy();
    await assert.rejects(
      p.request({ method: 'POST', path: '/events', headers: {}, body: '{}', timeoutMs: 2000 }),
      /POST \/events: the connection closed before the answer was complete \(socket hang up\)/,
    );
    assert.deepEqual(
      received.map((r) => `${r.method} ${r.path}`),
      ['POST /events'],
    );
    p.close();
  });

  it('a GET lost on a new connection is not sent again', async () => {
    const p = pool();
    script = (r) => r.socket.destroy();
    await assert.rejects(get(p, '/c'), /GET \/c: the connection closed before the answer was complete/);
    assert.equal(received.length, 1);
    p.close();
  });

  it('fails a request without an answer after its timeout, naming it, and closes its connection', async () => {
    const p = pool();
    script = () => {};
    await assert.rejects(get(p, '/slow', 100), /^Error: GET \/slow: no answer within 0.1s$/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(p.connections, 0);
    p.close();
  });

  it('holds requests beyond max until a connection is free; an abort while waiting takes the request out', async () => {
    const p = pool({ max: 1 });
    let answer: (() => void) | undefined;
    script = (r) => {
      answer = () => r.socket.write(json('{}'));
    };
    const first = get(p, '/first');
    const ac = new AbortController();
    const waiting = get(p, '/aborted', 2000, ac.signal);
    const third = get(p, '/third');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      received.map((r) => r.path),
      ['/first'],
    );
    ac.abort(new Error('shutting down'));
    await assert.rejects(waiting, (err: Error) => err.name === 'AbortError' && (err.cause as Error).message === 'shutting down');
    script = (r) => r.socket.write(json('{}'));
    answer?.();
    await Promise.all([first, third]);
    assert.deepEqual(
      received.map((r) => `${r.path} conn ${r.conn}`),
      ['/first conn 1', '/third conn 1'],
    );
    p.close();
  });

  it('a request still waiting for a connection when its timeout passes fails, naming it, and is never sent', async () => {
    const p = pool({ max: 1 });
    script = () => {};
    const first = get(p, '/hung', 300);
    const waiting = get(p, '/waiting', 100);
    await assert.rejects(waiting, /^Error: GET \/waiting: no answer within 0.1s$/);
    await assert.rejects(first, /GET \/hung: no answer within 0.3s/);
    assert.deepEqual(
      received.map((r) => r.path),
      ['/hung'],
    );
    p.close();
  });

  it('fails an answer longer than maxBody', async () => {
    const p = pool({ maxBody: 10 });
    script = (r) => r.socket.write(json('{"a":"0123456789"}'));
    await assert.rejects(get(p), /GET \/a: the answer is longer than 10 bytes/);
    p.close();
  });

  it('fails a malformed answer, naming the request', async () => {
    const p = pool();
    script = (r) => r.socket.write('SPDY/3 200\r\n\r\n');
    await assert.rejects(get(p), /GET \/a: not an HTTP\/1.1 response/);
    p.close();
  });

  it('an idle connection does not keep the process alive, and closes after idleMs', async () => {
    const p = pool({ idleMs: 100 });
    await get(p);
    assert.equal(p.connections, 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(p.connections, 0);
    p.close();
    // A process that made a request and did nothing else ends on its own.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import net from 'node:net'; const { HttpPool } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/kube/http-pool.ts', import.meta.url)))});
         const p = new HttpPool({ connect: () => net.connect({ host: '127.0.0.1', port: ${port} }), host: 'x', max: 2, idleMs: 60000, maxBody: 1000 });
         const a = await p.request({ method: 'GET', path: '/child', headers: {}, timeoutMs: 2000 });
         console.log(a.status, p.connections);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 10_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    assert.equal(out.trim(), '200 1', 'answered, with its connection idle in the pool');
    assert.equal(code, 0, 'the process ended on its own');
  });
});
