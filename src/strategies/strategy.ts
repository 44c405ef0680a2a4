/**
 * One strategy kind is one module implementing `Strategy` plus one line in `registry.ts`.
 * A strategy asks a sidecar to stop; it does not check that it stopped (reconcile verifies that
 * against the API), so a strategy is safe to run twice.
 */
import type { Attempt } from '../domain/catalog.ts';
import type { PodRef } from '../ports.ts';

/**
 * Why an attempt failed, as far as it can be told:
 * - forbidden: the API server refused the exec/port-forward (RBAC);
 * - missing-binary: the command does not exist in the container's image;
 * - endpoint-missing: the sidecar answered that the endpoint is not there (404, 405, 501);
 * - refused: nothing listens on the port;
 * - timeout: no answer within the attempt's timeout;
 * - rejected: the sidecar answered with another status, or the command exited non-zero;
 * - cut-off: the answer was cut off the way a stopping sidecar cuts it: an exec whose command was
 *   killed by a signal (137, 143: it dies with the container's PID namespace when PID 1 exits) or
 *   whose stream closed without a status, or an exec or port-forward the kubelet refused because
 *   the container or the pod's sandbox is not running any more (an earlier ask, cut off or not
 *   shown in time by the API, stopped it). The ask most likely landed, or the sidecar is gone;
 * - api-unreachable: the API server could not be connected to, or answered the upgrade with 5xx or
 *   429, or with a 403 that the client found to come from an API server not ready to authorize
 *   (its message says "the API server is not ready yet": RBAC's caches still loading after a
 *   start, kubernetes/kubernetes#121635), or did not open a port-forward within the attempt's
 *   timeout (its request is written only once the port is open). The ask never reached the
 *   sidecar, so it cannot have landed;
 * - api-unavailable: the connection to the API server broke during the call (it restarted): the
 *   ask may have landed.
 *   For both, the next attempt would go through the same API server, so none is tried: the pod
 *   is retried later;
 * - error: anything else.
 */
export type FailureCause =
  | 'forbidden'
  | 'missing-binary'
  | 'endpoint-missing'
  | 'refused'
  | 'timeout'
  | 'rejected'
  | 'cut-off'
  | 'api-unreachable'
  | 'api-unavailable'
  | 'error';

export type AttemptOutcome =
  | {
      readonly ok: true;
      readonly detail: string;
      /** How the request really went, when not as the attempt describes it (e.g. through an ephemeral container). */
      readonly via?: string;
    }
  | { readonly ok: false; readonly error: string; readonly cause: FailureCause };

/**
 * Failures that asking again cannot fix while the pod and the catalog stay as they are
 * (controller-runtime's TerminalError): reported once, rechecked slowly, not retried with backoff.
 */
export function isPermanent(cause: FailureCause): boolean {
  return cause === 'forbidden' || cause === 'missing-binary' || cause === 'endpoint-missing';
}

/**
 * Failures after which the sidecar cannot be stopping: the next attempt may run at once. After
 * the others (a cut-off answer, a timeout) the sidecar may be dying mid-answer.
 */
export function cannotHaveStopped(cause: FailureCause): boolean {
  return cause !== 'error' && cause !== 'timeout' && cause !== 'cut-off' && cause !== 'api-unavailable';
}

/** The API server, not the pod, failed (see FailureCause). */
export function isApiFailure(cause: FailureCause): boolean {
  return cause === 'api-unreachable' || cause === 'api-unavailable';
}

/** The cause of a thrown error: the API server's refusal, a refused connection, a timeout. */
export function causeOf(err: unknown): FailureCause {
  const text = errorText(err);
  // The kubelet says the container, or the pod's sandbox (containerd's wording, and the local
  // node's), is not running any more: an earlier ask may have stopped it.
  if (/container "[^"]*" in pod "?[^ ]+"? is not running|sandbox container is not running|has no running sandbox/i.test(text)) return 'cut-off';
  // No connection to the API server, or no upgrade: nothing reached the pod. A connection that
  // broke later (also before the upgrade's answer: an exec may start at the kubelet first) may
  // have carried the ask.
  if (
    /cannot reach the API server: (connect |getaddrinfo )?E(CONNREFUSED|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN)\b|refused the upgrade: HTTP (5\d\d|429)\b|did not open the port-forward within/.test(
      text,
    )
  ) {
    return 'api-unreachable';
  }
  if (/cannot reach the API server|lost the connection to the API server/.test(text)) return 'api-unavailable';
  // A 403 is RBAC's answer, unless the API server was not ready to authorize: then a next
  // attempt (a worse way to stop the sidecar, e.g. a signal it exits non-zero on) would be
  // chosen for nothing.
  if (/refused the upgrade: HTTP 403\b/.test(text)) {
    return /\(the API server is not ready yet: /.test(text) ? 'api-unreachable' : 'forbidden';
  }
  if (/ECONNREFUSED|connection refused/i.test(text)) return 'refused';
  if (/timed out|timeout|TimeoutError/i.test(text)) return 'timeout';
  if (/stream closed without an exit status|socket hang up|ECONNRESET/i.test(text)) return 'cut-off';
  if (/executable file not found|no such file or directory/i.test(text)) return 'missing-binary';
  return 'error';
}

export interface AttemptTarget {
  readonly pod: PodRef;
  readonly container: string;
}

export interface Strategy<A extends Attempt> {
  run(target: AttemptTarget, attempt: A, signal?: AbortSignal): Promise<AttemptOutcome>;
}

/** An error as one line for events: its message and cause, without the API server's noise. */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return withoutApiNoise(`${err.message}${cause}`);
  }
  return withoutApiNoise(String(err));
}

/**
 * Drops what the kubelet's streaming code adds that tells a job owner nothing: the pod's uid in
 * "error forwarding port 9091 to pod <id>, uid : …" (often empty), and the pod sandbox id.
 */
export function withoutApiNoise(text: string): string {
  return text
    .replace(/ to pod [0-9a-f]{64}, uid [^:]*:/g, ':')
    .replace(/, uid [^:]*:/g, ':')
    .replace(/\s+/g, ' ')
    .trim();
}
