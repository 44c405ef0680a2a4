/**
 * `npm run bench:cluster`: hahaha against a real (local) cluster of its own, started here in
 * BENCH_CLUSTER_DIR (default $TMPDIR/hahaha-bench-cluster, not the default .cluster) and always torn
 * down at the end, also on failure or Ctrl-C. Measures, with one hahaha process run from the
 * TypeScript sources (node_modules/.bin/node bin/hahaha.js run, admin kubeconfig):
 *   1. RSS (/proc/<pid>/status VmRSS) at 0 and n watched Running pods (bare pods on a virtual
 *      node, see VIRTUAL_NODE), per watched pod = (RSS(n) - RSS(0)) / n;
 *   2. reaction: 20 Jobs one after another (main `sleep 1`, one linkerd sidecar), from hahaha's
 *      hahaha_sidecar_shutdown_latency_seconds and hahaha_attempt_duration_seconds histograms;
 *   3. a burst of 50 Jobs with 3 sidecars each: CPU ms per reaped pod (/proc/<pid>/stat utime +
 *      stime) and pods/s from the first Job created to the last Job Complete;
 *   4. idle with LEADER_ELECT=true for 60 s: lease requests per minute (the API server's
 *      apiserver_request_total{resource="leases"}, minus the rate measured without hahaha's
 *      elector) and CPU seconds per minute.
 * Prints one table and writes it to BENCH_OUT (default $TMPDIR/hahaha-bench-cluster.txt).
 * Phases 2 and 3 run first, then phase 1 with a fresh hahaha process, then phase 4.
 * Knobs: BENCH_RSS_STEPS (default "500,2000,5000,20000"), BENCH_RSS_BUDGET_SECONDS (default 540: no
 * further step after it), BENCH_MAX_LOAD (stop adding pods above this 1-minute load average per
 * core, default 6), BENCH_IDLE_SECONDS (default 60).
 * Not part of CI.
 */
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { metricValue } from '../test/e2e/metric-value.ts';
import { startHahaha as startTestHahaha } from '../test/unit/chart-assets.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLUSTER_DIR = process.env.BENCH_CLUSTER_DIR ?? join(tmpdir(), 'hahaha-bench-cluster');
const OUT = process.env.BENCH_OUT ?? join(tmpdir(), 'hahaha-bench-cluster.txt');
const RSS_STEPS = (process.env.BENCH_RSS_STEPS ?? '500,2000,5000,20000')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => n > 0);
const MAX_LOAD_PER_CORE = Number(process.env.BENCH_MAX_LOAD ?? 6);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const RSS_BUDGET_MS = Number(process.env.BENCH_RSS_BUDGET_SECONDS ?? 540) * 1000;
const LABEL_KEY = 'bench.hahaha.nais.io/pod';
const SELECTOR = `${LABEL_KEY}=true`;
const CLK_TCK = 100; // USER_HZ on Linux
const T0 = Date.now();

const rows: [string, string][] = [];
const notes: string[] = [];
function row(what: string, value: string): void {
  rows.push([what, value]);
  log(`${what}: ${value}`);
}
function log(msg: string): void {
  process.stderr.write(`[bench:cluster +${((Date.now() - T0) / 1000).toFixed(0)}s] ${msg}\n`);
}

const clusterEnv = { ...process.env, HAHAHA_CLUSTER_DIR: CLUSTER_DIR };
const K8S_BIN = execFileSync('bash', [`${ROOT}cluster/scripts/build.sh`, '--print-env'], { encoding: 'utf8', env: clusterEnv })
  .split('\n')
  .find((l) => l.startsWith('K8S_BIN='))
  ?.slice('K8S_BIN='.length);
if (!K8S_BIN) throw new Error('cluster/scripts/build.sh --print-env printed no K8S_BIN');
let KUBECONFIG = '';

