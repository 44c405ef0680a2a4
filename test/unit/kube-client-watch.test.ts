/**
 * KubeClient.watch against a local TCP server that writes the watch response byte for byte:
 * events split anywhere (a UTF-8 character included) arrive whole and in order, the end of the
 * response resolves, and a refusal, a broken stream, silence, an unreadable line and an abort
 * each reject with their own reason.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApiError, KubeClient } from '../../src/kube/kube-client.ts';

/** What the server does with the watch request's socket. */
type Script = (socket: net.Socket, requestHead: string) => void;

const chunk = (bytes: Buffer | string) => {
  const b = Buffer.from(bytes);
  return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
};
const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n';
const event = (type: string, name: string) => `${JSON.stringify({ type, object: { metadata: { name } } })}\n`;

describe('KubeClient.watch', () => {
  let script: Script = () => {};
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (d) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) script(socket, head);
    });
  });
  let client: KubeClient;

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    client = new KubeClient({ server: `http://127.0.0.1:${port}`, tls: { insecureSkipVerify: false }, auth: { kind: 'token', token: 't0k' } });
  });
  after(async () => {
    client.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const watch = (opts: { idleMs?: number; signal?: AbortSignal } = {}) => {
    const events: string[] = [];
    let opened = 0;
    const done = client.watch(
      '/api/v1/pods',
      { labelSelector: 'a=b', resourceVersion: '7' },
      (type, object) => events.push(`${type} ${(object as { metadata: { name: string } }).metadata.name}`),
      { signal: opts.signal ?? new AbortController().signal, idleMs: opts.idleMs ?? 5000, onOpen: () => (opened += 1) },
    );
    return { done, events, opened: () => opened };
  };

  it('asks with the query and credentials, and passes on events split anywhere, whole and in order, until the response ends', async () => {
    let asked = '';
    const body = Buffer.from(event('ADDED', 'a') + event('MODIFIED', 'bé') + event('DELETED', 'c'));
    const cut = body.indexOf('é') + 1; // inside the two bytes of é
    script = (socket, head) => {
      asked = head;
      socket.write(HEAD);
      const parts = [body.subarray(0, 5), body.subarray(5, cut), body.subarray(cut, cut + 30), body.subarray(cut + 30)];
      let i = 0;
      const next = () => {
        const part = parts[i++];
        if (part === undefined) socket.end('0\r\n\r\n');
        else {
          socket.write(chunk(part));
          setTimeout(next, 5);
        }
      };
      next();
    };
    const w = watch();
    await w.done;
    assert.deepEqual(w.events, ['ADDED a', 'MODIFIED bé', 'DELETED c']);
    assert.equal(w.opened(), 1);
    assert.match(asked, /^GET \/api\/v1\/pods\?labelSelector=a%3Db&resourceVersion=7&watch=true HTTP\/1\.1\r\n/);
    assert.match(asked, /\r\nauthorization: Bearer t0k\r\n/);
  });

  it('a refusal rejects with the API server\'s Status message, and is not "opened"', async () => {
    const status = JSON.stringify({ kind: 'Status', status: 'Failure', message: 'too old resource version: 7 (9)', reason: 'Expired', code: 410 });
    script = (socket) => socket.end(`HTTP/1.1 410 Gone\r\ncontent-type: application/json\r\ncontent-length: ${status.length}\r\n\r\n${status}`);
    const w = watch();
    await assert.rejects(w.done, (err: Error) => err instanceof ApiError && err.status === 410 && err.message === 'HTTP 410: too old resource version: 7 (9)');
    assert.equal(w.opened(), 0);
  });

  it('a stream that breaks off rejects: "watch stream aborted"', async () => {
    script = (socket) => {
      socket.write(HEAD + chunk(event('ADDED', 'a')));
      setTimeout(() => socket.destroy(), 20);
    };
    const w = watch();
    await assert.rejects(w.done, /^Error: watch stream aborted$/);
    assert.deepEqual(w.events, ['ADDED a']);
  });

  it('silence longer than idleMs rejects, naming it', async () => {
    script = (socket) => socket.write(HEAD);
    await assert.rejects(watch({ idleMs: 100 }).done, /^Error: watch silent for 0.1s$/);
  });

  it('an unreadable line rejects, quoting it', async () => {
    script = (socket) => socket.write(HEAD + chunk('{"type":"ADDED",\n'));
    await assert.rejects(watch().done, /^Error: unreadable watch event: \{"type":"ADDED",$/);
  });

  it('an abort rejects with an AbortError and closes the connection', async () => {
    let closed = false;
    script = (socket) => {
      socket.on('close', () => {
        closed = true;
      });
      socket.write(HEAD);
    };
    const ac = new AbortController();
    const w = watch({ signal: ac.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    ac.abort(new Error('stopping'));
    await assert.rejects(w.done, (err: Error) => err.name === 'AbortError');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(closed);
  });
});
