/**
 * KubeClient's bound on a REST request, against a local HTTP server that answers some paths at
 * once and never answers others: a request without an answer fails after its timeout with the
 * method, path and bound; an aborted one fails at once; an answered one leaves no timer behind.
 * And a 401 reads a rotated token file again (the request headers are made once per credentials).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeClient } from '../../src/kube/kube-client.ts';
import { clientOf } from './local-api-server.ts';

describe('KubeClient request timeout and abort', () => {
  const received: string[] = [];
  const server = createServer((req, res) => {
    received.push(req.url ?? '');
    if (req.url?.startsWith('/silent')) return; // never answers
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  let client: KubeClient;
  let close: () => Promise<void>;

  before(async () => {
    ({ client, close } = await clientOf(server));
  });
  after(async () => {
    server.closeAllConnections();
    await close();
  });

  it('a request without an answer fails after its timeout, naming it', async () => {
    const started = performance.now();
    await assert.rejects(client.request('GET', '/silent/a', { timeoutMs: 200 }), /^Error: GET \/silent\/a: no answer within 0\.2s$/);
    const took = performance.now() - started;
    assert.ok(took >= 190 && took < 5000, `failed after ${took} ms`);
  });

  it('an aborted request fails at once with an AbortError carrying the reason', async () => {
    const abort = new AbortController();
    const pending = client.request('GET', '/silent/b', { signal: abort.signal, timeoutMs: 60_000 });
    setTimeout(() => abort.abort(new Error('stopping')), 20);
    await assert.rejects(pending, (err: Error) => err.name === 'AbortError' && (err.cause as Error).message === 'stopping');
  });

  it('a signal aborted before the request stops it before it is sent, with the same AbortError', async () => {
    await assert.rejects(
      client.request('GET', '/silent/c', { signal: AbortSignal.abort(new Error('already')) }),
      (err: Error) => err.name === 'AbortError' && (err.cause as Error).message === 'already',
    );
    await client.request('GET', '/ok');
    assert.ok(!received.includes('/silent/c'), `the server received ${received.join(', ')}`);
  });

  it('an answered request leaves no timer keeping the process alive', async () => {
    const active = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = active();
    for (let i = 0; i < 20; i += 1) assert.deepEqual(await client.request('GET', '/ok'), { ok: true });
    assert.equal(active(), before, 'the 30 s bound of each answered request was cleared');
  });
});

describe('KubeClient credentials', () => {
  it('a 401 reads a rotated token file again and asks once more; the next requests use the new token at once', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'hahaha-token-')), 'token');
    writeFileSync(file, 'old\n');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.statusCode = req.headers.authorization === 'Bearer new' ? 200 : 401;
      res.setHeader('content-type', 'application/json');
      res.end(res.statusCode === 200 ? '{"ok":true}' : '{"kind":"Status","message":"Unauthorized"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const client = new KubeClient({ server: `http://127.0.0.1:${port}`, tls: { insecureSkipVerify: false }, auth: { kind: 'tokenFile', path: file } });
    try {
      await assert.rejects(client.request('GET', '/a'), /HTTP 401: Unauthorized/);
      writeFileSync(file, 'new\n');
      assert.deepEqual(await client.request('GET', '/b'), { ok: true });
      assert.deepEqual(await client.request('GET', '/c'), { ok: true });
      assert.deepEqual(seen, ['Bearer old', 'Bearer old', 'Bearer old', 'Bearer new', 'Bearer new']);
    } finally {
      client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
