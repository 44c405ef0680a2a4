/**
 * The client's own channel WebSocket (src/kube/websocket.ts) and HTTP/1.1 response reader
 * (src/kube/http1.ts): the byte-level rules as tables, and the client against the `ws` package's
 * server on a local port (what the API server and the kubelet answer is tested in test/e2e/).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type WebSocket, WebSocketServer } from 'ws';
import { ResponseReader } from '../../src/kube/http1.ts';
import { ApiError } from '../../src/kube/kube-client.ts';
import { ApiPortForwarder } from '../../src/kube/port-forwarder.ts';
import { ABNORMAL_CLOSURE, type ChannelSocket, FrameReader, invalidUpgrade, maskedFrame } from '../../src/kube/websocket.ts';
import { clientOf } from './local-api-server.ts';

/** Reads `text` in pieces of `step` bytes; returns the reader and whether it completed. */
function read(text: string, step = Number.POSITIVE_INFINITY, maxBody = 4096): { reader: ResponseReader; done: boolean } {
  const reader = new ResponseReader(maxBody);
  const bytes = Buffer.from(text, 'latin1');
  let done = false;
  for (let i = 0; i < bytes.length && !done; i += Math.min(step, bytes.length)) done = reader.push(bytes.subarray(i, i + step));
  return { reader, done };
}