async function kubectl(args: string[], input?: string, timeoutS = 60): Promise<string> {
  const child = run(`${K8S_BIN}/kubectl`, ['--kubeconfig', KUBECONFIG, `--request-timeout=${timeoutS}s`, ...args], {
    maxBuffer: 512 * 1024 * 1024,
    timeout: (timeoutS + 30) * 1000,
  });
  child.child.stdin?.end(input ?? '');
  try {
    return (await child).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.slice(0, 4).join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** Polls `fn` until it returns something other than undefined/false; fails after timeoutMs. */
async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

// ------------------------------------------------------------------ hahaha process
interface Hahaha {
  child: ChildProcess;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** A hahaha from the sources (the tests' launcher), ready once /readyz answers 200. */
async function startHahaha(env: Record<string, string>): Promise<Hahaha> {
  const h = await startTestHahaha({ KUBECONFIG, WATCH_SELECTOR: SELECTOR, INSTANCE_NAME: 'hahaha-bench', LEASE_NAMESPACE: 'default', ...env }, 30_000);
  await until('hahaha /readyz 200', async () => (await fetch(`http://127.0.0.1:${h.port}/readyz`)).status === 200, 60_000);
  return {
    child: h.child,
    pid: h.child.pid as number,
    port: h.port,
    async stop() {
      await Promise.race([h.stop(), sleep(30_000)]);
      if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
    },
  };
}

async function metricsText(h: Hahaha): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${h.port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return res.text();
}

interface Histogram {
  buckets: [number, number][]; // [le, cumulative count], summed over label sets
  sum: number;
  count: number;
}
function histogram(text: string, name: string): Histogram {
  const byLe = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{([^}]*)\\}\\s+(\\S+)`).exec(line);
    if (!m) continue;
    const le = /le="([^"]+)"/.exec(m[1] as string)?.[1] as string;
    const key = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    byLe.set(key, (byLe.get(key) ?? 0) + Number(m[2]));
  }
  return {
    buckets: [...byLe.entries()].sort((a, b) => a[0] - b[0]),
    sum: metricValue(text, `${name}_sum`),
    count: metricValue(text, `${name}_count`),
  };
}
function minus(a: Histogram, b: Histogram): Histogram {
  return {
    buckets: a.buckets.map(([le, c]) => [le, c - (b.buckets.find(([l]) => l === le)?.[1] ?? 0)]),
    sum: a.sum - b.sum,
    count: a.count - b.count,
  };
}
/** Quantile by linear interpolation inside the bucket, as PromQL's histogram_quantile. */
function quantile(h: Histogram, q: number): number {
  if (h.count === 0) return Number.NaN;
  const rank = q * h.count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of h.buckets) {
    if (c >= rank) {
      if (le === Number.POSITIVE_INFINITY) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(c - prevCount, 1e-9);
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}
function describeHistogram(h: Histogram): string {
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  const counts = h.buckets
    .filter(([, c], i, all) => i === 0 || c !== (all[i - 1] as [number, number])[1])
    .map(([le, c]) => `≤${le === Number.POSITIVE_INFINITY ? '+Inf' : le}:${c}`)
    .join(' ');
  if (h.count === 0) return 'no observations';
  const first = h.buckets[0];
  // every observation in the first bucket: an interpolated quantile would only be an artefact
  const q =
    first !== undefined && first[1] === h.count
      ? `p50 and p99 ≤ ${ms(first[0])}`
      : `p50 ≈${ms(quantile(h, 0.5))}, p99 ≈${ms(quantile(h, 0.99))} (interpolated in buckets)`;
  return `n=${h.count} mean ${ms(h.sum / h.count)}, ${q}; buckets ${counts}`;
}

// ------------------------------------------------------------------ /proc
function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}
/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15, counted from 1 with pid and comm
}
const MiB = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

async function apiLeaseRequests(): Promise<number> {
  return metricValue(await kubectl(['get', '--raw', '/metrics']), 'apiserver_request_total', { resource: 'leases' });
}

// ------------------------------------------------------------------ objects
/**
 * The local node admits 110 pods (kubelet's default), so the RSS phase binds its pods to a Node
 * object without a kubelet and sets their status to Running itself (PATCH pods/status as the
 * admin): hahaha watches them like running job pods (main container + a linkerd sidecar, both
 * running), and no process runs for them.
 */
const VIRTUAL_NODE = 'bench-virtual-node';

async function patchRunning(ns: string, names: string[]): Promise<void> {
  const kc = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']));
  const server = new URL(kc.clusters[0].cluster.server);
  const b64 = (s: string) => Buffer.from(s, 'base64');
  const agent = new Agent({
    keepAlive: true,
    maxSockets: 16,
    ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
    cert: b64(kc.users[0].user['client-certificate-data']),
    key: b64(kc.users[0].user['client-key-data']),
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const one = (name: string) =>
    new Promise<void>((resolve, reject) => {
      const body = JSON.stringify({
        status: {
          phase: 'Running',
          startTime: now,
          hostIP: '127.0.0.1',
          podIP: '10.99.0.1',
          conditions: [
            { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
            { type: 'Initialized', status: 'True', lastTransitionTime: now },
            { type: 'ContainersReady', status: 'True', lastTransitionTime: now },
            { type: 'Ready', status: 'True', lastTransitionTime: now },
          ],
          containerStatuses: [name, 'linkerd-proxy'].map((c) => ({
            name: c,
            image: `example.invalid/${c}:bench`,
            imageID: `bench://${c}`,
            containerID: `bench://${name}/${c}`,
            ready: true,
            started: true,
            restartCount: 0,
            state: { running: { startedAt: now } },
          })),
        },
      });
      const req = request(
        {
          agent,
          method: 'PATCH',
          host: server.hostname,
          port: server.port,
          path: `/api/v1/namespaces/${ns}/pods/${name}/status`,
          headers: { 'content-type': 'application/merge-patch+json', 'content-length': Buffer.byteLength(body) },
          timeout: 30_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`PATCH ${name}/status: HTTP ${res.statusCode}`))));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`PATCH ${name}/status timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) await one(n);
    }),
  );
  agent.destroy();
}

function sleeperPods(ns: string, from: number, count: number) {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: Array.from({ length: count }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `sleeper-${from + i}`, namespace: ns, labels: { [LABEL_KEY]: 'true', app: `sleeper-${from + i}` } },
      spec: {
        nodeName: VIRTUAL_NODE,
        tolerations: [{ operator: 'Exists' }],
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 0,
        containers: [
          { name: `sleeper-${from + i}`, image: 'example.invalid/sleep:bench', command: ['sleep', '100000'] },
          { name: 'linkerd-proxy', image: 'example.invalid/linkerd-proxy:bench', command: ['fake-sidecar', 'linkerd'] },
        ],
      },
    })),
  };
}

function job(ns: string, name: string, sidecars: 1 | 3) {
  const side = [
    { name: 'linkerd-proxy', image: 'example.invalid/linkerd-proxy:bench', command: ['fake-sidecar', 'linkerd'] },
    { name: 'secure-logs-fluentd', image: 'example.invalid/fluentd:bench', command: ['fake-sidecar', 'fluentd'] },
    { name: 'vks-sidecar', image: 'example.invalid/vks:bench', command: ['fake-sidecar', 'vks'] },
  ].slice(0, sidecars);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: ns },
    spec: {
      backoffLimit: 0,
      template: {
        metadata: {
          labels: { [LABEL_KEY]: 'true', app: name },
          annotations: { 'config.linkerd.io/proxy-admin-shutdown': 'enabled', 'hahaha.nais.io/native-sidecars': 'false' },
        },
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 5,
          // hahaha finds the main container by the pod's app label
          containers: [{ name, image: 'example.invalid/main:bench', command: ['sleep', '1'] }, ...side],
        },
      },
    },
  };
}

async function createNamespace(ns: string): Promise<void> {
  await kubectl(['create', 'namespace', ns]);
  await until(
    `service account default in ${ns}`,
    async () => (await kubectl(['get', 'sa', 'default', '-n', ns, '--ignore-not-found'])).includes('default'),
    30_000,
  );
}

async function runningPods(ns: string): Promise<number> {
  const out = await kubectl(['get', 'pods', '-n', ns, '--field-selector=status.phase=Running', '-o', 'name'], undefined, 120);
  return out.split('\n').filter(Boolean).length;
}

async function completeJobs(ns: string): Promise<{ complete: number; failed: string[] }> {
  const list = JSON.parse(await kubectl(['get', 'jobs', '-n', ns, '-o', 'json'])) as { items: any[] };
  let complete = 0;
  const failed: string[] = [];
  for (const j of list.items) {
    const c: any[] = j.status?.conditions ?? [];
    if (c.some((x) => x.type === 'Complete' && x.status === 'True')) complete += 1;
    if (c.some((x) => x.type === 'Failed' && x.status === 'True')) failed.push(j.metadata.name);
  }
  return { complete, failed };
}

// ------------------------------------------------------------------ phases
async function phaseRss(h: Hahaha): Promise<void> {
  const ns = 'bench-rss';
  await createNamespace(ns);
  await kubectl(
    ['create', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: VIRTUAL_NODE, labels: { 'bench.hahaha.nais.io/virtual': 'true' } } }),
  );
  await sleep(3000);
  const base = rssKiB(h.pid);
  const baseHeap = metricValue(await metricsText(h), 'nodejs_heap_size_used_bytes') / 1024;
  row('RSS, 0 watched pods', `${MiB(base)}; V8 heap used ${MiB(baseHeap)}`);
  let created = 0;
  const deadline = Date.now() + RSS_BUDGET_MS;
  for (const n of RSS_STEPS) {
    const load = (loadavg()[0] as number) / cpus().length;
    if (load > MAX_LOAD_PER_CORE) {
      notes.push(`RSS: stopped before ${n} pods: load average ${load.toFixed(1)} per core > BENCH_MAX_LOAD ${MAX_LOAD_PER_CORE}`);
      log(notes.at(-1) as string);
      break;
    }
    const t = Date.now();
    while (created < n) {
      const batch = Math.min(500, n - created);
      await kubectl(['create', '-f', '-', '-o', 'name'], JSON.stringify(sleeperPods(ns, created, batch)), 120);
      await patchRunning(
        ns,
        Array.from({ length: batch }, (_, i) => `sleeper-${created + i}`),
      );
      created += batch;
    }
    try {
      await until(
        `${n} Running pods watched by hahaha`,
        async () => {
          const watched = metricValue(await metricsText(h), 'hahaha_watched_pods');
          log(`  watched ${watched}/${n}, Running ${await runningPods(ns)}, load ${loadavg()[0]?.toFixed(1)}`);
          return watched >= n;
        },
        Math.max(10_000, deadline - Date.now()),
        5000,
      );
    } catch (err) {
      notes.push(`RSS at ${n} pods not measured: ${(err as Error).message}`);
      log(notes.at(-1) as string);
      break;
    }
    const ready = (await fetch(`http://127.0.0.1:${h.port}/readyz`)).status;
    await sleep(5000); // let the list/watch settle
    const rss = rssKiB(h.pid);
    const heap = metricValue(await metricsText(h), 'nodejs_heap_size_used_bytes') / 1024;
    row(
      `RSS, ${n} watched pods`,
      `${MiB(rss)}: ${((rss - base) / n).toFixed(1)} KiB per pod; V8 heap used ${MiB(heap)}, ${((heap - baseHeap) / n).toFixed(1)} KiB per pod (not after a full GC); readyz ${ready}; ${((Date.now() - t) / 1000).toFixed(0)} s to create`,
    );
  }
  log('deleting the sleeper pods');
  // no kubelet finishes their graceful deletion: one deletecollection with grace 0 removes them
  await kubectl(['delete', '--raw', `/api/v1/namespaces/${ns}/pods?gracePeriodSeconds=0`], undefined, 600);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
  await kubectl(['delete', 'node', VIRTUAL_NODE, '--wait=false']);
  await until('hahaha to drop the deleted pods', async () => metricValue(await metricsText(h), 'hahaha_watched_pods') === 0, 300_000, 2000);
  try {
    await until('the sleeper pods to be gone', async () => !(await kubectl(['get', 'namespace', ns, '--ignore-not-found'])).includes(ns), 300_000, 3000);
  } catch (err) {
    notes.push(`RSS: the sleeper pods were still being deleted during the next phases (${(err as Error).message})`);
  }
}

