/** `http`: a request to the sidecar's admin endpoint on the pod's loopback, through pods/portforward. */
import type { AttemptKind, FieldCheck } from './kind.ts';

export interface HttpAttempt {
  readonly kind: 'http';
  readonly method: string;
  readonly port: number;
  readonly path: string;
  /** Status codes that mean "the sidecar accepted the request". */
  readonly acceptStatus: readonly number[];
  readonly timeoutSeconds: number;
}

const METHODS = ['GET', 'POST', 'PUT'] as const;
const DEFAULT_ACCEPT_STATUS = [200, 202, 204];

export const httpKind: AttemptKind<HttpAttempt> = {
  name: 'http',
  synopsis: 'http {method, port, path}',
  parse(v: unknown, p: string, c: FieldCheck) {
    const h = c.mapping(v, p, ['method', 'port', 'path', 'acceptStatus'], 'method, port, path, acceptStatus');
    if (h === undefined) return undefined;
    let method: string | undefined = 'POST';
    if (h.method !== undefined) {
      method =
        typeof h.method === 'string' && (METHODS as readonly string[]).includes(h.method)
          ? h.method
          : c.fail(`${p}.method`, `must be one of ${METHODS.join(', ')}, got ${typeof h.method === 'string' ? c.quote(h.method) : c.describe(h.method)}`);
    }
    const port = c.integer(h.port, `${p}.port`, 1, 65535);
    let urlPath: string | undefined;
    if (typeof h.path !== 'string' || !h.path.startsWith('/') || /\s/.test(h.path)) {
      c.fail(`${p}.path`, `must be a URL path starting with / and without blanks, got ${c.describe(h.path)}`);
    } else {
      urlPath = h.path;
    }
    let acceptStatus: number[] | undefined = DEFAULT_ACCEPT_STATUS;
    if (h.acceptStatus !== undefined) {
      const list = c.list(h.acceptStatus, `${p}.acceptStatus`, 'a list of HTTP status codes');
      acceptStatus = list?.map((s, i) => c.integer(s, `${p}.acceptStatus[${i}]`, 100, 599)).filter((s) => s !== undefined);
      if (acceptStatus?.length !== list?.length) acceptStatus = undefined;
    }
    if (method === undefined || port === undefined || urlPath === undefined || acceptStatus === undefined) return undefined;
    return { kind: 'http', method, port, path: urlPath, acceptStatus };
  },
  describe: (a) => `http ${a.method} :${a.port}${a.path}`,
  json: (a) => ({ kind: 'http', method: a.method, port: a.port, path: a.path }),
};
