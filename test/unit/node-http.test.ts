import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { closeServer, http } from '../../src/node-http.ts';

/** A server on a free port that answers /answer and leaves /hang unanswered. */
async function server(): Promise<{ s: ReturnType<typeof http.createServer>; port: number }> {
  const s = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/answer') res.end('ok');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { s, port: (s.address() as AddressInfo).port };
}

describe('closeServer', () => {
  it('ends at once when the only connection is an idle keep-alive one', async () => {
    const { s, port } = await server();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get({ port, host: '127.0.0.1', path: '/answer', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    });
    const started = performance.now();
    await closeServer(s, 5000);
    assert.ok(performance.now() - started < 1000, `${performance.now() - started} ms`);
    agent.destroy();
  });

  it('gives a request in flight the grace period, then closes its connection', async () => {
    const { s, port } = await server();
    const hung = new Promise<string>((resolve) => {
      http
        .get({ port, host: '127.0.0.1', path: '/hang' }, () => resolve('answered'))
        .on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
    });
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    await closeServer(s, 300);
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 2000, `${took} ms`);
    assert.equal(await hung, 'ECONNRESET');
  });
});