async function phaseReaction(h: Hahaha): Promise<void> {
  const ns = 'bench-reaction';
  await createNamespace(ns);
  const before = await metricsText(h);
  const t = Date.now();
  for (let i = 0; i < 20; i++) {
    const name = `react-${i}`;
    await kubectl(['create', '-f', '-', '-o', 'name'], JSON.stringify(job(ns, name, 1)));
    await until(
      `job ${name} complete`,
      async () => {
        const j = JSON.parse(await kubectl(['get', 'job', name, '-n', ns, '-o', 'json']));
        const c: any[] = j.status?.conditions ?? [];
        if (c.some((x) => x.type === 'Failed' && x.status === 'True')) throw new Error(`job ${name} failed`);
        return c.some((x) => x.type === 'Complete' && x.status === 'True');
      },
      30_000,
      250,
    );
  }
  await sleep(1000);
  const after = await metricsText(h);
  row('reaction: 20 sequential Jobs, 1 sidecar', `${((Date.now() - t) / 1000).toFixed(1)} s in all`);
  row(
    '  shutdown latency (main ended → sidecar seen ended)',
    describeHistogram(minus(histogram(after, 'hahaha_sidecar_shutdown_latency_seconds'), histogram(before, 'hahaha_sidecar_shutdown_latency_seconds'))),
  );
  row(
    '  attempt duration (one shutdown attempt)',
    describeHistogram(minus(histogram(after, 'hahaha_attempt_duration_seconds'), histogram(before, 'hahaha_attempt_duration_seconds'))),
  );
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
}

