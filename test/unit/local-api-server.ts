/**
 * A KubeClient pointed at a local plain-HTTP server, for tests of the client's own transport
 * (its connection pool, how it reads a refusal); what the API server means is tested against
 * the real one in test/e2e/.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from '../../src/kube/kube-client.ts';

/** Starts `server` on a free port of 127.0.0.1; returns a client for it and a way to stop both. */
export async function clientOf(server: Server): Promise<{ client: KubeClient; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new KubeClient({ server: `http://127.0.0.1:${port}`, tls: { insecureSkipVerify: false }, auth: { kind: 'none' } });
  return {
    client,
    close: async () => {
      client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
