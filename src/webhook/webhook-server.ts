/**
 * The mutating admission webhook's HTTPS server: POST /mutate-v1-pod answers AdmissionReviews
 * for pod CREATEs (see admission-review.ts). Every replica serves it, leader or not: admission
 * must not depend on who leads.
 *
 * The serving certificate is read from `certDir` (tls.crt, tls.key, as a kubernetes.io/tls
 * Secret mounts them) and re-read when the files change, so cert-manager's renewals take effect
 * without a restart. Native sidecars are offered only once the API server's version is known to
 * be 1.29 or newer; until then, and on any error, pods are allowed unchanged.
 */
import { readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../config/catalog-file.ts';
import type { Catalog } from '../domain/catalog.ts';
import type { LabelSelector } from '../domain/label-selector.ts';
import { supportsNativeSidecars } from '../domain/native-conversion.ts';
import { closeServer } from '../node-http.ts';
import type { ServerVersionSource } from '../ports.ts';
import type { Metrics } from '../record/metrics.ts';
import { reviewPodCreate } from './admission-review.ts';

export const WEBHOOK_PATH = '/mutate-v1-pod';
/** The API server sends at most a few MiB per review; anything larger is not a pod. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const CERT_CHECK_MS = 10_000;
const VERSION_REFRESH_MS = 10 * 60_000;
const VERSION_RETRY_MS = 5_000;
/** On stop, how long an admission request in flight has to be answered before its connection is closed. */
const CLOSE_GRACE_MS = 1000;

export interface WebhookServerOptions {
  readonly host: string;
  readonly port: number;
  /** Directory with tls.crt and tls.key. */
  readonly certDir: string;
  readonly catalog: Catalog;
  /** The watch selector: only pods it selects are converted. */
  readonly selector: LabelSelector;
  readonly version: ServerVersionSource;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Answer every pod unchanged; log and count what would have been converted. @default false */
  readonly dryRun?: boolean;
}

export interface WebhookServer {
  readonly server: https.Server;
  /** undefined until the API server's version has been read. */
  nativeSidecarsSupported(): boolean | undefined;
  stop(): Promise<void>;
}

function readPair(certDir: string): { cert: Buffer; key: Buffer; stamp: string } {
  const certFile = join(certDir, 'tls.crt');
  const keyFile = join(certDir, 'tls.key');
  try {
    const stamp = [certFile, keyFile].map((f) => `${statSync(f).mtimeMs}`).join(':');
    return { cert: readFileSync(certFile), key: readFileSync(keyFile), stamp };
  } catch (err) {
    throw new ConfigError(`webhook certificate: cannot read ${certFile} and ${keyFile}: ${(err as Error).message} (set WEBHOOK_CERT_DIR)`);
  }
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const { metrics, log } = opts;
  let pair = readPair(opts.certDir);
  let supported: boolean | undefined;
  let stopped = false;

  const server = https.createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.2' }, (req, res) => {
    const started = performance.now();
    const answer = (status: number, body: object | string, outcome: 'converted' | 'unchanged' | 'error') => {
      metrics.webhookRequests.inc({ outcome });
      metrics.webhookDuration.observe((performance.now() - started) / 1000);
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' }).end(text);
    };
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (path !== WEBHOOK_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        log.warn({ bytes: size }, 'admission request too large; answered 413');
        answer(413, 'request body too large\n', 'error');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      let review: unknown;
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        log.warn({ error: (err as Error).message }, 'admission request is not JSON; answered 400');
        answer(400, 'not JSON\n', 'error');
        return;
      }
      const result = reviewPodCreate(review, opts.catalog, supported === true, opts.selector);
      if (!result.ok) {
        log.warn({ error: result.error }, 'admission request not handled; the pod is allowed unchanged');
        if (result.response !== undefined) answer(200, result.response, 'error');
        else answer(400, `${result.error}\n`, 'error');
        return;
      }
      const { request, plan } = result;
      const fields = { namespace: request.namespace, pod: request.pod, dryRun: request.dryRun };
      if (plan.convert && opts.dryRun === true) {
        if (!request.dryRun) for (const c of plan.containers) metrics.dryRunWouldConvert.inc({ container: c });
        log.info({ ...fields, containers: plan.containers, dryRun: true }, 'dry run: would convert sidecars to native sidecars');
        answer(200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, allowed: true } }, 'unchanged');
      } else if (plan.convert) {
        if (!request.dryRun) for (const c of plan.containers) metrics.nativeConversions.inc({ container: c });
        log.info({ ...fields, containers: plan.containers, kept: plan.kept }, 'converting sidecars to native sidecars');
        answer(200, result.response, 'converted');
      } else {
        log.debug({ ...fields, code: plan.code, kept: plan.kept }, `pod left unchanged: ${plan.reason}`);
        answer(200, result.response, 'unchanged');
      }
    });
    req.on('error', (err) => log.warn({ err }, 'admission request stream failed'));
  });
  server.keepAliveTimeout = 30_000;
  server.on('tlsClientError', (err) => log.debug({ error: err.message }, 'webhook TLS handshake failed'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ConfigError(`webhook: cannot listen on ${opts.host}:${opts.port}: ${err.message} (set WEBHOOK_PORT)`)));
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      server.on('error', (err) => log.error({ err }, 'webhook server error'));
      resolve();
    });
  });

  // Certificate rotation: a changed tls.crt/tls.key pair replaces the secure context in place.
  const certTimer = setInterval(() => {
    try {
      const next = readPair(opts.certDir);
      if (next.stamp === pair.stamp) return;
      server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
      pair = next;
      log.info({ certDir: opts.certDir }, 'reloaded the webhook certificate');
    } catch (err) {
      log.warn({ error: (err as Error).message }, 'could not reload the webhook certificate; keeping the current one');
    }
  }, CERT_CHECK_MS);
  certTimer.unref();

  // The API server's version decides whether native sidecars exist; read it now and now and then
  // (clusters are upgraded under running daemons).
  let versionTimer: NodeJS.Timeout | undefined;
  const readVersion = async (): Promise<void> => {
    try {
      const v = await opts.version.get();
      const now = supportsNativeSidecars(v.major, v.minor);
      if (now !== supported) {
        log[now ? 'info' : 'warn'](
          { version: v.gitVersion, nativeSidecars: now },
          now
            ? 'the API server runs native sidecars: converting catalog sidecars marked native'
            : 'the API server is older than 1.29: no native sidecar conversion',
        );
      }
      supported = now;
      if (!stopped) versionTimer = setTimeout(readVersion, VERSION_REFRESH_MS).unref();
    } catch (err) {
      log.warn({ error: (err as Error).message }, 'cannot read the API server version; converting nothing until it is known');
      if (!stopped) versionTimer = setTimeout(readVersion, VERSION_RETRY_MS).unref();
    }
  };
  // Bounded: an API server that does not answer must not hold up start-up.
  await Promise.race([readVersion(), new Promise((r) => setTimeout(r, 5000).unref())]);

  log.info({ webhookAddress: server.address(), path: WEBHOOK_PATH, certDir: opts.certDir }, 'serving the native sidecar admission webhook');
  return {
    server,
    nativeSidecarsSupported: () => supported,
    stop: async () => {
      stopped = true;
      clearInterval(certTimer);
      clearTimeout(versionTimer);
      await closeServer(server, CLOSE_GRACE_MS);
    },
  };
}