describe('ResponseReader', () => {
  const complete: [string, string, number, string][] = [
    ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshutdown\n', 200, 'shutdown\n'],
    [
      'chunked, with an extension and a trailer',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nshut\r\n5\r\ndown\n\r\n0\r\nX-T: 1\r\n\r\n',
      200,
      'shutdown\n',
    ],
    [
      'interim 100 and 103 skipped',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok',
      202,
      'ok',
    ],
    ['204 has no body', 'HTTP/1.1 204 No Content\r\n\r\n', 204, ''],
    ['bare LF line ends', 'HTTP/1.0 200 OK\nContent-Length: 2\n\nok', 200, 'ok'],
    ['a repeated identical Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok', 200, 'ok'],
    ['Content-Length: 0', 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', 200, ''],
  ];
  for (const [name, text, status, body] of complete) {
    it(`${name}: complete in one piece and byte by byte`, () => {
      for (const step of [Number.POSITIVE_INFINITY, 1]) {
        const { reader, done } = read(text, step);
        assert.equal(done, true, `step ${step}`);
        assert.equal(reader.status, status);
        assert.equal(reader.body.toString('latin1'), body);
      }
    });
  }

  it('a body without a length runs to the end of the connection', () => {
    const { reader, done } = read('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye');
    assert.equal(done, false);
    assert.equal(reader.end(), true);
    assert.equal(reader.body.toString(), 'bye');
  });

  it('a body cut short is not complete, and keeps what came', () => {
    const { reader, done } = read('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshut');
    assert.equal(done, false);
    assert.equal(reader.end(), false);
    assert.equal(reader.status, 200);
    assert.equal(reader.body.toString(), 'shut');
  });

  it('keeps at most maxBody bytes of the body and still finds its end', () => {
    const { reader, done } = read(`HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\n${'x'.repeat(100)}`, 7, 10);
    assert.equal(done, true);
    assert.equal(reader.body.toString(), 'x'.repeat(10));
  });

  it('a 101 ends at its head; the bytes after it are left for the upgraded protocol', () => {
    const { reader, done } = read('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x82\x01\x01');
    assert.equal(done, true);
    assert.equal(reader.headers.get('upgrade'), 'websocket');
    assert.deepEqual([...reader.rest], [0x82, 0x01, 0x01]);
  });

  const malformed: [string, string, RegExp][] = [
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n', /not an HTTP\/1.1 response: "SSH-2.0-OpenSSH"/],
    ['a header line without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n', /malformed HTTP header line: "broken"/],
    ['two different lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok', /invalid Content-Length: "2, 3"/],
    ['a chunk size that is not hex', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /malformed chunk size: "zz"/],
    ['a chunk without its line end', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n', /no line end after a chunk/],
    ['a head that never ends', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17_000)}`, /head longer than 16384 bytes/],
  ];
  for (const [name, text, error] of malformed) {
    it(`refuses ${name}`, () => {
      assert.throws(() => read(text), error);
    });
  }
});

/** A server frame: unmasked, FIN as given. */
function serverFrame(op: number, payload: Buffer, fin = true): Buffer {
  const head =
    payload.length < 126 ? Buffer.of((fin ? 0x80 : 0) | op, payload.length) : Buffer.of((fin ? 0x80 : 0) | op, 126, payload.length >> 8, payload.length & 255);
  return Buffer.concat([head, payload]);
}

describe('FrameReader', () => {
  it('reads frames split anywhere, joins fragments, and passes control frames between fragments', () => {
    const bytes = Buffer.concat([
      serverFrame(2, Buffer.from('\x01ab'), false),
      serverFrame(9, Buffer.from('ping')),
      serverFrame(0, Buffer.from('cd')),
      serverFrame(2, Buffer.alloc(300, 7)),
    ]);
    for (const step of [bytes.length, 1, 3]) {
      const frames = new FrameReader();
      const got: [number, string][] = [];
      for (let i = 0; i < bytes.length; i += step) {
        for (const f of frames.push(bytes.subarray(i, i + step)))
          got.push([f.op, f.op === 2 && f.payload.length < 10 ? f.payload.toString('latin1') : `${f.payload.length} bytes`]);
      }
      assert.deepEqual(got, [
        [9, '4 bytes'],
        [2, '\x01abcd'],
        [2, '300 bytes'],
      ]);
    }
  });

  const broken: [string, Buffer, RegExp][] = [
    ['a masked frame', Buffer.of(0x82, 0x81, 1, 2, 3, 4, 5), /masked WebSocket frame/],
    ['a reserved bit', Buffer.of(0xc2, 0x00), /reserved bit/],
    ['an unknown opcode', Buffer.of(0x83, 0x00), /unknown opcode 3/],
    ['a fragmented control frame', Buffer.of(0x09, 0x00), /fragmented or long WebSocket control frame/],
    ['a continuation without a start', Buffer.of(0x80, 0x00), /continued a WebSocket message it had not begun/],
    [
      'a message inside another',
      Buffer.concat([serverFrame(2, Buffer.from('a'), false), serverFrame(2, Buffer.from('b'))]),
      /began a WebSocket message inside another/,
    ],
    ['a message over 1 MiB', Buffer.of(0x82, 127, 0, 0, 0, 0, 0, 0x20, 0, 0), /message over 1048576 bytes/],
  ];
  for (const [name, bytes, error] of broken) {
    it(`refuses ${name}`, () => {
      assert.throws(() => new FrameReader().push(bytes), error);
    });
  }
});

describe('maskedFrame', () => {
  for (const length of [0, 125, 126, 65_535, 65_536]) {
    it(`a ${length}-byte payload: its length encoding, a mask, and the payload back when unmasked`, () => {
      const payload = Buffer.alloc(length);
      for (let i = 0; i < length; i++) payload[i] = i % 251;
      const frame = maskedFrame(2, payload);
      assert.equal(frame[0], 0x82);
      assert.equal((frame[1] as number) & 0x80, 0x80, 'client frames are masked');
      const code = (frame[1] as number) & 0x7f;
      const head = code < 126 ? 2 : code === 126 ? 4 : 10;
      assert.equal(code < 126 ? code : code === 126 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2)), length);
      const mask = frame.subarray(head, head + 4);
      const body = frame.subarray(head + 4);
      assert.equal(body.length, length);
      assert.ok(body.every((b, i) => (b ^ (mask[i & 3] as number)) === payload[i]));
    });
  }
});

describe('invalidUpgrade', () => {
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  // RFC 6455 1.3's example.
  const accept = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';
  const good = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-accept': accept, 'sec-websocket-protocol': 'v5.channel.k8s.io' };
  const cases: [string, Record<string, string>, RegExp | undefined][] = [
    ['a valid answer', good, undefined],
    ['a wrong accept', { ...good, 'sec-websocket-accept': 'x' }, /invalid Sec-WebSocket-Accept/],
    ['no Upgrade', { ...good, upgrade: 'h2c' }, /no "Upgrade: websocket"/],
    ['no Connection: Upgrade', { ...good, connection: 'keep-alive' }, /no "Connection: Upgrade"/],
    [
      'no subprotocol',
      { upgrade: 'websocket', connection: 'upgrade', 'sec-websocket-accept': accept },
      /chose none of the subprotocols v5.channel.k8s.io, v4.channel.k8s.io/,
    ],
    ['a subprotocol not offered', { ...good, 'sec-websocket-protocol': 'channel.k8s.io' }, /"channel.k8s.io", which was not offered/],
    ['an extension', { ...good, 'sec-websocket-extensions': 'permessage-deflate' }, /extension/],
  ];
  for (const [name, headers, error] of cases) {
    it(name, () => {
      const why = invalidUpgrade(new Map(Object.entries(headers)), key, ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
      if (error === undefined) assert.equal(why, undefined);
      else assert.match(why ?? '', error);
    });
  }
});

describe('channel sockets against a WebSocket server', () => {
  const server = createServer((_req, res) => res.end('ok'));
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => [...p][0] ?? false });
  let onConnection: (ws: WebSocket, req: IncomingMessage) => void = () => {};
  server.on('upgrade', (req, socket, head) => {
    if (req.url?.includes('/attach')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (req.url?.includes('/log')) {
      // Chunked, as the API server writes a Status it does not know the length of in advance.
      const parts = ['{"kind":"Status","message":"pods \\"p\\" is forbidden: ', 'User \\"x\\" cannot create resource \\"pods/exec\\""}'];
      const body = parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('');
      socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body}0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });
  let client: Awaited<ReturnType<typeof clientOf>>['client'];
  let close: () => Promise<void>;
  before(async () => {
    ({ client, close } = await clientOf(server));
  });
  after(async () => {
    wss.close();
    await close();
  });

  const open = () => client.openSocket('/api/v1/namespaces/ns/pods/p/exec?command=x', ['v5.channel.k8s.io'], {});
  const collect = (socket: ChannelSocket) =>
    new Promise<{ messages: string[]; code: number; error?: Error }>((resolve) => {
      const messages: string[] = [];
      socket.start({
        message: (channel, data) => messages.push(`${channel}:${data.toString()}`),
        close: (code, error) => resolve({ messages, code, ...(error !== undefined && { error }) }),
      });
    });

  it('passes on messages sent with the upgrade, sends its own on a channel, answers a ping, and reads the close code', async () => {
    const got: string[] = [];
    let pong = false;
    onConnection = (ws) => {
      ws.send(Buffer.from('\x01early'));
      ws.on('message', (data: Buffer) => {
        got.push(`${data[0]}:${data.subarray(1).toString()}`);
        ws.ping(Buffer.from('are you there'));
      });
      ws.on('pong', (data) => {
        pong = data.toString() === 'are you there';
        ws.send(Buffer.from('\x03{"status":"Success"}'));
        ws.close(1000);
      });
    };
    const socket = await open();
    assert.equal(socket.protocol, 'v5.channel.k8s.io');
    // Messages that arrived before start() are kept for it.
    await new Promise((r) => setTimeout(r, 50));
    const done = collect(socket);
    socket.send(0, Buffer.from('stdin'));
    const { messages, code } = await done;
    assert.deepEqual(messages, ['1:early', '3:{"status":"Success"}']);
    assert.deepEqual(got, ['0:stdin']);
    assert.equal(pong, true, 'the ping was answered with its payload');
    assert.equal(code, 1000);
  });

  it('a connection that ends without a close frame closes with 1006', async () => {
    onConnection = (ws) => {
      ws.send(Buffer.from('\x01x'), () => ws.terminate());
    };
    const { messages, code } = await collect(await open());
    assert.deepEqual(messages, ['1:x']);
    assert.equal(code, ABNORMAL_CLOSURE);
  });

  it('a refused upgrade is an ApiError with the Status message, read from a chunked body', async () => {
    const err = await client.openSocket('/api/v1/namespaces/ns/pods/p/attach', ['v5.channel.k8s.io'], {}).catch((e: unknown) => e);
    assert.ok(err instanceof ApiError, String(err));
    assert.equal(err.status, 404);
    const forbidden = await client.openSocket('/api/v1/namespaces/ns/pods/p/log', ['v5.channel.k8s.io'], {}).catch((e: unknown) => e);
    assert.ok(forbidden instanceof ApiError, String(forbidden));
    assert.equal(forbidden.message, 'API server refused the upgrade: HTTP 403: pods "p" is forbidden: User "x" cannot create resource "pods/exec"');
  });

  /** Runs `fn` with a client of a server that never answers an upgrade. */
  const withStalledServer = async (fn: (slow: typeof client) => Promise<void>) => {
    onConnection = () => {};
    const stalled = createServer();
    const held: import('node:stream').Duplex[] = [];
    stalled.on('upgrade', (_req, socket) => held.push(socket));
    const { client: slow, close: closeSlow } = await clientOf(stalled);
    try {
      await fn(slow);
    } finally {
      for (const socket of held) socket.destroy();
      await closeSlow();
    }
  };

  it('a signal bounds the upgrade: its reason is the rejection', async () => {
    await withStalledServer(async (slow) => {
      const err = await slow.openSocket('/x/exec', ['v5.channel.k8s.io'], { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e);
      assert.equal((err as Error).name, 'TimeoutError');
    });
  });

  it('port-forward: a port not open within the timeout says so: its request was never written', async () => {
    await withStalledServer(async (slow) => {
      const forwarder = new ApiPortForwarder(slow);
      const err = await forwarder
        .request({ namespace: 'ns', name: 'p', uid: 'u' }, { method: 'POST', port: 4191, path: '/shutdown', timeoutMs: 150 })
        .catch((e: unknown) => e);
      assert.equal((err as Error).message, 'the API server did not open the port-forward within 0.15s');
    });
  });

  it('a connection refused is "cannot reach the API server"', async () => {
    const gone = createServer();
    const { client: dead, close: closeDead } = await clientOf(gone);
    await new Promise<void>((r) => gone.close(() => r()));
    const err = await dead.openSocket('/x/exec', ['v5.channel.k8s.io'], {}).catch((e: unknown) => e);
    assert.match((err as Error).message, /^cannot reach the API server: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
    await closeDead().catch(() => {});
  });

  it('port-forward: one socket for two ports, each port one HTTP exchange, a port error for the other', async () => {
    const requests: string[] = [];
    onConnection = (ws, req) => {
      const ports = new URL(req.url ?? '', 'http://x').searchParams.get('ports')?.split(',').map(Number) ?? [];
      ports.forEach((p, i) => {
        const prefix = Buffer.of(p & 255, p >> 8);
        ws.send(Buffer.concat([Buffer.of(2 * i), prefix]));
        ws.send(Buffer.concat([Buffer.of(2 * i + 1), prefix]));
      });
      // Port 2 (index 1) has nothing listening.
      ws.send(Buffer.concat([Buffer.of(3), Buffer.from('error forwarding port 2 to pod p: connect: connection refused')]));
      ws.on('message', (data: Buffer) => {
        requests.push(data.subarray(1).toString());
        // The answer in three messages, its body chunked.
        for (const part of ['HTTP/1.1 200 OK\r\nTransfer-', 'Encoding: chunked\r\n\r\n9\r\nshutd', 'own\n\r\n0\r\n\r\n'])
          ws.send(Buffer.concat([Buffer.of(data[0] as number), Buffer.from(part)]));
      });
    };
    const forwarder = new ApiPortForwarder(client);
    const pod = { namespace: 'ns', name: 'p', uid: 'u' };
    const [ok, refused] = await Promise.allSettled([
      forwarder.request(pod, { method: 'POST', port: 4191, path: '/shutdown', timeoutMs: 2000 }),
      forwarder.request(pod, { method: 'GET', port: 2, path: '/x', timeoutMs: 2000 }),
    ]);
    assert.deepEqual(ok, { status: 'fulfilled', value: { status: 200, body: 'shutdown\n' } });
    assert.equal(refused.status, 'rejected');
    assert.match(String((refused as PromiseRejectedResult).reason), /connection refused/);
    assert.deepEqual(requests, ['POST /shutdown HTTP/1.1\r\nHost: localhost:4191\r\nConnection: close\r\nUser-Agent: hahaha\r\nContent-Length: 0\r\n\r\n']);
  });
});