async function phaseBurst(h: Hahaha): Promise<void> {
  const ns = 'bench-burst';
  await createNamespace(ns);
  const before = await metricsText(h);
  const cpu0 = cpuSeconds(h.pid);
  const t = Date.now();
  const jobs = Array.from({ length: 50 }, (_, i) => job(ns, `burst-${i}`, 3));
  await kubectl(['create', '-f', '-', '-o', 'name'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: jobs }));
  await until(
    '50 burst Jobs complete',
    async () => {
      const { complete, failed } = await completeJobs(ns);
      if (failed.length > 0) throw new Error(`failed jobs: ${failed.join(' ')}`);
      return complete === 50;
    },
    180_000,
    500,
  );
  const seconds = (Date.now() - t) / 1000;
  await sleep(2000); // the last verifications and events
  const cpu = cpuSeconds(h.pid) - cpu0;
  const after = await metricsText(h);
  row('burst: 50 Jobs at once, 3 sidecars each', `${seconds.toFixed(1)} s first create → last Complete = ${(50 / seconds).toFixed(2)} pods/s`);
  row('  hahaha CPU per reaped pod', `${((cpu * 1000) / 50).toFixed(1)} ms (${cpu.toFixed(2)} s utime+stime for 50 pods)`);
  row(
    '  shutdown latency in the burst',
    describeHistogram(minus(histogram(after, 'hahaha_sidecar_shutdown_latency_seconds'), histogram(before, 'hahaha_sidecar_shutdown_latency_seconds'))),
  );
  const failedShutdowns = metricValue(after, 'hahaha_failed_sidecar_shutdowns') - metricValue(before, 'hahaha_failed_sidecar_shutdowns');
  if (failedShutdowns > 0) notes.push(`burst: hahaha_failed_sidecar_shutdowns grew by ${failedShutdowns}`);
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
}

