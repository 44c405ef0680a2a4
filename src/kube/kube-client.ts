/**
 * The one connection to the API server: JSON requests, watch streams and the "channel"
 * WebSockets of exec and port-forward (./websocket.ts), over Node's own http/https and tls.
 *
 * Why not a generated client: hahaha calls a dozen endpoints. A generated client's model classes
 * cost about 50 MiB of resident memory at start and convert every object twice; here each
 * response is parsed once, as JSON, and handed to the domain's own parser.
 *
 * Connections: REST calls share a pool of keep-alive connections (./http-pool.ts), so a burst
 * of event posts and reads reuses a few TLS connections. Every WebSocket needs a connection of
 * its own (the upgrade consumes it). The TLS session of the last connection opened is offered to
 * the next: a resumed handshake skips the certificate exchange and its verification. Watches,
 * which hold their connection for minutes, use Node's https.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Agent, IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import tls from 'node:tls';
import type { ClusterAccess, ExecPlugin } from '../config/kubeconfig.ts';
import { http } from '../node-http.ts';
import { HttpPool } from './http-pool.ts';
import { ChannelSocket, upgrade } from './websocket.ts';

/**
 * What an ApiError's message says when its 403 came from an API server not ready to authorize
 * (strategies' causeOf reads it: they see errors as text).
 */
const NOT_READY_MARK = 'the API server is not ready yet';

/** A response with a status of 400 or more, carrying the API server's Status message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** The API server's own words (a Status object's message, else the body), without the status. */
  readonly serverMessage: string;
  /**
   * For a 403: why the API server was not ready to authorize yet (see `refusalNotReady`),
   * so the refusal says nothing about hahaha's permissions and asking again later may succeed.
   * The message then ends with "(the API server is not ready yet: …)".
   */
  readonly notReady: string | undefined;

  /** `context` prefixes the message, e.g. "API server refused the upgrade: ". */
  constructor(status: number, body: string, context = '', notReady?: string) {
    const serverMessage = statusMessage(body);
    const suffix = notReady === undefined ? '' : ` (${NOT_READY_MARK}: ${notReady})`;
    super(`${context}HTTP ${status}${serverMessage === '' ? '' : `: ${serverMessage}`}${suffix}`);
    this.status = status;
    this.serverMessage = serverMessage;
    this.notReady = notReady;
  }
}

/** The status code of an ApiError, else undefined. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiError ? err.status : undefined;
}

export interface RequestOptions {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  /** @default application/json */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
  /** @default 30 s */
  readonly timeoutMs?: number;
}

export type WatchHandler = (type: string, object: unknown) => void;

