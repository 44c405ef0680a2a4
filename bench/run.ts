/**
 * Benchmarks that print numbers (no pass/fail): decide throughput, memory per watched pod, and
 * reconcile throughput through the work queue with instant fakes. Run: npm run bench
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { DEFAULT_CATALOG_PATH, loadCatalog, parseCatalog } from '../src/config/catalog-file.ts';
import { catalogReads, findCatalogEntry } from '../src/domain/catalog.ts';
import { decide } from '../src/domain/decide.ts';
import { isMalformed, type PodView, parsePod } from '../src/domain/pod-view.ts';
import { PodCache } from '../src/pod-cache.ts';
import type { EventSink, Executor, PortForwarder } from '../src/ports.ts';
import { Reconciler } from '../src/reconcile/reconciler.ts';
import { WorkQueue } from '../src/reconcile/work-queue.ts';
import { EventRecorder } from '../src/record/event-recorder.ts';
import { Metrics } from '../src/record/metrics.ts';
import { createRegistry } from '../src/strategies/registry.ts';

const gc = (globalThis as { gc?: () => void }).gc;
const catalog = loadCatalog(DEFAULT_CATALOG_PATH);
const template = JSON.parse(readFileSync(new URL('../test/fixtures/naisjob-linkerd-cloudsql-done.json', import.meta.url), 'utf8'));

/** The fixture plus what the API adds to every real pod: managedFields and the token volume. */
function realistic(p: any): any {
  p.metadata.managedFields = [
    {
      manager: 'kube-controller-manager',
      operation: 'Update',
      apiVersion: 'v1',
      time: '2026-11-27T06:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:generateName': {}, 'f:labels': { '.': {}, 'f:app': {}, 'f:nais.io/naisjob': {} }, 'f:ownerReferences': {} },
        'f:spec': { 'f:containers': { 'k:{"name":"linkerd-proxy"}': { '.': {}, 'f:image': {}, 'f:name': {}, 'f:ports': {} } } },
      },
    },
    {
      manager: 'kubelet',
      operation: 'Update',
      apiVersion: 'v1',
      time: '2026-11-27T06:04:41Z',
      fieldsType: 'FieldsV1',
      subresource: 'status',
      fieldsV1: { 'f:status': { 'f:conditions': {}, 'f:containerStatuses': {}, 'f:phase': {}, 'f:podIP': {}, 'f:startTime': {} } },
    },
  ];
  p.spec.volumes = [
    {
      name: 'kube-api-access-x',
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
  for (const c of p.spec.containers) {
    c.volumeMounts = [{ name: 'kube-api-access-x', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }];
    c.terminationMessagePath = '/dev/termination-log';
    c.terminationMessagePolicy = 'File';
    c.imagePullPolicy = 'IfNotPresent';
  }
  return p;
}

function rawPod(i: number): any {
  const p = structuredClone(template);
  p.metadata.name = `job-${i}`;
  p.metadata.uid = `uid-${i}`;
  p.metadata.resourceVersion = String(i);
  return p;
}

function heapUsed(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

function bench(name: string, n: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(n, 1000); i++) fn(i);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const ms = performance.now() - t0;
  console.log(`${name.padEnd(44)} ${(n / (ms / 1000)).toFixed(0).padStart(10)} ops/s  ${((ms * 1000) / n).toFixed(2).padStart(8)} µs/op`);
}

// 1. decide and parse
const raws = Array.from({ length: 2000 }, (_, i) => rawPod(i));
const views = raws.map((r) => parsePod(r) as PodView);
bench('parsePod (kubectl JSON → PodView)', 200_000, (i) => parsePod(raws[i % raws.length]));
bench('decide (reap, 2 targets)', 1_000_000, (i) => decide(views[i % views.length] as PodView, catalog));

// 1b. image matching, worst case: every container name of the shipped catalog with a 64 KiB image
// string (pod-controlled), and a catastrophic-backtracking pattern that a JS RegExp takes seconds
// on, at the longest image that is still matched (512 characters) and beyond.
function worstMs(c: typeof catalog, image: string, rounds = 200): number {
  const names = c.entries.flatMap((e) => e.containers);
  let worst = 0;
  for (let r = 0; r < rounds; r++) {
    for (const name of names) {
      const t0 = performance.now();
      findCatalogEntry(c, { name, image });
      worst = Math.max(worst, performance.now() - t0);
    }
  }
  return worst;
}
const evil = parseCatalog({ sidecars: [{ name: 'evil', containers: ['proxy'], image: '(a+)+$', attempts: [{ exec: { command: ['x'] } }] }] }, 'bench');
console.log(`image match, shipped catalog, 64 KiB image: worst ${worstMs(catalog, 'a'.repeat(64 * 1024)).toFixed(3)} ms per container`);
console.log(
  `image match, pattern (a+)+$, 512-character image: worst ${worstMs(evil, `${'a'.repeat(511)}!`, 50).toFixed(3)} ms; 64 KiB image: worst ${worstMs(evil, 'a'.repeat(64 * 1024)).toFixed(3)} ms (over 512 characters: no match)`,
);

// 2. memory per watched pod: the slim PodView kept by hahaha vs the whole pod object an
// informer cache would keep, both built from the pod's JSON text as a watch delivers it.
const N = 20_000;
if (gc === undefined) console.log('(run with --expose-gc for memory numbers)');
const text = JSON.stringify(realistic(rawPod(0)));
const fromWire = (i: number) => JSON.parse(text.replaceAll('job-0', `job-${i}`).replaceAll('uid-0', `uid-${i}`));
heapUsed();
let before = heapUsed();
const full = new Map<string, unknown>();
for (let i = 0; i < N; i++) full.set(`team/job-${i}`, fromWire(i));
const fat = (heapUsed() - before) / N;
full.clear();
heapUsed();
before = heapUsed();
const cache = new PodCache();
for (let i = 0; i < N; i++) {
  const v = parsePod(fromWire(i));
  if (!isMalformed(v)) cache.upsert(v);
}
const slim = (heapUsed() - before) / N;
console.log(
  `memory per watched pod (${text.length} B of JSON): ${slim.toFixed(0)} B as PodView vs ${fat.toFixed(0)} B as the whole object (${cache.size} pods)`,
);

// 3. reconcile throughput: 2,000 finished pods, 2 sidecars each, fakes that stop at once
const store = new PodCache();
const log = pino({ level: 'silent' });
const metrics = new Metrics({ defaultMetrics: false });
const stop = (key: string, container: string) => {
  const p = store.get(key);
  if (p === undefined) return;
  store.upsert({
    ...p,
    containerStatuses: p.containerStatuses.map((s) =>
      s.name === container ? { ...s, state: { kind: 'terminated', exitCode: 0, finishedAt: Date.now() } } : s,
    ),
  });
};
const portForwarder: PortForwarder = {
  async request(pod, call) {
    setImmediate(() => stop(`${pod.namespace}/${pod.name}`, call.port === 4191 ? 'linkerd-proxy' : 'cloudsql-proxy'));
    return { status: 200, body: '' };
  },
};
const executor: Executor = {
  async exec() {
    return { exitCode: 0, stdout: '', stderr: '' };
  },
};
const sink: EventSink = {
  async create() {
    return { name: 'e' };
  },
  async repeat() {},
};
const reconciler = new Reconciler({
  store,
  catalog,
  strategies: createRegistry({ portForwarder, executor }),
  events: new EventRecorder(sink, metrics, log),
  metrics,
  log,
  verifyTimeoutMs: 5000,
});
const PODS = 2000;
const done: number[] = [];
const t0 = performance.now();
const queue = new WorkQueue({
  concurrency: 32,
  retry: { baseMs: 1000, maxMs: 1000 },
  handler: async (key, signal) => {
    const r = await reconciler.reconcile(key, signal);
    done.push(performance.now() - t0);
    return r;
  },
});
for (let i = 0; i < PODS; i++) {
  const v = parsePod(rawPod(i), catalogReads(catalog)) as PodView;
  store.upsert(v);
  queue.add(`${v.namespace}/${v.name}`);
}
await new Promise<void>((resolve) => {
  const check = () => (done.length >= PODS ? resolve() : setTimeout(check, 5));
  check();
});
const total = performance.now() - t0;
console.log(`reconcile ${PODS} pods × 2 sidecars (concurrency 32, instant fakes): ${total.toFixed(0)} ms, ${(PODS / (total / 1000)).toFixed(0)} pods/s`);
await queue.shutdown(1000);

// 4. a refused connection: how long from the failed attempt to the next one (issue target: at
// most 100 ms beyond the attempt itself). The fake refuses :9091 at once and times the exec.
{
  const ROUNDS = 200;
  const gaps: number[] = [];
  const refStore = new PodCache();
  let failedAt = 0;
  const refReconciler = new Reconciler({
    store: refStore,
    catalog,
    strategies: createRegistry({
      portForwarder: {
        async request() {
          failedAt = performance.now();
          throw new Error('connect ECONNREFUSED 127.0.0.1:9091');
        },
      },
      executor: {
        async exec(pod) {
          gaps.push(performance.now() - failedAt);
          const key = `${pod.namespace}/${pod.name}`;
          setImmediate(() => {
            const p = refStore.get(key);
            if (p !== undefined) {
              refStore.upsert({
                ...p,
                containerStatuses: p.containerStatuses.map((c) => (c.name === 'cloudsql-proxy' ? { ...c, state: { kind: 'terminated', exitCode: 130 } } : c)),
              });
            }
          });
          return { exitCode: 0, stdout: '', stderr: '' };
        },
      },
    }),
    events: new EventRecorder(sink, new Metrics({ defaultMetrics: false }), log),
    metrics: new Metrics({ defaultMetrics: false }),
    log,
    verifyTimeoutMs: 5000,
  });
  for (let i = 0; i < ROUNDS; i++) {
    const raw = rawPod(i);
    raw.spec.containers = raw.spec.containers.filter((c: { name: string }) => c.name !== 'linkerd-proxy');
    raw.status.containerStatuses = raw.status.containerStatuses.filter((c: { name: string }) => c.name !== 'linkerd-proxy');
    for (const c of raw.spec.containers) if (c.name === 'cloudsql-proxy') c.image = 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-alpine';
    const v = parsePod(raw, catalogReads(catalog)) as PodView;
    refStore.upsert(v);
    await refReconciler.reconcile(`${v.namespace}/${v.name}`);
  }
  gaps.sort((a, b) => a - b);
  const q = (f: number) => (gaps[Math.min(gaps.length - 1, Math.floor(f * gaps.length))] ?? Number.NaN).toFixed(2);
  console.log(`refused connection -> next attempt (${gaps.length} rounds): p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms (was a fixed 750 ms settle)`);
}
