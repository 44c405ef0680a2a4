import type { HttpAttempt } from '../domain/catalog.ts';
import type { PortForwarder } from '../ports.ts';
import { type AttemptOutcome, type AttemptTarget, causeOf, errorText, type Strategy } from './strategy.ts';

/** How the kube client words an error before the WebSocket upgrade (kube/kube-client.ts). */
const UNREACHABLE = 'cannot reach the API server';

/** Calls the sidecar's admin endpoint on the pod's loopback, through pods/portforward. */
export function httpStrategy(forwarder: PortForwarder): Strategy<HttpAttempt> {
  return {
    async run(target: AttemptTarget, attempt: HttpAttempt, signal?: AbortSignal): Promise<AttemptOutcome> {
      try {
        const reply = await forwarder.request(target.pod, {
          method: attempt.method,
          port: attempt.port,
          path: attempt.path,
          timeoutMs: attempt.timeoutSeconds * 1000,
          ...(signal !== undefined && { signal }),
        });
        if (attempt.acceptStatus.includes(reply.status)) return { ok: true, detail: `HTTP ${reply.status}` };
        const body = reply.body.trim().slice(0, 200);
        // 404/405/501: the endpoint is not there (linkerd without proxy-admin-shutdown, an
        // admin port without the flag that enables it); asking again will not change that.
        const missing = reply.status === 404 || reply.status === 405 || reply.status === 501;
        return { ok: false, error: `HTTP ${reply.status}${body === '' ? '' : ` ${JSON.stringify(body)}`}`, cause: missing ? 'endpoint-missing' : 'rejected' };
      } catch (err) {
        const error = errorText(err);
        const cause = causeOf(err);
        // The request is sent only once the port-forward is open: when the API server could not
        // be reached to open it, nothing reached the sidecar (an exec may start before its answer).
        return { ok: false, error, cause: cause === 'api-unavailable' && error.startsWith(UNREACHABLE) ? 'api-unreachable' : cause };
      }
    },
  };
}
