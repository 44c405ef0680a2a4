/**
 * Helpers for the end-to-end tests: they drive the real local cluster (cluster/scripts/up.sh)
 * with the built kubectl and read the running hahaha's metrics. Each test works in a namespace
 * of its own and deletes it afterwards.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type RunningHahaha, startHahaha } from '../unit/chart-assets.ts';

const run = promisify(execFile);

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const RUN = process.env.HAHAHA_CLUSTER_DIR ?? `${ROOT}.cluster`;
export const KUBECONFIG = process.env.HAHAHA_KUBECONFIG ?? `${RUN}/kubeconfig`;

function env(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).replace(/^["']|["']$/g, '')]),
  );
}

export const HAHAHA = env(`${RUN}/hahaha.env`);

/** Where cluster/scripts/build.sh put the binaries: K8S_BIN, HELM_BIN, CONFIGMAP_RELOAD_BIN, ... */
export const BUILT: Record<string, string> = Object.fromEntries(
  execFileSync('bash', [`${ROOT}cluster/scripts/build.sh`, '--print-env'], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/**
 * The built kubectl against the local cluster: the admin kubeconfig, or `kubeconfig` (a
 * ServiceAccount's). Resolves with its output; rejects with kubectl's stderr.
 */
export async function kubectlRun(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  const child = run(`${BUILT.K8S_BIN}/kubectl`, ['--kubeconfig', opts.kubeconfig ?? KUBECONFIG, '--request-timeout=20s', ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
  child.child.stdin?.end(opts.input ?? '');
  try {
    return await child;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** kubectlRun's stdout. */
export async function kubectl(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<string> {
  return (await kubectlRun(args, opts)).stdout;
}

/**
 * Writes a kubeconfig that holds only a fresh TokenRequest token of a ServiceAccount, for the
 * local cluster, into `dir`; returns its path.
 */
export async function tokenKubeconfig(namespace: string, account: string, dir: string, duration = '1h'): Promise<string> {
  const token = (await kubectl(['create', 'token', account, '-n', namespace, `--duration=${duration}`])).trim();
  const admin = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']));
  const file = join(dir, `${namespace}.${account}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster: admin.clusters[0].cluster }],
      users: [{ name: account, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'local', user: account, namespace } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );
  return file;
}

/**
 * Waits until the API server's authorizer grants what the kubeconfig's account was just bound to:
 * RBAC objects reach the authorizer through its informers, a moment after `apply` returns (more
 * than a second on a loaded machine), and a permission check made before then sees too little.
 */
export async function rbacInEffect(kubeconfig: string, verb: string, resource: string): Promise<void> {
  await eventually(
    `${verb} ${resource} granted to ${kubeconfig}`,
    async () => {
      // `can-i create pods/exec` would ask about the pod named exec; a subresource is a flag.
      const [type = resource, sub] = resource.split('/');
      const args = ['auth', 'can-i', verb, type, ...(sub ? [`--subresource=${sub}`] : []), '--all-namespaces'];
      return (await kubectl(args, { kubeconfig })).trim() === 'yes';
    },
    30_000,
    100,
  );
}

export async function kubectlJson<T = any>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

export async function apply(objects: object | object[]): Promise<void> {
  const list = Array.isArray(objects) ? objects : [objects];
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: list }) });
}

/** Polls `fn` until it returns a value other than undefined/false, or fails with `what`. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

let counter = 0;
/** A fresh namespace for one test; returns its name and a cleanup function. */
export async function namespace(prefix: string): Promise<{ ns: string; cleanup: () => Promise<void> }> {
  counter += 1;
  const ns = `${prefix}-${process.pid % 100000}-${counter}`.slice(0, 63);
  await kubectl(['create', 'namespace', ns]);
  await eventually(
    `default service account in ${ns}`,
    async () => (await kubectl(['get', 'serviceaccount', 'default', '-n', ns, '--ignore-not-found'])).includes('default'),
    30_000,
  );
  return {
    ns,
    cleanup: async () => {
      await kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
    },
  };
}

/**
 * For a describe block of tests that need the suite's hahaha: fails at once when it is not
 * running, gives the tests a fresh namespace (read `.name` inside a test), deletes it after.
 */
export function testNamespace(prefix: string): { readonly name: string } {
  let name = '';
  let cleanup = async () => {};
  before(async () => {
    await assertHahahaRunning();
    ({ ns: name, cleanup } = await namespace(prefix));
  });
  after(() => cleanup());
  return {
    get name() {
      return name;
    },
  };
}

export interface ContainerSpec {
  name: string;
  command: string[];
  restartPolicy?: string;
  env?: Record<string, string>;
  image?: string;
  /** The container's working directory (the node honours it; the file system is the host's). */
  workingDir?: string;
}

/** A sidecar: the fake-sidecar binary that the node puts on PATH. */
export function sidecar(name: string, ...args: string[]): ContainerSpec {
  return { name, command: ['fake-sidecar', ...args] };
}

/** A main container that runs a shell script. */
export function main(name: string, script: string): ContainerSpec {
  return { name, command: ['sh', '-c', script] };
}

export interface PodTemplateOptions {
  app: string;
  containers: ContainerSpec[];
  initContainers?: ContainerSpec[];
  restartPolicy?: 'Never' | 'OnFailure';
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /**
   * Let the suite's admission webhook convert catalog sidecars marked native. Off by default:
   * the reaper's tests opt their pods out (hahaha.nais.io/native-sidecars: "false") so that they
   * exercise the stop paths; the native sidecar tests turn it on.
   */
  nativeConversion?: boolean;
  /**
   * Annotate the pod for the sidecars' own shutdown endpoints, as pods that use them are written:
   * linkerd's `config.linkerd.io/proxy-admin-shutdown: enabled` when a linkerd-proxy container is
   * there, Vault's `vault.hashicorp.com/agent-enable-quit: "true"` with a vault-agent. The
   * catalog skips those endpoints without them. Default true.
   */
  shutdownAnnotations?: boolean;
}

/** The annotation that opts a pod out of the native sidecar conversion. */
export const NATIVE_OPT_OUT = ['hahaha.nais.io/native-sidecars', 'false'] as const;

export function podTemplate(o: PodTemplateOptions) {
  const toContainer = (c: ContainerSpec) => ({
    name: c.name,
    image: c.image ?? `example.invalid/${c.name}:e2e`,
    command: c.command,
    ...(c.restartPolicy !== undefined && { restartPolicy: c.restartPolicy }),
    ...(c.env !== undefined && { env: Object.entries(c.env).map(([name, value]) => ({ name, value })) }),
    ...(c.workingDir !== undefined && { workingDir: c.workingDir }),
  });
  const has = (name: string) => o.containers.some((c) => c.name === name);
  const endpoints =
    o.shutdownAnnotations === false
      ? {}
      : {
          ...(has('linkerd-proxy') && { 'config.linkerd.io/proxy-admin-shutdown': 'enabled' }),
          ...(has('vault-agent') && { 'vault.hashicorp.com/agent-enable-quit': 'true' }),
        };
  const annotations = { ...(o.nativeConversion !== true && { [NATIVE_OPT_OUT[0]]: NATIVE_OPT_OUT[1] }), ...endpoints, ...o.annotations };
  return {
    metadata: {
      labels: { app: o.app, 'nais.io/naisjob': 'true', ...o.labels },
      ...(Object.keys(annotations).length > 0 && { annotations }),
    },
    spec: {
      restartPolicy: o.restartPolicy ?? 'Never',
      terminationGracePeriodSeconds: 5,
      containers: o.containers.map(toContainer),
      ...(o.initContainers !== undefined && { initContainers: o.initContainers.map(toContainer) }),
    },
  };
}

/** A Job shaped like a Naisjob's: pod labels app=<name> and nais.io/naisjob=true. */
export function naisjob(ns: string, name: string, o: Omit<PodTemplateOptions, 'app'> & { backoffLimit?: number }) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      backoffLimit: o.backoffLimit ?? 0,
      ttlSecondsAfterFinished: 600,
      template: podTemplate({ ...o, app: name }),
    },
  };
}

export async function jobPod(ns: string, job: string): Promise<any> {
  return eventually(`a pod of job ${ns}/${job}`, async () => {
    const list = await kubectlJson<{ items: any[] }>(['get', 'pods', '-n', ns, '-l', `batch.kubernetes.io/job-name=${job}`]);
    return list.items[0];
  });
}

export async function waitJobComplete(ns: string, job: string, timeoutMs = 90_000): Promise<any> {
  return eventually(
    `job ${ns}/${job} to complete`,
    async () => {
      const j = await kubectlJson(['get', 'job', job, '-n', ns]);
      const conditions: any[] = j.status?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Failed' && c.status === 'True')) {
        throw new Error(`job failed: ${JSON.stringify(conditions)}`);
      }
      return conditions.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
    },
    timeoutMs,
  );
}

export async function getPod(ns: string, name: string): Promise<any> {
  return kubectlJson(['get', 'pod', name, '-n', ns]);
}

export function containerState(pod: any, container: string): any {
  return (pod.status?.containerStatuses ?? []).find((s: any) => s.name === container)?.state;
}

export interface KubeEvent {
  type: string;
  reason: string;
  message: string;
  count?: number;
  reportingComponent?: string;
  source?: { component?: string };
  firstTimestamp?: string;
}

export async function podEvents(ns: string, pod: string): Promise<KubeEvent[]> {
  const list = await kubectlJson<{ items: KubeEvent[] }>(['get', 'events', '-n', ns, '--field-selector', `involvedObject.name=${pod}`]);
  return list.items;
}

export async function hahahaEvents(ns: string, pod: string): Promise<KubeEvent[]> {
  return (await podEvents(ns, pod)).filter((e) => e.reportingComponent === 'hahaha' || e.source?.component === 'hahaha');
}

/**
 * hahaha's events on the pod once `reported` holds for them, or, after `timeoutMs`, the events
 * as they are then (for the caller's assertions to show). A Job can be marked finished before
 * hahaha has posted the event of the stop that finished it: hahaha posts it once its watch shows
 * the exit, and the Job controller acts on the same pod update, each at its own pace.
 */
export async function reportedEvents(ns: string, pod: string, reported: (events: KubeEvent[]) => boolean, timeoutMs = 30_000): Promise<KubeEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await hahahaEvents(ns, pod);
    if (reported(events) || Date.now() >= deadline) return events;
    await sleep(250);
  }
}

/**
 * When the suite's hahaha began its first attempt on each of the pod's sidecars (ms since the
 * epoch), from its log: an attempt's line ("attempt accepted, …" or "attempt failed") is written
 * when it ends, with its duration.
 */
export function firstAttemptStarts(pod: string): Map<string, number> {
  const starts = new Map<string, number>();
  for (const line of readFileSync(join(RUN, 'logs', 'hahaha.log'), 'utf8').split('\n')) {
    if (!line.includes(`"pod":"${pod}"`) || !line.includes('"msg":"attempt ')) continue;
    const entry = JSON.parse(line) as { time: string; container?: string; seconds?: number };
    if (entry.container === undefined || typeof entry.seconds !== 'number') continue;
    const start = Date.parse(entry.time) - entry.seconds * 1000;
    if (start < (starts.get(entry.container) ?? Number.POSITIVE_INFINITY)) starts.set(entry.container, start);
  }
  return starts;
}

/** reportedEvents until hahaha's Killing events number at least `count`. */
export function killingEvents(ns: string, pod: string, count = 1, timeoutMs?: number): Promise<KubeEvent[]> {
  return reportedEvents(ns, pod, (events) => events.filter((e) => e.reason === 'Killing').length >= count, timeoutMs);
}

/** Fails the test at once when no hahaha instance is serving, so no test passes without it. */
export async function assertHahahaRunning(): Promise<void> {
  const url = HAHAHA.HAHAHA_METRICS_URL;
  assert.ok(url, `no ${RUN}/hahaha.env: start hahaha with npm run cluster:up`);
  const res = await fetch(`${url}/readyz`).catch((err: unknown) => {
    throw new Error(`hahaha is not running (${url}/readyz: ${String(err)})`);
  });
  assert.equal(res.status, 200, 'hahaha is not ready');
}

export async function metricsText(): Promise<string> {
  const res = await fetch(`${HAHAHA.HAHAHA_METRICS_URL}/metrics`);
  return res.text();
}

export { metricValue } from './metric-value.ts';

/**
 * A hahaha of the test's own, beside the suite's: it holds only a TokenRequest token of the
 * chart's ServiceAccount, runs without leader election and watches `label=<a random id>`, so it
 * sees only the test's pods. It is stopped, and its temp dir removed, after the test. `entry`: a
 * compiled daemon to start instead of the sources (see startHahaha).
 */
export async function ownHahaha(
  t: TestContext,
  label: string,
  env: Record<string, string> = {},
  entry?: Parameters<typeof startHahaha>[2],
): Promise<{ hahaha: RunningHahaha; id: string }> {
  const id = randomUUID().slice(0, 8);
  const dir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-own-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hahaha = await startHahaha(
    {
      KUBECONFIG: await tokenKubeconfig('hahaha-system', 'hahaha', dir),
      LEADER_ELECT: 'false',
      WATCH_SELECTOR: `${label}=${id}`,
      ...env,
    },
    undefined,
    entry,
  );
  t.after(() => hahaha.stop());
  return { hahaha, id };
}