/** One page of a list: its items, and the `continue` token of the next page. */
export interface ListPage {
  readonly items?: unknown[];
  readonly metadata?: { readonly continue?: string; readonly resourceVersion?: string };
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_ERROR_BODY = 4096;
/** How long a token read from a file is used before the file is read again (client-go: 1 min). */
const TOKEN_FILE_TTL_MS = 60_000;
const EXEC_PLUGIN_TIMEOUT_MS = 60_000;
/** Bound on the `/readyz` request that tells whether a denial (a 403, a review's) is the authorizer's warm-up. */
const READYZ_TIMEOUT_MS = 3_000;
/** How long one `/readyz` answer serves the denials that arrive together (a burst of reaps). */
const READYZ_REUSE_MS = 1_000;
/**
 * A 403 whose RBAC reason lists ClusterRoles that every cluster has as not found: the authorizer
 * has its bindings but not yet the roles they name.
 */
const RBAC_ROLES_LOADING = /clusterrole\.rbac\.authorization\.k8s\.io "system:(basic-user|discovery|public-info-viewer)" not found/;
/**
 * Connections for REST calls (watches have their own); more requests wait for a free one. Without
 * a bound, a thousand pods turning up at once (a relist after an outage) meant a thousand event
 * posts on a thousand TLS connections, about 200 KiB of memory each.
 */
const MAX_CONNECTIONS = 16;
/**
 * How long a REST connection stays open unused. All MAX_CONNECTIONS stay open for this long
 * (client-go keeps 25 for 90 s): keeping only 4, as before, closed 12 connections after each wave
 * of a burst's event posts and opened them again, a TLS handshake each, for the next.
 */
const IDLE_CONNECTION_MS = 30_000;
/** The longest REST answer read (a list page of 500 pods is a few MiB). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/**
 * What every TLS connection to the API server is opened with. The SecureContext (CA, client
 * certificate and key, parsed) is built once: built per connection, it was the largest single
 * CPU cost of a sidecar stop.
 */
interface TlsOptions {
  secureContext: tls.SecureContext;
  rejectUnauthorized: boolean;
  servername?: string;
}

/** The headers of a REST request, made for one set of credentials. */
interface RestHeaders {
  readonly auth: Cached;
  readonly plain: Readonly<Record<string, string>>;
  /** With `content-type: application/json`. */
  readonly json: Readonly<Record<string, string>>;
}

interface Cached {
  readonly header: string | undefined;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly until: number;
}

export class KubeClient {
  readonly server: string;
  private readonly access: ClusterAccess;
  private readonly secure: boolean;
  private readonly userAgent: string;
  private pool: HttpPool;
  /** Watches hold their connection for minutes: they get their own, outside the REST pool. */
  private streamAgent: Agent;
  private agentCert: Buffer | undefined;
  private tlsOptions: TlsOptions | undefined;
  private auth: Cached | undefined;
  private restHeaders: RestHeaders | undefined;
  private authPending: Promise<Cached> | undefined;
  /** The last TLS session a connection (REST or WebSocket) got, offered to the next one. */
  private tlsSession: Buffer | undefined;
  /** The last `/readyz` probe (see notReadyToAuthorize), shared by the questions that arrive with it. */
  private readiness: { readonly at: number; readonly answer: Promise<string | undefined> } | undefined;

  constructor(access: ClusterAccess, opts: { userAgent?: string } = {}) {
    this.access = access;
    this.server = access.server;
    this.secure = access.server.startsWith('https:');
    this.userAgent = opts.userAgent ?? 'hahaha';
    this.pool = this.makePool();
    this.streamAgent = this.makeAgent(undefined);
  }

