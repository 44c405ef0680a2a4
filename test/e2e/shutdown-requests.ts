/**
 * Shutdown requests as the fake sidecars saw them: each `fake-sidecar` subcommand logs one line
 * with the marker `shutdown-request: ` per request to its shutdown endpoint and per signal it
 * handles, before acting on it (cluster/sidecars/README.md). Counting those lines in a
 * container's log tells how often the sidecar was asked to stop, observed at the sidecar and not
 * as hahaha reports it. The log is read with `kubectl logs` (through the API server and the
 * node) or, once the pod is gone, from the node's own log files, which outlive the pod.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Starts the message of a shutdown request line; cluster/sidecars/fake-sidecar's RequestMarker. */
export const SHUTDOWN_REQUEST_MARKER = 'shutdown-request: ';

export interface ShutdownRequest {
  /** The fake-sidecar subcommand that received it (`linkerd`, `hang`, `configmap-reload`, ...). */
  sidecar: string;
  /** What it received: `http POST /shutdown from 127.0.0.1:4711`, `signal interrupt`, ... */
  how: string;
}

const LINE = /^fake-sidecar ([\w-]+): .*?shutdown-request: (.*)$/;

/** The shutdown requests in a container's log text, in order. */
export function parseShutdownRequests(log: string): ShutdownRequest[] {
  const out: ShutdownRequest[] = [];
  for (const line of log.split('\n')) {
    const m = LINE.exec(line);
    if (m) out.push({ sidecar: m[1] as string, how: m[2] as string });
  }
  return out;
}

/** One line per request, `<sidecar> <how>`, as assertions and reports print them. */
export function describeRequests(requests: readonly ShutdownRequest[]): string[] {
  return requests.map((r) => `${r.sidecar} ${r.how}`);
}

/**
 * The shutdown requests a container received over all its runs, read from the node's log files
 * (`<run dir>/node/logs/<ns>_<pod>_<uid>/<container>/<restart>.log`, kept after the pod is
 * deleted). Empty when the container never started.
 */
export function nodeLogShutdownRequests(runDir: string, pod: { namespace: string; name: string; uid: string }, container: string): ShutdownRequest[] {
  const dir = join(runDir, 'node', 'logs', `${pod.namespace}_${pod.name}_${pod.uid}`, container);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /^\d+\.log$/.test(f))
    .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10))
    .flatMap((f) => parseShutdownRequests(readFileSync(join(dir, f), 'utf8')));
}

/** The shutdown requests a container of a pod on the e2e cluster received, from `kubectl logs`. */
export async function shutdownRequests(ns: string, pod: string, container: string): Promise<ShutdownRequest[]> {
  // Imported here: the soak uses this module against a cluster of its own, without the harness.
  const { kubectl } = await import('./harness.ts');
  return parseShutdownRequests(await kubectl(['logs', '-n', ns, pod, '-c', container]));
}

/**
 * Asserts that the container received exactly the shutdown requests `expected`, in order, each
 * given as the start of `<sidecar> <how>`: `['linkerd http POST /shutdown']` is "exactly one
 * POST /shutdown"; `[]` is "never asked".
 */
export async function assertShutdownRequests(ns: string, pod: string, container: string, expected: readonly string[]): Promise<void> {
  const got = describeRequests(await shutdownRequests(ns, pod, container));
  const matches = got.length === expected.length && expected.every((e, i) => got[i]?.startsWith(e));
  assert.ok(
    matches,
    `${ns}/${pod} container ${container}: ${got.length} shutdown request(s), want ${expected.length}:\n  got:  ${JSON.stringify(got)}\n  want: ${JSON.stringify(expected)}`,
  );
}