async function phaseIdle(leaseRatePerMin: number): Promise<void> {
  const h = await startHahaha({ LEADER_ELECT: 'true' });
  try {
    await until(
      'hahaha to hold the lease',
      async () => (await kubectl(['get', 'lease', 'hahaha', '-n', 'default', '--ignore-not-found'])).includes('hahaha'),
      60_000,
    );
    await sleep(5000);
    const req0 = await apiLeaseRequests();
    const cpu0 = cpuSeconds(h.pid);
    const t = Date.now();
    await sleep(IDLE_SECONDS * 1000);
    const minutes = (Date.now() - t) / 60_000;
    const cpu = cpuSeconds(h.pid) - cpu0;
    const req = (await apiLeaseRequests()) - req0;
    const perMin = req / minutes;
    row(
      `idle ${IDLE_SECONDS} s, LEADER_ELECT=true`,
      `${(perMin - leaseRatePerMin).toFixed(1)} lease requests/min by hahaha (${perMin.toFixed(1)}/min in all − ${leaseRatePerMin.toFixed(1)}/min without its elector), ${(cpu / minutes).toFixed(2)} CPU s/min, RSS ${MiB(rssKiB(h.pid))}`,
    );
  } finally {
    await h.stop();
  }
}

// ------------------------------------------------------------------ main
let clusterUp = false;
async function down(): Promise<void> {
  if (!clusterUp) return;
  clusterUp = false;
  log('tearing down the cluster');
  try {
    execFileSync('bash', [`${ROOT}cluster/scripts/down.sh`], { env: clusterEnv, stdio: ['ignore', 'ignore', 'inherit'], timeout: 180_000 });
  } catch (err) {
    log(`down.sh failed: ${(err as Error).message}`);
  }
}
let hahaha: Hahaha | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    hahaha?.child.kill('SIGKILL');
    void down().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  log(`starting a cluster in ${CLUSTER_DIR}`);
  clusterUp = true;
  const up = await run('bash', [`${ROOT}cluster/scripts/up.sh`], { env: clusterEnv, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
  KUBECONFIG = up.stdout.trim().split('\n').at(-1) as string;
  log(`cluster up (${((Date.now() - T0) / 1000).toFixed(0)} s), kubeconfig ${KUBECONFIG}`);

  hahaha = await startHahaha({ LEADER_ELECT: 'false' });
  log(`hahaha pid ${hahaha.pid}, metrics :${hahaha.port}`);
  const phases: [string, () => Promise<void>][] = [
    ['reaction', () => phaseReaction(hahaha as Hahaha)],
    ['burst', () => phaseBurst(hahaha as Hahaha)],
    [
      'RSS',
      async () => {
        // a fresh process, so that RSS(0) holds nothing from the reaps above
        await (hahaha as Hahaha).stop();
        hahaha = await startHahaha({ LEADER_ELECT: 'false' });
        await phaseRss(hahaha);
      },
    ],
  ];
  for (const [name, phase] of phases) {
    try {
      await phase();
    } catch (err) {
      notes.push(`${name} phase failed: ${(err as Error).message.split('\n')[0]}`);
      log(notes.at(-1) as string);
    }
  }
  await hahaha.stop();
  hahaha = undefined;
  // lease requests of everything but hahaha's elector (the node's heartbeat), in a quiet window
  // without hahaha (namespace deletions above also touch leases)
  await sleep(5000);
  const lease0 = await apiLeaseRequests();
  const leaseT0 = Date.now();
  await sleep((IDLE_SECONDS * 1000) / 2);
  const baseRate = ((await apiLeaseRequests()) - lease0) / ((Date.now() - leaseT0) / 60_000);
  try {
    await phaseIdle(baseRate);
  } catch (err) {
    notes.push(`idle phase failed: ${(err as Error).message.split('\n')[0]}`);
  }
}

let rc = 0;
try {
  await main();
} catch (err) {
  rc = 1;
  notes.push(`aborted: ${(err as Error).message}`);
  log(notes.at(-1) as string);
} finally {
  if (hahaha) await hahaha.stop();
  await down();
}
const width = Math.max(...rows.map(([w]) => w.length), 10);
const table = [
  `hahaha cluster benchmark, ${new Date().toISOString()}, ${cpus().length} cores, run took ${((Date.now() - T0) / 1000).toFixed(0)} s`,
  '',
  ...rows.map(([w, v]) => `${w.padEnd(width)}  ${v}`),
  ...(notes.length > 0 ? ['', 'notes:', ...notes.map((n) => `- ${n}`)] : []),
  '',
].join('\n');
process.stdout.write(table);
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, table);
process.exit(rc);
