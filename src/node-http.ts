/**
 * node:http, without undici. An ESM import of a builtin module reads each of its exports once,
 * and node:http's lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters then load undici with
 * http2, zlib and web streams, about 2 MiB of resident memory that hahaha never uses.
 * `process.getBuiltinModule` returns the same module without reading them. Import the types from
 * 'node:http' with `import type`, which leaves no import behind.
 */
export const http = process.getBuiltinModule('node:http');

/**
 * Stops `server` taking connections and resolves once every connection has ended. Idle
 * keep-alive connections end at once; requests in flight have `graceMs` to be answered, then
 * their connections are closed as well. `server.close` alone waits for every connection however
 * long a client keeps it, and the API server keeps its connections to the webhook.
 */
export function closeServer(server: { close(callback: () => void): unknown; closeAllConnections(): void }, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
  });
}