  /** Sends a request and parses the JSON answer; a status of 400 or more throws ApiError. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    let res = await this.send(method, path, opts);
    // A credential plugin's token may have been revoked before it expired, a token file rotated
    // since it was read: read the credentials again and ask once more.
    if (res.status === 401 && (this.access.auth.kind === 'exec' || this.access.auth.kind === 'tokenFile')) {
      this.auth = undefined;
      res = await this.send(method, path, opts);
    }
    if (res.status >= 400) throw await this.apiError(res.status, res.body);
    return (res.body === '' ? undefined : JSON.parse(res.body)) as T;
  }

  /**
   * Reads a list page by page (`limit` items each, following `continue`): one request per page,
   * made when the previous page has been consumed, so only one page is in memory at a time.
   */
  async *pages(path: string, query: RequestOptions['query'], opts: { limit: number; timeoutMs?: number }): AsyncGenerator<ListPage> {
    let cont: string | undefined;
    do {
      const page =
        (await this.request<ListPage>('GET', path, {
          query: { ...query, limit: opts.limit, continue: cont },
          ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }),
        })) ?? {};
      yield page;
      cont = page.metadata?.continue || undefined;
    } while (cont !== undefined);
  }

  /**
   * Streams a watch: calls `onEvent` per event line until the server ends the response, then
   * resolves. Rejects on a failed request or a broken stream. `idleMs` bounds silence.
   */
  async watch(
    path: string,
    query: RequestOptions['query'],
    onEvent: WatchHandler,
    opts: { signal: AbortSignal; idleMs: number; onOpen?: () => void },
  ): Promise<void> {
    const headers = await this.headers();
    const url = this.url(path, { ...query, watch: true });
    return new Promise<void>((resolvePromise, reject) => {
      const req = this.transport().request(url, {
        method: 'GET',
        agent: this.streamAgent,
        headers: { ...headers, accept: 'application/json' },
        signal: opts.signal,
      });
      req.setTimeout(opts.idleMs, () => req.destroy(new Error(`watch silent for ${opts.idleMs / 1000}s`)));
      req.on('error', reject);
      req.on('response', (res) => {
        res.setEncoding('utf8');
        if ((res.statusCode ?? 0) >= 400) {
          readAll(res)
            .then((body) => this.apiError(res.statusCode ?? 0, body))
            .then(reject, reject);
          return;
        }
        opts.onOpen?.();
        let partial = '';
        res.on('data', (chunk: string) => {
          partial += chunk;
          let nl = partial.indexOf('\n');
          while (nl >= 0) {
            const line = partial.slice(0, nl);
            partial = partial.slice(nl + 1);
            if (line.trim() !== '') {
              let event: { type?: unknown; object?: unknown };
              try {
                event = JSON.parse(line);
              } catch {
                req.destroy(new Error(`unreadable watch event: ${line.slice(0, 200)}`));
                return;
              }
              try {
                onEvent(String(event.type), event.object);
              } catch (err) {
                req.destroy(err as Error);
                return;
              }
            }
            nl = partial.indexOf('\n');
          }
        });
        res.on('end', () => resolvePromise());
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('watch stream aborted')));
      });
      req.end();
    });
  }

  /**
   * Opens a channel WebSocket (exec, port-forward). `signal` bounds the upgrade: its reason is
   * the rejection. A refused upgrade rejects with an ApiError ("API server refused the upgrade:
   * HTTP 403: …"); a connection that fails or ends first, with "cannot reach the API server: …".
   */
  async openSocket(path: string, protocols: readonly string[], opts: { signal?: AbortSignal | undefined }): Promise<ChannelSocket> {
    const headers = await this.headers();
    opts.signal?.throwIfAborted();
    const url = this.url(path);
    const socket = this.connect(url);
    const answer = await upgrade(socket, { path: `${url.pathname}${url.search}`, host: url.host, protocols, headers, signal: opts.signal });
    if (answer instanceof ChannelSocket) return answer;
    throw await this.apiError(answer.status, answer.body, 'API server refused the upgrade: ');
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.pool.close();
    this.streamAgent.destroy();
  }

  /** A connection to the API server, for a REST request or a WebSocket. */
  private connect(url: URL): net.Socket {
    // An IPv6 address without its URL brackets.
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const socket = this.secure ? this.tlsConnect(host, Number(url.port || 443)) : net.connect({ host, port: Number(url.port || 80) });
    socket.setNoDelay(true);
    return socket;
  }

  /** A TLS connection, resuming the last one's session. */
  private tlsConnect(host: string, port: number): tls.TLSSocket {
    this.tlsOptions ??= this.makeTlsOptions();
    const { servername, ...rest } = this.tlsOptions;
    // SNI names a host, never an address (RFC 6066 3); Node's https agent does the same.
    const sni = servername ?? (net.isIP(host) === 0 ? host : undefined);
    const socket = tls.connect({
      ...rest,
      host,
      port,
      ...(sni !== undefined && { servername: sni }),
      ALPNProtocols: ['http/1.1'],
      ...(this.tlsSession !== undefined && { session: this.tlsSession }),
    });
    socket.once('session', (session: Buffer) => {
      this.tlsSession = session;
    });
    return socket;
  }

  private transport(): typeof https | typeof http {
    return this.secure ? https : http;
  }

  private url(path: string, query?: RequestOptions['query']): URL {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private send(method: string, path: string, opts: RequestOptions): Promise<{ status: number; body: string }> {
    // The headers of the credentials in use, made once: most requests need no await for them.
    const cached = this.restHeaders;
    const auth = this.auth;
    if (cached !== undefined && auth !== undefined && cached.auth === auth && Date.now() < auth.until) return this.sendWith(cached, method, path, opts);
    return this.headers().then((headers) => {
      const made = {
        auth: this.auth,
        plain: { ...headers, accept: 'application/json' },
        json: { ...headers, accept: 'application/json', 'content-type': 'application/json' },
      };
      // Kept for the next requests only while they are the credentials in use (a 401 drops them).
      if (made.auth !== undefined) this.restHeaders = made as RestHeaders;
      return this.sendWith(made, method, path, opts);
    });
  }

  private sendWith(h: Pick<RestHeaders, 'plain' | 'json'>, method: string, path: string, opts: RequestOptions): Promise<{ status: number; body: string }> {
    let headers = h.plain;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers = opts.contentType === undefined ? h.json : { ...h.plain, 'content-type': opts.contentType };
    }
    const url = this.url(path, opts.query);
    return this.pool.request({
      method,
      path: `${url.pathname}${url.search}`,
      headers,
      body,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal: opts.signal,
    });
  }

  /** The error for a refused request; a 403 says whether the API server was ready to authorize. */
  private async apiError(status: number, body: string, context = ''): Promise<ApiError> {
    const notReady = status === 403 ? await this.refusalNotReady(body) : undefined;
    return new ApiError(status, body, context, notReady);
  }

  /**
   * Why a 403 may not be RBAC's real answer, else undefined. A kube-apiserver serves requests
   * before its RBAC authorizer has filled its caches of roles and bindings, and until then
   * refuses what is granted (kubernetes/kubernetes#121635): right after a restart, or from a
   * new replica behind a load balancer. Roles not loaded yet show in the reason; bindings not
   * loaded yet leave a plain 403, which only `/readyz` tells apart (see notReadyToAuthorize).
   */
  private async refusalNotReady(body: string): Promise<string | undefined> {
    if (RBAC_ROLES_LOADING.test(statusMessage(body))) return 'RBAC has not loaded the ClusterRoles every cluster has';
    return this.notReadyToAuthorize();
  }

  /**
   * Why the API server cannot be trusted to authorize yet, else undefined: `/readyz` did not
   * answer 200. Its informer-sync check fails until every cache is filled, RBAC's among them,
   * so a denial (a 403, a review's `allowed: false`) is believed only when it answers 200. One
   * answer serves the questions of the next second.
   */
  async notReadyToAuthorize(): Promise<string | undefined> {
    const now = Date.now();
    if (this.readiness === undefined || now - this.readiness.at > READYZ_REUSE_MS) {
      const answer = this.send('GET', '/readyz', { timeoutMs: READYZ_TIMEOUT_MS }).then(
        (res) => (res.status === 200 ? undefined : `/readyz answered HTTP ${res.status}`),
        (err: Error) => `/readyz: ${err.message}`,
      );
      this.readiness = { at: now, answer };
    }
    return this.readiness.answer;
  }

  private makeTlsOptions(): TlsOptions {
    const { tls: t } = this.access;
    const cert = this.auth?.cert ?? t.cert;
    const key = this.auth?.key ?? t.key;
    return {
      secureContext: tls.createSecureContext({
        ...(t.ca !== undefined && { ca: t.ca }),
        ...(cert !== undefined && key !== undefined && { cert, key }),
      }),
      rejectUnauthorized: !t.insecureSkipVerify,
      ...(t.serverName !== undefined && { servername: t.serverName }),
    };
  }

  private makePool(): HttpPool {
    const url = new URL(this.server);
    return new HttpPool({ connect: () => this.connect(url), host: url.host, max: MAX_CONNECTIONS, idleMs: IDLE_CONNECTION_MS, maxBody: MAX_ANSWER_BYTES });
  }

  /** The watches' agent: a connection each, not kept once the watch ends. */
  private makeAgent(cert: Buffer | undefined): Agent {
    this.agentCert = cert;
    if (!this.secure) return new http.Agent({ keepAlive: false });
    this.tlsOptions ??= this.makeTlsOptions();
    return new https.Agent({ keepAlive: false, maxCachedSessions: 16, ...this.tlsOptions });
  }

  private async headers(): Promise<Record<string, string>> {
    const auth = await this.credentials();
    // A credential plugin that hands out client certificates changes the TLS material.
    if (auth.cert !== this.agentCert && this.secure) {
      this.tlsOptions = this.makeTlsOptions();
      // A resumed session would carry the old client certificate's identity.
      this.tlsSession = undefined;
      const [oldPool, oldAgent] = [this.pool, this.streamAgent];
      this.pool = this.makePool();
      this.streamAgent = this.makeAgent(auth.cert);
      oldPool.close();
      oldAgent.destroy();
    }
    return { 'user-agent': this.userAgent, ...(auth.header !== undefined && { authorization: auth.header }) };
  }

  private async credentials(): Promise<Cached> {
    if (this.auth !== undefined && Date.now() < this.auth.until) return this.auth;
    this.authPending ??= this.readCredentials().finally(() => {
      this.authPending = undefined;
    });
    this.auth = await this.authPending;
    return this.auth;
  }

  private async readCredentials(): Promise<Cached> {
    const { auth } = this.access;
    switch (auth.kind) {
      case 'none':
        return { header: undefined, until: Number.POSITIVE_INFINITY };
      case 'token':
        return { header: `Bearer ${auth.token}`, until: Number.POSITIVE_INFINITY };
      case 'basic':
        return { header: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`, until: Number.POSITIVE_INFINITY };
      case 'tokenFile': {
        try {
          return { header: `Bearer ${readFileSync(auth.path, 'utf8').trim()}`, until: Date.now() + TOKEN_FILE_TTL_MS };
        } catch (err) {
          // Keep the last token while a rotation is in progress; without one, say why.
          if (this.auth !== undefined) return { ...this.auth, until: Date.now() + 5_000 };
          throw new Error(`cannot read the token file ${auth.path}: ${(err as Error).message}`);
        }
      }
      case 'exec':
        return runExecPlugin(auth.plugin, this.server, this.access.tls.ca);
    }
  }
}

/** Runs a client-go credential plugin and reads its ExecCredential. */
async function runExecPlugin(plugin: ExecPlugin, server: string, ca: Buffer | undefined): Promise<Cached> {
  const command = plugin.command.includes('/') && !isAbsolute(plugin.command) ? resolve(plugin.dir, plugin.command) : plugin.command;
  const info = {
    apiVersion: plugin.apiVersion,
    kind: 'ExecCredential',
    spec: {
      interactive: false,
      ...(plugin.provideClusterInfo && { cluster: { server, ...(ca !== undefined && { 'certificate-authority-data': ca.toString('base64') }) } }),
    },
  };
  const stdout = await new Promise<string>((resolvePromise, reject) => {
    execFile(
      command,
      [...plugin.args],
      { env: { ...process.env, ...plugin.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) }, timeout: EXEC_PLUGIN_TIMEOUT_MS, maxBuffer: 1 << 20 },
      (err, out, stderr) => {
        if (err !== null) reject(new Error(`credential plugin ${plugin.command} failed: ${(stderr || err.message).trim().split('\n')[0]}`));
        else resolvePromise(out);
      },
    );
  });
  let status: { token?: unknown; clientCertificateData?: unknown; clientKeyData?: unknown; expirationTimestamp?: unknown } | undefined;
  try {
    status = (JSON.parse(stdout) as { status?: typeof status }).status;
  } catch {
    throw new Error(`credential plugin ${plugin.command} printed no ExecCredential JSON`);
  }
  const expires = typeof status?.expirationTimestamp === 'string' ? Date.parse(status.expirationTimestamp) : Number.NaN;
  const until = Number.isNaN(expires) ? Number.POSITIVE_INFINITY : expires - 10_000;
  if (typeof status?.token === 'string' && status.token !== '') return { header: `Bearer ${status.token}`, until };
  if (typeof status?.clientCertificateData === 'string' && typeof status.clientKeyData === 'string') {
    return { header: undefined, cert: Buffer.from(status.clientCertificateData), key: Buffer.from(status.clientKeyData), until };
  }
  throw new Error(`credential plugin ${plugin.command} returned neither a token nor a client certificate`);
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let body = '';
    res.on('data', (d: string) => {
      body += d;
    });
    res.on('end', () => resolvePromise(body));
    res.on('error', reject);
  });
}

/** The `message` of a Status object, else the trimmed text (shortened). */
function statusMessage(body: string): string {
  const text = body.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not a Status object
  }
  return text.slice(0, MAX_ERROR_BODY).replace(/\s+/g, ' ');
}
