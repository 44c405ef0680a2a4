/**
 * The metrics port: /metrics and / (HAHAHA's scrape path) serve Prometheus text, /healthz says
 * the process is alive, /readyz says the first pod list has synced.
 */
import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { ConfigError } from '../config/errors.ts';
import { http } from '../node-http.ts';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Why the daemon is not ready yet; empty when it is. */
  readonly notReadyReasons: () => readonly string[];
  readonly isHealthy?: () => boolean;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics' || path === '/') {
      opts.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text))
        .catch((err: unknown) => res.writeHead(500).end(String(err)));
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const ok = opts.isHealthy?.() ?? true;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
      return;
    }
    if (path === '/readyz') {
      const reasons = opts.notReadyReasons();
      const ok = reasons.length === 0;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : `${reasons.join('\n')}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(opts.host, opts.port, err));
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  return server;
}

/** A failed listen as one line naming the address, the cause and the variable to change. */
function listenError(host: string, port: number, err: NodeJS.ErrnoException): ConfigError {
  const at = `metrics server: cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new ConfigError(`${at}: the port is already in use (set METRICS_PORT to a free port, or stop the other process)`);
    case 'EACCES':
      return new ConfigError(`${at}: permission denied (set METRICS_PORT to 1024 or above)`);
    case 'EADDRNOTAVAIL':
      return new ConfigError(`${at}: no network interface has this address (set METRICS_HOST to an address of this machine, or 0.0.0.0)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ConfigError(`${at}: the host name does not resolve (set METRICS_HOST to an address of this machine, or 0.0.0.0)`);
    default:
      return new ConfigError(`${at}: ${err.code ?? ''} ${err.message} (check METRICS_HOST and METRICS_PORT)`);
  }
}
