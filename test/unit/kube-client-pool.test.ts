/**
 * The REST connection pool of KubeClient against a local HTTP server that counts connections:
 * requests beyond the bound wait for a connection, and the connections a burst opened are
 * reused by the next one instead of being closed and opened again (a TLS handshake each
 * against an API server).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { KubeClient } from '../../src/kube/kube-client.ts';
import { clientOf } from './local-api-server.ts';

describe('KubeClient REST connection pool', () => {
  let opened = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((_req, res) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight -= 1;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    }, 30);
  });
  server.on('connection', () => {
    opened += 1;
  });
  let client: KubeClient;
  let close: () => Promise<void>;

  before(async () => {
    ({ client, close } = await clientOf(server));
  });
  after(() => close());

  const burst = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => client.request('POST', `/api/v1/namespaces/ns/events?i=${i}`, { body: { i } })));

  it('a burst uses at most 16 connections, and the next burst reuses all of them', async () => {
    await burst(40);
    assert.equal(maxInFlight, 16, 'requests beyond 16 wait for a free connection');
    assert.equal(opened, 16);
    // The second wave finds the 16 connections idle in the pool (keeping only 4, as before, made
    // it open 12 again).
    await burst(40);
    assert.equal(opened, 16, 'no connection was closed and opened again between the bursts');
  });
});
