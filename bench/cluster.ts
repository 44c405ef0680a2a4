/**
 * `npm run bench:cluster`: hahaha as a black box (its process, its /metrics, the API server)
 * against a local cluster of its own, started here in BENCH_CLUSTER_DIR (default
 * $TMPDIR/hahaha-bench-cluster, never the default .cluster) with the API server's audit log on
 * (cluster/scripts/up.sh, HAHAHA_CLUSTER_AUDIT=1), and always torn down at the end, also on failure
 * or Ctrl-C. Not part of CI; about 15 minutes.
 *
 * hahaha runs as the image runs it: `tsc -p tsconfig.build.json` into BENCH_APP_DIR/dist (default
 * <run dir>-app) beside copies of bin/, config/ and package.json (node_modules linked), started as
 * `node <app dir>/bin/hahaha.js run` with the ENV of the Dockerfile's final stage (NODE_ENV) and
 * its ENTRYPOINT's node flags on node's command line (the repository's own dist/ is left alone:
 * bin/hahaha.js would prefer it to the sources for everyone). It holds only a TokenRequest token of the chart's ServiceAccount hahaha-system/hahaha
 * (RBAC from the chart, scripts/hahaha-up.sh --rbac-only), so the audit log attributes every
 * request to it exactly. Phases, in order:
 *
 *   1. Reaction against the raw floor, 1 and 3 sidecars (BENCH_REACTION_SAMPLES pods per variant,
 *      default 30). The bench watches its pods with one raw HTTPS watch (node:https, no client
 *      library) and is itself an ideal reaper for "floor" pods: in the watch callback that first
 *      shows the main container terminated it opens at once a WebSocket
 *      (`ws`, TLS sessions resumed through an https.Agent) to pods/portforward (v4.channel.k8s.io)
 *      for all its HTTP sidecars together, as hahaha does, and writes each HTTP request into its
 *      port's data channel (linkerd POST :4191/shutdown, fluentd GET
 *      :24444/api/processes.killWorkers), and one to pods/exec (v5.channel.k8s.io) for
 *      `/bin/kill -s INT 1` (vks), exactly hahaha's catalog calls. It uses a token of its own
 *      ServiceAccount hahaha-system/bench-floor, bound to the chart's ClusterRole and audited
 *      too, so both reapers pay the same authentication, authorization and audit costs.
 *      "hahaha" pods are identical bare pods (main `sleep 2`, then the sidecars) but for the
 *      label hahaha selects; floor and hahaha pods alternate one at a time, after one uncounted
 *      warm-up pod of each. For both, the span is the same and measured by the same watch:
 *        the bench's watch event that first shows the main container terminated
 *        → the bench's watch event that first shows every sidecar terminated.
 *      It contains the reaper's reaction, the call(s), the sidecar's exit, the node noticing it
 *      and the API server's status update and watch fan-out; all but the reaper's own part are
 *      common to both. hahaha's histograms are not used for it: hahaha_sidecar_shutdown_latency's
 *      first bucket is 250 ms; the mean of hahaha_attempt_duration_seconds (sum/count, exact) is
 *      printed beside the floor's mean call time (WebSocket start → HTTP status line, or → the
 *      exec's status on channel 3).
 *      Quantiles are nearest-rank over the samples (p99 of 30 samples is the maximum).
 *      overhead = hahaha − floor and ratio = hahaha / floor, each at p50 and at p99.
 *   2. A burst of BENCH_BURST_JOBS (default 50) Jobs with 3 sidecars created at once, with the
 *      same process: pods/s (first create → last Job Complete), hahaha's CPU (utime + stime of
 *      /proc/<pid>/stat) per reaped pod against HAHAHA's 7.6 ms, and hahaha's API requests per
 *      reaped pod from the audit log (requests received from the create to 4 s after the last
 *      Job completed; the long-running pod watch opened before is not in it), by verb and
 *      resource[/subresource], with the HTTP code when it is an error, and the TCP connections it
 *      opened per reaped pod (bench/count-connections.ts preloaded into it).
 *      Then, hahaha stopped, the same burst reaped by the floor as a process of its own
 *      (bench/floor-reaper.ts, the image's node flags, the floor's ServiceAccount): it watches
 *      as hahaha does and makes exactly hahaha's API requests per pod (checked in the audit log)
 *      with node:https and `ws` and nothing else, so its CPU per pod is what those requests
 *      cost in Node here; hahaha ÷ floor is hahaha's own overhead. Connections per pod beside.
 *  2b. The bridge's cost (phaseNative): the same burst of Jobs, with three sidecars the catalog
 *      marks `native: true` and no opt-out, while the chart's MutatingWebhookConfiguration
 *      (watch.selector set to the bench's label) points at the same process's webhook: the
 *      webhook makes the sidecars native as the Job controller creates each pod, the kubelet stops
 *      them, and hahaha only answers the admission request and watches. hahaha's CPU per pod
 *      against the reaped burst's, its API requests per pod, and a check that every pod was
 *      converted and no stop was attempted. The configuration exists only during this phase.
 *   3. RSS of the TypeScript sources (node src/cli.ts, as scripts/hahaha-up.sh runs it) 3 s
 *      after ready, against the compiled process of phase 4 at the same point.
 *   4. A fresh compiled process, LEADER_ELECT=false: BENCH_IDLE_SECONDS (default 60) idle, API
 *      requests per minute by verb and resource and CPU s per minute; then RSS at 0 and at each of
 *      BENCH_RSS_STEPS (default 2000,5000,20000) watched pods. The node admits 110 pods, so these
 *      are bare pods bound to a Node object without a kubelet (VIRTUAL_NODE) whose status the
 *      bench sets to Running (main container and a linkerd sidecar with shutdown enabled, both
 *      running; BENCH_RSS_POD=naisjob: pods shaped like a Naisjob's with linkerd injected, see
 *      naisjobPod): hahaha watches them as running job pods it can reap later, and nothing runs.
 *      VmRSS, RssAnon (the heap and other private memory) and RssFile (mostly the node binary's
 *      mapped pages) from /proc/<pid>/status, the V8 heap used from nodejs_heap_size_used_bytes
 *      (no forced GC: hahaha is a black box); per pod = (figure(n) − figure(0)) / n. After each
 *      step, a second fresh compiled process started with the n pods there: its VmRSS 5 s after
 *      its first list (which grows the heap further than pods arriving one by one do).
 *   5. A fresh compiled process, LEADER_ELECT=true (lease hahaha-system/hahaha, the chart's Role),
 *      once it holds the lease: BENCH_IDLE_SECONDS idle, API requests per minute by verb and
 *      resource, CPU s per minute, RSS.
 * Prints the figures as they come, then one summary table, with the load average and each
 * phase's 1-minute load average at its start and end, and writes it to BENCH_OUT (default
 * $TMPDIR/hahaha-bench-cluster.txt). Columns: the figure, hahaha's value, the
 * reference (the floor of the same run, or HAHAHA's figure from issue 11: 7.6 ms CPU per reaped
 * 3-sidecar pod, 9 MiB idle, 65 KB taken as KiB per watched pod), ratio = hahaha ÷ reference,
 * and the issue's target, met or MISSED; details on an indented line below. CPU and latency
 * figures depend on what else runs on the machine: compare figures of one run, not across runs.
 *   6. Takeover with BENCH_TAKEOVER_PODS (default 5000) finished pods: see phaseTakeover.
 * Other knobs: BENCH_PHASES (default reaction,burst,native,rss,leader,takeover: phases 1, 2, 2b, 3 and 4, 5, 6),
 * BENCH_RSS_BUDGET_SECONDS (default 540: no further RSS step after it),
 * BENCH_MAX_LOAD (no further RSS step above this 1-minute load average per core, default 6),
 * BENCH_NODE_OPTIONS (node flags added after the image's on the command line of the compiled
 * daemon and the floor's process, e.g. `--cpu-prof --cpu-prof-dir=DIR`; NODE_OPTIONS itself does
 * not reach them).
 * Each hahaha's info log is written to BENCH_CLUSTER_DIR/logs/hahaha-<pid>.log when it stops.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { metricValue } from '../test/e2e/metric-value.ts';
import { buildImageTree, dockerfileFinalStage } from '../test/image-tree.ts';
import { localWebhookConfigurations, servingCertificate } from '../test/local-webhook.ts';
import { freePort, until as poll } from '../test/soak/cluster.ts';
import { startHahaha as startTestHahaha } from '../test/unit/chart-assets.ts';
import { type Api, apiCall, apiFromKubeconfig, apiJson, floorCalls, rawPodWatch, SIDECARS } from './floor.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLUSTER_DIR = process.env.BENCH_CLUSTER_DIR ?? join(tmpdir(), 'hahaha-bench-cluster');
const OUT = process.env.BENCH_OUT ?? join(tmpdir(), 'hahaha-bench-cluster.txt');
const RSS_STEPS = (process.env.BENCH_RSS_STEPS ?? '2000,5000,20000')
  .split(',')
  .map((s) => Number(s.trim()))
  .filter((n) => n > 0);
/** The RSS steps' pods: `bare` (default, as in every earlier run) or `naisjob` (see naisjobPod). */
const RSS_POD = process.env.BENCH_RSS_POD ?? 'bare';
if (RSS_POD !== 'bare' && RSS_POD !== 'naisjob') throw new Error(`BENCH_RSS_POD must be bare or naisjob, got ${RSS_POD}`);
const REACTION_SAMPLES = Number(process.env.BENCH_REACTION_SAMPLES ?? 30);
const BURST_JOBS = Number(process.env.BENCH_BURST_JOBS ?? 50);
const MAX_LOAD_PER_CORE = Number(process.env.BENCH_MAX_LOAD ?? 6);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const RSS_BUDGET_MS = Number(process.env.BENCH_RSS_BUDGET_SECONDS ?? 540) * 1000;
/** Which phases run: reaction (1), burst (2), native (2b), rss (3 and 4), leader (5), takeover (6). */
const PHASES = new Set((process.env.BENCH_PHASES ?? 'reaction,burst,native,rss,leader,takeover').split(',').map((p) => p.trim()));
const TAKEOVER_PODS = Number(process.env.BENCH_TAKEOVER_PODS ?? 5000);
const LABEL_KEY = 'bench.hahaha.nais.io/pod';
const SELECTOR = `${LABEL_KEY}=true`;
const NAMESPACE = 'hahaha-system'; // the chart's release namespace (scripts/hahaha-up.sh)
const HAHAHA_USER = `system:serviceaccount:${NAMESPACE}:hahaha`;
const FLOOR_SA = 'bench-floor';
const FLOOR_USER = `system:serviceaccount:${NAMESPACE}:${FLOOR_SA}`;
/** HAHAHA's figures, measured on this machine (issue 11), and the issue's targets. */
const HAHAHA_CPU_MS_PER_POD = 7.6;
const HAHAHA_IDLE_RSS_MIB = 9;
/** HAHAHA's "65 KB per watched pod", taken as KiB. */
const HAHAHA_KIB_PER_POD = 65;
const CLK_TCK = 100; // USER_HZ on Linux
const T0 = Date.now();

const notes: string[] = [];
function log(msg: string): void {
  process.stderr.write(`[bench:cluster +${((Date.now() - T0) / 1000).toFixed(0)}s] ${msg}\n`);
}
function note(msg: string): void {
  notes.push(msg);
  log(msg);
}

/** One line of the summary table (`ratio` is hahaha ÷ reference), with details on a line below. */
interface SummaryRow {
  readonly figure: string;
  readonly hahaha: string;
  readonly reference: string;
  readonly ratio: string;
  readonly target: string;
  readonly detail: string;
}
const summary: SummaryRow[] = [];
function sum(row: Partial<SummaryRow> & Pick<SummaryRow, 'figure' | 'hahaha'>): void {
  const r = { reference: '', ratio: '', target: '', detail: '', ...row };
  summary.push(r);
  log([r.figure, r.hahaha, r.reference, r.ratio, r.target, r.detail].filter(Boolean).join(' | '));
}
const loads: string[] = [];
function phaseLoad(phase: string, start: number): void {
  loads.push(`${phase} ${start.toFixed(2)} → ${(loadavg()[0] as number).toFixed(2)}`);
}
const x = (r: number) => (Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a');
const check = (ok: boolean, what: string) => `${ok ? 'met' : 'MISSED'}: ${what}`;

const clusterEnv = {
  ...process.env,
  HAHAHA_CLUSTER_DIR: CLUSTER_DIR,
  HAHAHA_CLUSTER_AUDIT: '1',
  HAHAHA_CLUSTER_AUDIT_USERS: `${HAHAHA_USER},${FLOOR_USER}`,
};
const BINS = new Map(
  execFileSync('bash', [`${ROOT}cluster/scripts/build.sh`, '--print-env'], { encoding: 'utf8', env: clusterEnv })
    .trim()
    .split('\n')
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
);
const K8S_BIN = BINS.get('K8S_BIN');
if (!K8S_BIN) throw new Error('cluster/scripts/build.sh --print-env printed no K8S_BIN');
let KUBECONFIG = '';
/** The compiled daemon's directory: beside the run dir, which up.sh wipes and down.sh sweeps. */
const APP = process.env.BENCH_APP_DIR ?? `${CLUSTER_DIR}-app`;
const AUDIT_LOG = join(CLUSTER_DIR, 'logs', 'audit.log');

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

/** The soak's poll, every 500 ms by default here: hahaha's /metrics is often what is polled. */
function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 500): Promise<T> {
  return poll(what, fn, timeoutMs, everyMs);
}

// ------------------------------------------------------------------ raw API access

async function adminApi(): Promise<Api> {
  const kc = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']));
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return {
    server: new URL(kc.clusters[0].cluster.server),
    agent: new Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
      cert: b64(kc.users[0].user['client-certificate-data']),
      key: b64(kc.users[0].user['client-key-data']),
    }),
    headers: {},
  };
}

/** A token of a ServiceAccount as an Api, and as a kubeconfig file for hahaha. */
async function serviceAccountApi(account: string): Promise<{ api: Api; kubeconfig: string }> {
  const token = (await kubectl(['create', 'token', account, '-n', NAMESPACE, '--duration=6h'])).trim();
  const kc = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']));
  const cluster = kc.clusters[0].cluster;
  const file = join(CLUSTER_DIR, `${account}.kubeconfig`);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'local', cluster }],
      users: [{ name: account, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'local', user: account, namespace: NAMESPACE } }],
      'current-context': 'sa',
    }),
    { mode: 0o600 },
  );
  return { api: apiFromKubeconfig(file), kubeconfig: file };
}

// ------------------------------------------------------------------ hahaha process
interface Hahaha {
  child: ChildProcess;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** What was built: the commit, and whether src/ had uncommitted changes. */
let builtFrom = '';
/**
 * Builds the compiled daemon into APP, laid out as the image's /app, with the floor reaper and the
 * connection counter (both run with the image's node flags) compiled into APP/bench.
 */
async function buildApp(): Promise<void> {
  const head = (await run('git', ['-C', ROOT, 'log', '-1', '--format=%h %cI'])).stdout.trim();
  const dirty = (await run('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'package.json'])).stdout.trim() !== '';
  builtFrom = `${head}${dirty ? ' with uncommitted changes in src/ or package.json' : ''}`;
  await buildImageTree(APP, ['bench/floor-reaper.ts', 'bench/count-connections.ts']);
}

/**
 * The image's `ENV` (NODE_ENV, …) and the node flags of its ENTRYPOINT (`--lite-mode`, …), passed
 * on node's command line as the image does, followed by BENCH_NODE_OPTIONS, the flags of an
 * experiment (e.g. --cpu-prof), so that the compiled daemon runs with what the image sets.
 */
function imageEnv(): Record<string, string> {
  return dockerfileFinalStage().env;
}
function imageNodeFlags(): string[] {
  return [...dockerfileFinalStage().flags, ...(process.env.BENCH_NODE_OPTIONS ?? '').split(/\s+/).filter((f) => f !== '')];
}

let saKubeconfig = '';
/** Where bench/count-connections.ts writes each process's count of connections opened. */
const CONN_DIR = join(CLUSTER_DIR, 'connections');
/** The env that preloads bench/count-connections.ts (compiled) into a compiled hahaha or the floor. */
function countingEnv(env: Record<string, string>): Record<string, string> {
  mkdirSync(CONN_DIR, { recursive: true });
  return { ...env, BENCH_CONN_DIR: CONN_DIR, NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --import=${join(APP, 'bench', 'count-connections.js')}`.trim() };
}
/** TCP connections a process started with countingEnv has opened so far (written once a second). */
function connectionsOpened(pid: number): number {
  return Number(readFileSync(join(CONN_DIR, String(pid)), 'utf8'));
}

/**
 * A hahaha (compiled, as the image runs it, unless `sources`), ready once /readyz answers 200;
 * with `counting`, bench/count-connections.ts preloaded.
 */
async function startHahaha(env: Record<string, string>, sources = false, counting = false): Promise<Hahaha> {
  const h = await startTestHahaha(
    {
      KUBECONFIG: saKubeconfig,
      WATCH_SELECTOR: SELECTOR,
      INSTANCE_NAME: 'hahaha-bench',
      POD_NAMESPACE: NAMESPACE,
      LEASE_NAMESPACE: NAMESPACE,
      LEASE_NAME: 'hahaha',
      ...(sources ? {} : counting ? countingEnv(imageEnv()) : imageEnv()),
      ...env,
    },
    30_000,
    sources ? undefined : { script: join(APP, 'bin', 'hahaha.js'), cwd: APP, nodeArgs: imageNodeFlags() },
  );
  await until('hahaha /readyz 200', async () => (await fetch(`http://127.0.0.1:${h.port}/readyz`)).status === 200, 60_000);
  return {
    child: h.child,
    pid: h.child.pid as number,
    port: h.port,
    async stop() {
      await Promise.race([h.stop(), sleep(30_000)]);
      if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
      // Its info log beside the cluster's, to read why an attempt failed or was repeated.
      writeFileSync(join(CLUSTER_DIR, 'logs', `hahaha-${h.child.pid}.log`), `${h.logs.join('\n')}\n`);
    },
  };
}

async function metricsText(h: Hahaha): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${h.port}/metrics`, { signal: AbortSignal.timeout(10_000) });
  return res.text();
}

/** Mean of a histogram between two scrapes, in ms, and its count. */
function histogramMean(before: string, after: string, name: string, labels: Record<string, string> = {}): { meanMs: number; count: number } {
  const count = metricValue(after, `${name}_count`, labels) - metricValue(before, `${name}_count`, labels);
  const total = metricValue(after, `${name}_sum`, labels) - metricValue(before, `${name}_sum`, labels);
  return { meanMs: count > 0 ? (total * 1000) / count : Number.NaN, count };
}

// ------------------------------------------------------------------ /proc
interface Rss {
  vmRss: number;
  anon: number;
  file: number;
  shmem: number;
}
/** VmRSS and its parts, in KiB. */
function rss(pid: number): Rss {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const m = new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status);
    if (!m) throw new Error(`no ${name} for ${pid}`);
    return Number(m[1]);
  };
  return { vmRss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), shmem: field('RssShmem') };
}
/** utime and stime of a process, in seconds. */
function cpuTimes(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK }; // fields 14 and 15, counted from 1 with pid and comm
}
/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}
const MiB = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

// ------------------------------------------------------------------ audit log
/**
 * hahaha's requests received in [fromMs, toMs), from the API server's audit log: one per audit
 * ID (a watch or a WebSocket is logged at ResponseStarted and ResponseComplete), keyed by verb and
 * resource[/subresource].
 */
function auditRequests(user: string, fromMs: number, toMs: number): Map<string, number> {
  const seen = new Set<string>();
  const byKey = new Map<string, number>();
  for (const line of readFileSync(AUDIT_LOG, 'utf8').split('\n')) {
    if (line === '') continue;
    const ev = JSON.parse(line) as {
      auditID: string;
      verb: string;
      user?: { username?: string };
      objectRef?: { resource?: string; subresource?: string };
      requestURI: string;
      requestReceivedTimestamp: string;
      responseStatus?: { code?: number };
    };
    if (ev.user?.username !== user || seen.has(ev.auditID)) continue;
    const at = Date.parse(ev.requestReceivedTimestamp);
    if (at < fromMs || at >= toMs) continue;
    seen.add(ev.auditID);
    const ref = ev.objectRef;
    const what = ref?.resource ? `${ref.resource}${ref.subresource ? `/${ref.subresource}` : ''}` : ev.requestURI.split('?')[0];
    const code = ev.responseStatus?.code ?? 0;
    const key = `${ev.verb} ${what}${code >= 400 ? ` (${code})` : ''}`;
    byKey.set(key, (byKey.get(key) ?? 0) + 1);
  }
  return byKey;
}
function describeRequests(byKey: Map<string, number>, per: number): { total: number; text: string } {
  let total = 0;
  const parts = [...byKey.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, n]) => {
      total += n;
      return `${k} ${(n / per).toFixed(2)}`;
    });
  return { total: total / per, text: parts.length === 0 ? 'none' : parts.join(', ') };
}

// ------------------------------------------------------------------ objects

/**
 * A job pod's template: main container `sleep <mainSeconds>`, then 1 or 3 sidecars, opted out of
 * the admission webhook's conversion, so that hahaha reaps them.
 */
function podTemplate(name: string, sidecars: 1 | 3, labels: Record<string, string>, mainSeconds: number) {
  return templateOf(
    name,
    labels,
    { 'config.linkerd.io/proxy-admin-shutdown': 'enabled', 'hahaha.nais.io/native-sidecars': 'false' },
    mainSeconds,
    SIDECARS.slice(0, sidecars).map((s) => s.container),
  );
}

/** A pod template: main container `sleep <mainSeconds>` (named `name`, as its app label), then `sidecars`. */
function templateOf(name: string, labels: Record<string, string>, annotations: Record<string, string>, mainSeconds: number, sidecars: readonly object[]) {
  return {
    metadata: { labels: { ...labels, app: name }, annotations },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 5,
      // hahaha finds the main container by the pod's app label
      containers: [{ name, image: 'example.invalid/main:bench', command: ['sleep', String(mainSeconds)] }, ...sidecars],
    },
  };
}

/**
 * The native phase's sidecars: three the catalog marks `native: true`, which the admission webhook
 * turns into native sidecars (the fake cloud-sql-proxy exits 143 on the kubelet's SIGTERM, which a
 * native sidecar's exit code does not turn into a failure).
 */
const NATIVE_SIDECARS = [
  { name: 'secure-logs-fluentd', image: 'example.invalid/fluentd:bench', command: ['fake-sidecar', 'fluentd'] },
  { name: 'vks-sidecar', image: 'example.invalid/vks:bench', command: ['fake-sidecar', 'vks'] },
  { name: 'cloud-sql-proxy', image: 'example.invalid/cloud-sql-proxy:bench', command: ['fake-sidecar', 'cloudsql', '--quitquitquit'] },
];

/** A Job of hahaha's label whose three sidecars the admission webhook converts (no opt-out). */
function nativeJob(ns: string, name: string) {
  return jobOf(ns, name, templateOf(name, { [LABEL_KEY]: 'true' }, {}, 1, NATIVE_SIDECARS));
}

/** A Job running `template` once, without retries. */
function jobOf<T>(ns: string, name: string, template: T) {
  return { apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: ns }, spec: { backoffLimit: 0, template } };
}

/** A Job of hahaha's (label `true`) or of the floor's (label `floor`). */
function job(ns: string, name: string, sidecars: 1 | 3, label = 'true') {
  return jobOf(ns, name, podTemplate(name, sidecars, { [LABEL_KEY]: label }, 1));
}

/**
 * The local node admits 110 pods (kubelet's default), so the RSS phase binds its pods to a Node
 * object without a kubelet and sets their status to Running itself (PATCH pods/status as the
 * admin): hahaha watches them like running job pods (main container + a linkerd sidecar, both
 * running), and no process runs for them.
 */
const VIRTUAL_NODE = 'bench-virtual-node';

/**
 * Sets the pods' status as a kubelet would: Running, or (`finished`) Succeeded with both
 * containers exited 0 an hour ago (history, outside any hand-over window).
 */
async function patchStatus(admin: Api, ns: string, names: string[], finished = false): Promise<void> {
  const now = new Date(Date.now() - (finished ? 3_600_000 : 0)).toISOString().replace(/\.\d+Z$/, 'Z');
  const one = async (name: string) => {
    await apiJson(
      admin,
      'PATCH',
      `/api/v1/namespaces/${ns}/pods/${name}/status`,
      {
        status: {
          phase: finished ? 'Succeeded' : 'Running',
          startTime: now,
          hostIP: '127.0.0.1',
          podIP: '10.99.0.1',
          conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
          containerStatuses: [name, 'linkerd-proxy'].map((c) => ({
            name: c,
            image: `example.invalid/${c}:bench`,
            imageID: `bench://${c}`,
            containerID: `bench://${name}/${c}`,
            ready: !finished,
            started: !finished,
            restartCount: 0,
            state: finished ? { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } } : { running: { startedAt: now } },
          })),
          ...(RSS_POD === 'naisjob' && {
            initContainerStatuses: [
              {
                name: 'linkerd-init',
                image: 'example.invalid/linkerd-proxy-init:bench',
                imageID: 'bench://linkerd-init',
                containerID: `bench://${name}/linkerd-init`,
                ready: true,
                restartCount: 0,
                state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } },
              },
            ],
          }),
        },
      },
      'application/merge-patch+json',
    );
  };
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) await one(n);
    }),
  );
}

/** The Node object the sleeper pods are bound to; `mayExist`: one left by the RSS phase will do. */
async function createVirtualNode(opts: { mayExist?: boolean } = {}): Promise<void> {
  await kubectl(
    ['create', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: VIRTUAL_NODE, labels: { 'bench.hahaha.nais.io/virtual': 'true' } } }),
  ).catch((err: Error) => {
    if (opts.mayExist !== true || !/AlreadyExists/.test(err.message)) throw err;
  });
}

/** Creates sleeper-<from> … sleeper-<to − 1> in batches of 500 and sets their status (see patchStatus). */
async function createSleepers(admin: Api, ns: string, from: number, to: number, finished = false): Promise<void> {
  for (let created = from; created < to; ) {
    const batch = Math.min(500, to - created);
    await kubectl(['create', '-f', '-', '-o', 'name'], JSON.stringify(sleeperPods(ns, created, batch)), 120);
    await patchStatus(
      admin,
      ns,
      Array.from({ length: batch }, (_, i) => `sleeper-${created + i}`),
      finished,
    );
    created += batch;
  }
}

function sleeperPods(ns: string, from: number, count: number) {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: Array.from({ length: count }, (_, i) => (RSS_POD === 'naisjob' ? naisjobPod(ns, `sleeper-${from + i}`) : barePod(ns, `sleeper-${from + i}`))),
  };
}

/** The RSS steps' default pod: a main container and a linkerd sidecar, nothing else (~5 KB of JSON as served). */
function barePod(ns: string, name: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: ns,
      labels: { [LABEL_KEY]: 'true', app: name },
      // a sidecar hahaha can stop: no SidecarPreflight warning (an Event per pod) at first sight
      annotations: { 'config.linkerd.io/proxy-admin-shutdown': 'enabled' },
    },
    spec: {
      nodeName: VIRTUAL_NODE,
      tolerations: [{ operator: 'Exists' }],
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 0,
      containers: [
        { name, image: 'example.invalid/sleep:bench', command: ['sleep', '100000'] },
        { name: 'linkerd-proxy', image: 'example.invalid/linkerd-proxy:bench', command: ['fake-sidecar', 'linkerd'] },
      ],
    },
  };
}

/**
 * BENCH_RSS_POD=naisjob: the bare pod dressed as a Naisjob's with linkerd injected (~20 KB of JSON as
 * served, managedFields included): Job and linkerd labels and annotations, a main container with
 * 20 literal environment variables (5 of them per Job), resources, mounts and a security
 * context, linkerd-proxy with its own 20 variables, ports and probes, and the linkerd-init init
 * container.
 */
function naisjobPod(ns: string, name: string) {
  const bare = barePod(ns, name);
  const [main, proxy] = bare.spec.containers;
  const linkerdEnv = Array.from({ length: 20 }, (_, k) => ({ name: `LINKERD2_PROXY_SETTING_${k}`, value: `value-${k}-shared-by-every-injected-pod` }));
  const appEnv = [
    ...['NAIS_APP_NAME', 'NAIS_APP_IMAGE', 'NAIS_CLIENT_ID', 'OTEL_SERVICE_NAME', 'NAIS_POD_NAME_PREFIX'].map((n) => ({
      name: n,
      value: `${name}-${n.toLowerCase()}`,
    })),
    ...Array.from({ length: 15 }, (_, k) => ({ name: `NAIS_SETTING_${k}`, value: `cluster-wide-value-${k}` })),
  ];
  const mounts = [{ name: 'ca-bundle', mountPath: '/etc/ssl/certs/ca-certificates.crt', subPath: 'ca-bundle.pem', readOnly: true }];
  const security = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 1069, capabilities: { drop: ['ALL'] } };
  return {
    ...bare,
    metadata: {
      ...bare.metadata,
      labels: {
        ...bare.metadata.labels,
        team: 'bench',
        'batch.kubernetes.io/job-name': name,
        'job-name': name,
        'linkerd.io/control-plane-ns': 'linkerd',
        'linkerd.io/proxy-job': name,
        'linkerd.io/workload-ns': ns,
      },
      annotations: {
        ...bare.metadata.annotations,
        'linkerd.io/created-by': 'linkerd/proxy-injector stable-2.14.10',
        'linkerd.io/inject': 'enabled',
        'linkerd.io/proxy-version': 'stable-2.14.10',
        'linkerd.io/trust-root-sha256': 'a'.repeat(64),
        'kubectl.kubernetes.io/default-container': name,
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '8080',
      },
    },
    spec: {
      ...bare.spec,
      serviceAccountName: 'default',
      securityContext: { fsGroup: 1069, seccompProfile: { type: 'RuntimeDefault' } },
      initContainers: [
        {
          name: 'linkerd-init',
          image: 'example.invalid/linkerd-proxy-init:bench',
          args: ['--incoming-proxy-port', '4143', '--outgoing-proxy-port', '4140', '--proxy-uid', '2102', '--inbound-ports-to-ignore', '4190,4191'],
          resources: { limits: { cpu: '100m', memory: '20Mi' }, requests: { cpu: '100m', memory: '20Mi' } },
          securityContext: { ...security, runAsUser: 65534, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } },
        },
      ],
      containers: [
        {
          ...main,
          image: `example.invalid/navikt/${name}:2026-11-28-abcdef0`,
          env: appEnv,
          envFrom: [{ secretRef: { name: `${name}-secrets`, optional: true } }],
          resources: { limits: { memory: '512Mi' }, requests: { cpu: '200m', memory: '256Mi' } },
          volumeMounts: mounts,
          securityContext: security,
        },
        {
          ...proxy,
          env: linkerdEnv,
          ports: [
            { name: 'linkerd-proxy', containerPort: 4143 },
            { name: 'linkerd-admin', containerPort: 4191 },
          ],
          livenessProbe: { httpGet: { path: '/live', port: 4191 }, initialDelaySeconds: 10 },
          readinessProbe: { httpGet: { path: '/ready', port: 4191 }, initialDelaySeconds: 2 },
          resources: { limits: { memory: '250Mi' }, requests: { cpu: '100m', memory: '20Mi' } },
          securityContext: { ...security, runAsUser: 2102 },
          volumeMounts: [{ name: 'linkerd-identity-end-entity', mountPath: '/var/run/linkerd/identity/end-entity' }],
        },
      ],
      volumes: [
        { name: 'ca-bundle', configMap: { name: 'ca-bundle-pem', defaultMode: 420 } },
        { name: 'linkerd-identity-end-entity', emptyDir: { medium: 'Memory' } },
      ],
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

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} ms` : 'n/a');

// ------------------------------------------------------------------ phases
interface Sample {
  readonly name: string;
  readonly floor: boolean;
  readonly sidecars: string[];
  mainEnded?: number;
  stopped?: number;
  calls: Promise<(number | Error)[]> | undefined;
  resolve: () => void;
  readonly done: Promise<void>;
}

async function phaseReaction(h: Hahaha, admin: Api, floorApi: Api): Promise<void> {
  const ns = 'bench-reaction';
  await createNamespace(ns);
  const samples = new Map<string, Sample>();
  const stopWatch = await rawPodWatch(
    floorApi,
    ns,
    { label: 'bench.hahaha.nais.io/reaction=true' },
    {
      error: (message) => note(`reaction watch: ${message}`),
      end: (why) => note(`reaction watch ended: ${why}; the samples after it are lost`),
      pod: (pod, at) => {
        const s = samples.get(pod.metadata?.name);
        if (s === undefined || s.stopped !== undefined) return;
        const statuses: any[] = pod.status?.containerStatuses ?? [];
        const terminated = (c: string) => statuses.some((st) => st.name === c && st.state?.terminated !== undefined);
        if (s.mainEnded === undefined) {
          if (!terminated(s.name)) return;
          s.mainEnded = at;
          if (s.floor) {
            s.calls = floorCalls(
              floorApi,
              ns,
              s.name,
              SIDECARS.filter((sc) => s.sidecars.includes(sc.container.name)).map((sc) => ({ container: sc.container.name, call: sc.call })),
            );
          }
        }
        if (s.sidecars.every(terminated)) {
          s.stopped = at;
          s.resolve();
        }
      },
    },
  );
  try {
    for (const sidecars of [1, 3] as const) {
      const spans = { floor: [] as number[], hahaha: [] as number[] };
      const callMs: number[] = [];
      let lost = 0;
      /** One pod of a variant: its span and the floor's call durations, or undefined if lost. */
      const one = async (name: string, floor: boolean): Promise<{ span: number; calls: (number | Error)[] } | undefined> => {
        let resolve = () => {};
        const done = new Promise<void>((r) => {
          resolve = r;
        });
        const s: Sample = { name, floor, sidecars: SIDECARS.slice(0, sidecars).map((sc) => sc.container.name), calls: undefined, resolve, done };
        samples.set(name, s);
        const labels = { [LABEL_KEY]: floor ? 'floor' : 'true', 'bench.hahaha.nais.io/reaction': 'true' };
        const tpl = podTemplate(name, sidecars, labels, 2);
        await apiJson(admin, 'POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { ...tpl.metadata, name }, spec: tpl.spec });
        const ok = await Promise.race([done.then(() => true), sleep(40_000).then(() => false)]);
        samples.delete(name);
        await apiCall(admin, 'DELETE', `/api/v1/namespaces/${ns}/pods/${name}`);
        if (!ok || s.mainEnded === undefined || s.stopped === undefined) {
          note(`reaction: ${name}: sidecars not seen terminated within 40 s (main ended: ${s.mainEnded !== undefined})`);
          return undefined;
        }
        return { span: s.stopped - s.mainEnded, calls: (await s.calls) ?? [] };
      };
      // one pod of each variant first, not counted: first connections, lazy code paths
      await one(`r${sidecars}-f-warm`, true);
      await one(`r${sidecars}-h-warm`, false);
      const before = await metricsText(h);
      const load0 = loadavg()[0] as number;
      for (let i = 0; i < REACTION_SAMPLES; i++) {
        // alternate which variant goes first, so that drifting load weighs on both alike
        for (const floor of i % 2 === 0 ? [true, false] : [false, true]) {
          const name = `r${sidecars}-${floor ? 'f' : 'h'}-${i}`;
          const r = await one(name, floor);
          if (r === undefined) {
            lost += 1;
            continue;
          }
          (floor ? spans.floor : spans.hahaha).push(r.span);
          for (const c of r.calls) {
            if (c instanceof Error) note(`reaction: ${name}: floor call failed: ${c.message}`);
            else callMs.push(c);
          }
        }
      }
      const after = await metricsText(h);
      phaseLoad(`reaction ${sidecars} sidecar(s)`, load0);
      const f = spans.floor.sort((a, b) => a - b);
      const hh = spans.hahaha.sort((a, b) => a - b);
      const attempt = histogramMean(before, after, 'hahaha_attempt_duration_seconds');
      const fp50 = quantile(f, 0.5);
      const hp50 = quantile(hh, 0.5);
      const fp99 = quantile(f, 0.99);
      const hp99 = quantile(hh, 0.99);
      const meanCall = callMs.reduce((a, b) => a + b, 0) / callMs.length;
      const label = `reaction, ${sidecars} sidecar${sidecars === 1 ? '' : 's'}`;
      const overhead = (d: number, max: number) => `overhead ${d >= 0 ? '+' : ''}${ms(d)}${sidecars === 1 ? `; ${check(d <= max, `≤ ${max} ms`)}` : ''}`;
      const spread = (v: number[]) => (v.length === 0 ? 'n/a' : `${v.map((n) => n.toFixed(0)).join(' ')} ms`);
      sum({ figure: `${label}, p50`, hahaha: ms(hp50), reference: `floor ${ms(fp50)}`, ratio: x(hp50 / fp50), target: overhead(hp50 - fp50, 15) });
      sum({
        figure: `${label}, p99`,
        hahaha: ms(hp99),
        reference: `floor ${ms(fp99)}`,
        ratio: x(hp99 / fp99),
        target: overhead(hp99 - fp99, 50),
        detail: `n = ${hh.length} hahaha, ${f.length} floor (p99 = max); sorted: hahaha ${spread(hh)}; floor ${spread(f)}`,
      });
      sum({
        figure: `${label}, one call`,
        hahaha: `${ms(attempt.meanMs)} mean`,
        reference: `floor ${ms(meanCall)}`,
        ratio: x(attempt.meanMs / meanCall),
        detail: `hahaha: hahaha_attempt_duration_seconds sum/count, n = ${attempt.count}; floor: WebSocket start → HTTP status line or exec status, n = ${callMs.length}`,
      });
      if (lost > 0) note(`reaction ${sidecars}: ${lost} samples lost`);
    }
  } finally {
    stopWatch();
  }
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
}

/**
 * BURST_JOBS 3-sidecar Jobs with the label `label` created at once in the new namespace `ns`, and
 * waited for until all are Complete: their seconds, the CPU seconds (utime + stime) and the TCP
 * connections opened by the reaper `pid` (started with countingEnv) in that window (3 s after
 * too: the last verifications and events), and the window's start.
 */
async function burstOf(
  ns: string,
  makeJob: (name: string) => object,
  admin: Api,
  pid: number,
): Promise<{ seconds: number; cpu: number; system: number; connections: number; t: number }> {
  await sleep(3000); // the previous phase's last events and verifications stay out of the window
  const cpu0 = cpuTimes(pid);
  const conn0 = connectionsOpened(pid);
  const t = Date.now();
  const jobs = Array.from({ length: BURST_JOBS }, (_, i) => makeJob(`burst-${i}`));
  await kubectl(['create', '-f', '-', '-o', 'name'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: jobs }));
  await until(
    `${BURST_JOBS} burst Jobs complete in ${ns}`,
    async () => {
      const list = await apiJson(admin, 'GET', `/apis/batch/v1/namespaces/${ns}/jobs`);
      let complete = 0;
      for (const j of list.items as any[]) {
        const c: any[] = j.status?.conditions ?? [];
        if (c.some((x) => x.type === 'Failed' && x.status === 'True')) throw new Error(`job ${j.metadata.name} failed`);
        if (c.some((x) => x.type === 'Complete' && x.status === 'True')) complete += 1;
      }
      return complete === BURST_JOBS;
    },
    240_000,
    250,
  );
  const seconds = (Date.now() - t) / 1000;
  await sleep(3000); // also: the connection count is written once a second
  const cpu1 = cpuTimes(pid);
  const system = cpu1.system - cpu0.system;
  return { seconds, cpu: cpu1.user - cpu0.user + system, system, connections: connectionsOpened(pid) - conn0, t };
}

/** hahaha's CPU per reaped pod in the burst, for the floor's burst to compare with. */
let burstCpuMs: number | undefined;
/** hahaha's TCP connections opened per reaped pod in the burst. */
let burstConnections: number | undefined;

async function phaseBurst(h: Hahaha, admin: Api): Promise<void> {
  const ns = 'bench-burst';
  await createNamespace(ns);
  const before = await metricsText(h);
  const load0 = loadavg()[0] as number;
  const { seconds, cpu, system, connections, t } = await burstOf(ns, (name) => job(ns, name, 3), admin, h.pid);
  const after = await metricsText(h);
  phaseLoad('burst', load0);
  const cpuMs = (cpu * 1000) / BURST_JOBS;
  burstCpuMs = cpuMs;
  burstConnections = connections / BURST_JOBS;
  sum({
    figure: `burst of ${BURST_JOBS} 3-sidecar Jobs: throughput`,
    hahaha: `${(BURST_JOBS / seconds).toFixed(2)} pods/s`,
    detail: `${seconds.toFixed(1)} s from the create to the last Job Complete`,
  });
  sum({
    figure: 'burst: CPU per reaped 3-sidecar pod',
    hahaha: `${cpuMs.toFixed(1)} ms`,
    reference: `HAHAHA ${HAHAHA_CPU_MS_PER_POD} ms`,
    ratio: x(cpuMs / HAHAHA_CPU_MS_PER_POD),
    target: check(cpuMs <= 8, '≤ 8 ms'),
    detail: `${cpu.toFixed(2)} s utime+stime for ${BURST_JOBS} pods, ${system.toFixed(2)} s of it stime (in the kernel)`,
  });
  await sleep(1000);
  const req = describeRequests(auditRequests(HAHAHA_USER, t, Date.now()), BURST_JOBS);
  sum({ figure: 'burst: API requests per reaped pod', hahaha: req.total.toFixed(2), detail: `per reaped pod: ${req.text}` });
  const attempts = metricValue(after, 'hahaha_attempt_duration_seconds_count') - metricValue(before, 'hahaha_attempt_duration_seconds_count');
  const failed = metricValue(after, 'hahaha_failed_sidecar_shutdowns') - metricValue(before, 'hahaha_failed_sidecar_shutdowns');
  sum({
    figure: 'burst: attempts per sidecar',
    hahaha: (attempts / (BURST_JOBS * 3)).toFixed(2),
    target: check(attempts === BURST_JOBS * 3, '1, no double stop'),
    detail: `${attempts} attempts for ${BURST_JOBS * 3} sidecars; ${failed} failed shutdowns`,
  });
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
}

/** The port hahaha's admission webhook listens on (WEBHOOK_PORT), registered only during phaseNative. */
let webhookPort = 0;

/**
 * The bridge's cost: the same burst, but of Jobs whose three sidecars hahaha's admission webhook
 * makes native when the Job controller creates their pods (the chart's MutatingWebhookConfiguration,
 * with watch.selector set to the bench's label, pointed at this process), so the kubelet stops them
 * and hahaha only answers the admission request and watches. The configuration is applied for this
 * phase only: the other phases' pods never reach the webhook.
 */
async function phaseNative(h: Hahaha, admin: Api): Promise<void> {
  const ns = 'bench-native';
  await createNamespace(ns);
  const configs = await localWebhookConfigurations(
    BINS.get('HELM_BIN') as string,
    [{ name: 'bench', url: `https://127.0.0.1:${webhookPort}/mutate-v1-pod` }],
    join(CLUSTER_DIR, 'pki', 'ca.crt'),
    ['--set', `watch.selector=${SELECTOR}`],
  );
  await kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(configs));
  try {
    // The API server calls a new webhook once its informer has it: until a server-side dry run
    // of such a pod comes back converted.
    const probe = nativeJob(ns, 'probe').spec.template;
    await until(
      'the webhook converts a dry-run pod',
      async () => {
        const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...probe.metadata, name: 'probe', namespace: ns }, spec: probe.spec };
        const out = JSON.parse(await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(pod)));
        return (out.spec?.initContainers ?? []).length === NATIVE_SIDECARS.length;
      },
      60_000,
    );
    const before = await metricsText(h);
    const load0 = loadavg()[0] as number;
    const { seconds, cpu, system, t } = await burstOf(ns, (name) => nativeJob(ns, name), admin, h.pid);
    const after = await metricsText(h);
    phaseLoad('native burst', load0);
    const pods = (await apiJson(admin, 'GET', `/api/v1/namespaces/${ns}/pods`)).items as any[];
    const native = (p: any) => (p.spec.initContainers ?? []).filter((c: any) => c.restartPolicy === 'Always').length;
    const converted = pods.filter((p) => native(p) === NATIVE_SIDECARS.length).length;
    const delta = (name: string) => metricValue(after, name) - metricValue(before, name);
    const cpuMs = (cpu * 1000) / BURST_JOBS;
    const webhook = histogramMean(before, after, 'hahaha_webhook_request_duration_seconds');
    sum({
      figure: 'native burst: CPU per pod converted at admission',
      hahaha: `${cpuMs.toFixed(1)} ms`,
      reference: burstCpuMs === undefined ? '' : `reaped ${burstCpuMs.toFixed(1)} ms`,
      ratio: burstCpuMs === undefined ? '' : x(cpuMs / burstCpuMs),
      detail:
        `${cpu.toFixed(2)} s utime+stime (${system.toFixed(2)} s stime) for ${BURST_JOBS} pods, ${(BURST_JOBS / seconds).toFixed(2)} pods/s; ` +
        `${converted} of ${pods.length} pods with all ${NATIVE_SIDECARS.length} sidecars native; ` +
        `${delta('hahaha_webhook_requests_total')} admission requests, ${ms(webhook.meanMs)} mean in hahaha; ` +
        `${delta('hahaha_attempt_duration_seconds_count')} stop attempts; HAHAHA reaps such a pod for ${HAHAHA_CPU_MS_PER_POD} ms`,
    });
    await sleep(1000);
    const req = describeRequests(auditRequests(HAHAHA_USER, t, Date.now()), BURST_JOBS);
    sum({ figure: 'native burst: API requests per pod', hahaha: req.total.toFixed(2), detail: `per pod: ${req.text}` });
  } finally {
    await kubectl(['delete', '-f', '-', '--ignore-not-found'], JSON.stringify(configs));
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  }
}

/**
 * The same burst reaped by the floor as a process of its own (bench/floor-reaper.ts, with the
 * image's node flags, the floor's ServiceAccount): the CPU that Node's https, TLS, `ws` and
 * JSON.parse alone take for the same watch and the same API requests, without anything of
 * hahaha's (cache, decisions, verification, metrics, logs). Runs after hahaha has stopped.
 */
async function phaseFloorBurst(admin: Api, floorKubeconfig: string): Promise<void> {
  const ns = 'bench-floor-burst';
  await createNamespace(ns);
  const load0 = loadavg()[0] as number;
  const child = spawn(process.execPath, [...imageNodeFlags(), join(APP, 'bench', 'floor-reaper.js'), floorKubeconfig, ns, `${LABEL_KEY}=floor`], {
    env: countingEnv(imageEnv()),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`bench/floor-reaper.ts exited with ${code}`)));
    });
    const { seconds, cpu, system, connections, t } = await burstOf(ns, (name) => job(ns, name, 3, 'floor'), admin, child.pid as number);
    phaseLoad('floor burst', load0);
    const floorMs = (cpu * 1000) / BURST_JOBS;
    await sleep(1000);
    const req = describeRequests(auditRequests(FLOOR_USER, t, Date.now()), BURST_JOBS);
    sum({
      figure: 'burst: CPU per reaped pod, hahaha vs a Node floor',
      hahaha: burstCpuMs === undefined ? 'n/a' : `${burstCpuMs.toFixed(1)} ms`,
      reference: `floor ${floorMs.toFixed(1)} ms`,
      ratio: burstCpuMs === undefined ? 'n/a' : x(burstCpuMs / floorMs),
      target: `floor ${check(floorMs <= 8, '≤ 8 ms')}`,
      detail: `floor: ${cpu.toFixed(2)} s utime+stime (${system.toFixed(2)} s stime) for ${BURST_JOBS} pods, ${(BURST_JOBS / seconds).toFixed(2)} pods/s; API requests per reaped pod ${req.total.toFixed(2)}: ${req.text}`,
    });
    const floorConnections = connections / BURST_JOBS;
    sum({
      figure: 'burst: TCP connections opened per reaped pod',
      hahaha: burstConnections === undefined ? 'n/a' : burstConnections.toFixed(2),
      reference: `floor ${floorConnections.toFixed(2)}`,
      ratio: burstConnections === undefined ? 'n/a' : x(burstConnections / floorConnections),
      detail: 'each a TLS handshake: one per channel WebSocket (port-forward, exec), and REST connections opened beyond the kept ones',
    });
  } finally {
    child.kill('SIGTERM');
  }
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
}

/** Idle for IDLE_SECONDS: requests per minute by verb and resource, CPU s per minute. */
async function idleWindow(h: Hahaha, what: string): Promise<void> {
  await sleep(5000);
  const load0 = loadavg()[0] as number;
  const cpu0 = cpuSeconds(h.pid);
  const t = Date.now();
  await sleep(IDLE_SECONDS * 1000);
  const minutes = (Date.now() - t) / 60_000;
  const cpu = cpuSeconds(h.pid) - cpu0;
  const t1 = Date.now();
  await sleep(1000);
  phaseLoad(`idle ${what}`, load0);
  const req = describeRequests(auditRequests(HAHAHA_USER, t, t1), minutes);
  sum({ figure: `idle, ${what}: API requests/min`, hahaha: req.total.toFixed(1), detail: `per minute: ${req.text}` });
  sum({ figure: `idle, ${what}: CPU/min`, hahaha: `${(cpu / minutes).toFixed(2)} s`, detail: `utime+stime over ${(minutes * 60).toFixed(0)} s` });
}

async function phaseIdleAndRss(h: Hahaha, admin: Api, sourcesRss: Rss | undefined): Promise<void> {
  await sleep(3000);
  const early = rss(h.pid);
  if (sourcesRss !== undefined) {
    sum({
      figure: 'RSS 3 s after ready: sources',
      hahaha: MiB(sourcesRss.vmRss),
      reference: `compiled ${MiB(early.vmRss)}`,
      ratio: x(sourcesRss.vmRss / early.vmRss),
      detail: `RssAnon: sources ${MiB(sourcesRss.anon)}, compiled ${MiB(early.anon)}; sources = node src/cli.ts, as scripts/hahaha-up.sh runs it`,
    });
  }
  await idleWindow(h, 'LEADER_ELECT=false');
  const ns = 'bench-rss';
  await createNamespace(ns);
  await createVirtualNode();
  await sleep(3000);
  const base = rss(h.pid);
  const baseHeap = metricValue(await metricsText(h), 'nodejs_heap_size_used_bytes') / 1024;
  sum({
    figure: 'RSS idle, compiled: VmRSS',
    hahaha: MiB(base.vmRss),
    reference: `HAHAHA ${HAHAHA_IDLE_RSS_MIB} MiB`,
    ratio: x(base.vmRss / 1024 / HAHAHA_IDLE_RSS_MIB),
    target: check(base.vmRss <= 64 * 1024, '≤ 64 MiB'),
    detail: `RssFile ${MiB(base.file)}, RssShmem ${MiB(base.shmem)}; V8 heap used ${MiB(baseHeap)}`,
  });
  sum({
    figure: 'RSS idle, compiled: RssAnon',
    hahaha: MiB(base.anon),
    reference: `HAHAHA ${HAHAHA_IDLE_RSS_MIB} MiB VmRSS`,
    ratio: x(base.anon / 1024 / HAHAHA_IDLE_RSS_MIB),
  });
  let created = 0;
  const load0 = loadavg()[0] as number;
  const deadline = Date.now() + RSS_BUDGET_MS;
  for (const n of RSS_STEPS) {
    const load = (loadavg()[0] as number) / cpus().length;
    if (load > MAX_LOAD_PER_CORE) {
      note(`RSS: stopped before ${n} pods: load average ${load.toFixed(1)} per core > BENCH_MAX_LOAD ${MAX_LOAD_PER_CORE}`);
      break;
    }
    if (Date.now() > deadline) {
      note(`RSS: stopped before ${n} pods: BENCH_RSS_BUDGET_SECONDS spent`);
      break;
    }
    const t = Date.now();
    await createSleepers(admin, ns, created, n);
    created = n;
    try {
      await until(
        `${n} Running pods watched by hahaha`,
        async () => {
          const watched = metricValue(await metricsText(h), 'hahaha_watched_pods');
          log(`  watched ${watched}/${n}, load ${loadavg()[0]?.toFixed(1)}`);
          return watched >= n;
        },
        Math.max(30_000, deadline - Date.now()),
        5000,
      );
    } catch (err) {
      note(`RSS at ${n} pods not measured: ${(err as Error).message}`);
      break;
    }
    const ready = (await fetch(`http://127.0.0.1:${h.port}/readyz`)).status;
    await sleep(5000); // let the list/watch settle
    const r = rss(h.pid);
    const heap = metricValue(await metricsText(h), 'nodejs_heap_size_used_bytes') / 1024;
    const perPod = (r.vmRss - base.vmRss) / n;
    const anonPerPod = (r.anon - base.anon) / n;
    sum({
      figure: `RSS at ${n} watched pods: VmRSS`,
      hahaha: `${MiB(r.vmRss)}, ${perPod.toFixed(2)} KiB/pod`,
      reference: `HAHAHA ${HAHAHA_KIB_PER_POD} KiB/pod`,
      ratio: x(perPod / HAHAHA_KIB_PER_POD),
      target: check(perPod <= 2, '≤ 2 KiB/pod'),
    });
    sum({
      figure: `RSS at ${n} watched pods: RssAnon`,
      hahaha: `${MiB(r.anon)}, ${anonPerPod.toFixed(2)} KiB/pod`,
      reference: `HAHAHA ${HAHAHA_KIB_PER_POD} KiB/pod`,
      ratio: x(anonPerPod / HAHAHA_KIB_PER_POD),
      target: check(anonPerPod <= 2, '≤ 2 KiB/pod'),
      detail: `RssFile ${MiB(r.file)}; V8 heap used ${MiB(heap)}, ${((heap - baseHeap) / n).toFixed(2)} KiB/pod (no full GC); readyz ${ready}; ${((Date.now() - t) / 1000).toFixed(0)} s to create the pods`,
    });
    await restartedRss(n);
  }
  phaseLoad('RSS', load0);
  log('deleting the sleeper pods');
  await deleteSleepers(admin, ns);
  await until('hahaha to drop the deleted pods', async () => metricValue(await metricsText(h), 'hahaha_watched_pods') === 0, 300_000, 2000);
}

/**
 * A second fresh compiled process started with `n` running pods there: it reads them with its
 * first list, whose parsing grows the heap further than pods arriving one by one do (the
 * Sizing table's right column). VmRSS 5 s after it watches them all, then it is stopped.
 */
async function restartedRss(n: number): Promise<void> {
  const t = Date.now();
  const h = await startHahaha({ LEADER_ELECT: 'false' });
  try {
    await until(`a fresh hahaha watching ${n} pods`, async () => metricValue(await metricsText(h), 'hahaha_watched_pods') >= n, 120_000, 1000);
    const listed = (Date.now() - t) / 1000;
    await sleep(5000);
    const r = rss(h.pid);
    sum({
      figure: `RSS at ${n} watched pods, started with them: VmRSS`,
      hahaha: MiB(r.vmRss),
      detail: `RssAnon ${MiB(r.anon)}; V8 heap used ${MiB(metricValue(await metricsText(h), 'nodejs_heap_size_used_bytes') / 1024)}; ${listed.toFixed(1)} s from start to all watched`,
    });
  } finally {
    await h.stop();
  }
}

/**
 * No kubelet finishes the sleepers' graceful deletion: deletecollection with grace 0 removes them.
 * For 20 000 pods it outlasts the API server's 60 s request timeout while the deletion goes on,
 * so it is repeated until none is left.
 */
async function deleteSleepers(admin: Api, ns: string): Promise<void> {
  await until(
    `the pods of ${ns} deleted`,
    async () => {
      try {
        await kubectl(['delete', '--raw', `/api/v1/namespaces/${ns}/pods?gracePeriodSeconds=0`], undefined, 120);
      } catch (err) {
        log(`  ${(err as Error).message.split('\n')[0]}; again`);
      }
      return (await apiJson(admin, 'GET', `/api/v1/namespaces/${ns}/pods?limit=1`)).items.length === 0;
    },
    900_000,
    1000,
  );
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
  await kubectl(['delete', 'node', VIRTUAL_NODE, '--wait=false']);
}

/**
 * 6. Takeover: TAKEOVER_PODS finished pods of hahaha's label in the cluster (the history a
 * cluster keeps until the Jobs' TTL), no running ones. Two leader changes, each by SIGKILL of the
 * leader, with a short lease (4 s) and verify timeout (2 s), so the hand-over window is 36 s:
 * first to a standby started a moment before (it lists the finished pods, as any replica that
 * has not watched through the window must), then to one that has watched for longer than the
 * window (it reads only the pods that left its watch in it: none here). For each, the new
 * leader's CPU and API requests from the SIGKILL to 15 s after it leads.
 */
async function phaseTakeover(admin: Api): Promise<void> {
  const ns = 'bench-takeover';
  await createNamespace(ns);
  await createVirtualNode({ mayExist: true });
  const t = Date.now();
  await createSleepers(admin, ns, 0, TAKEOVER_PODS, true);
  log(`takeover: ${TAKEOVER_PODS} finished pods created in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  const env = { LEADER_ELECT: 'true', LEASE_DURATION_SECONDS: '4', RENEW_DEADLINE_SECONDS: '3', RETRY_PERIOD_SECONDS: '1', VERIFY_TIMEOUT_SECONDS: '2' };
  // Each replica its own identity in the Lease (INSTANCE_NAME): two with one identity both lead.
  let started = 0;
  const replica = () => startHahaha({ ...env, INSTANCE_NAME: `hahaha-bench-${++started}` });
  const leads = async (h: Hahaha) => metricValue(await metricsText(h), 'hahaha_leader') === 1;
  const replicas: Hahaha[] = [];
  try {
    let leader = await replica();
    replicas.push(leader);
    await until('the first replica to lead', () => leads(leader), 60_000);
    for (const [what, watchMs] of [
      ['a standby started 3 s before: lists the finished pods', 3000],
      ['a standby that watched for 40 s (> the 36 s window): reads the pods that left its watch', 40_000],
    ] as const) {
      const standby = await replica();
      replicas.push(standby);
      await sleep(watchMs);
      if (await leads(standby)) throw new Error('the standby leads before the leader is killed');
      const cpu0 = cpuSeconds(standby.pid);
      const killedAt = Date.now();
      leader.child.kill('SIGKILL');
      await until('the standby to lead', () => leads(standby), 30_000, 100);
      const ledAfter = (Date.now() - killedAt) / 1000;
      await sleep(15_000);
      const cpu = cpuSeconds(standby.pid) - cpu0;
      const requests = describeRequests(auditRequests(HAHAHA_USER, killedAt, Date.now()), 1);
      sum({
        figure: `takeover with ${TAKEOVER_PODS} finished pods: ${what}`,
        hahaha: `${cpu.toFixed(2)} s CPU, ${requests.total} requests`,
        detail: `leading ${ledAfter.toFixed(1)} s after the SIGKILL; requests from the SIGKILL to 15 s after: ${requests.text}`,
      });
      leader = standby;
    }
  } finally {
    for (const h of replicas) await h.stop();
  }
  await deleteSleepers(admin, ns);
}

async function phaseIdleLeader(): Promise<void> {
  const h = await startHahaha({ LEADER_ELECT: 'true' });
  hahaha = h;
  try {
    await until('hahaha to lead', async () => metricValue(await metricsText(h), 'hahaha_leader') === 1, 60_000);
    const watched = metricValue(await metricsText(h), 'hahaha_watched_pods');
    if (watched > 0) note(`idle with leader election: hahaha watched ${watched} pods (left from the RSS phase)`);
    await idleWindow(h, 'LEADER_ELECT=true');
    const r = rss(h.pid);
    sum({ figure: 'RSS idle, compiled, leading: VmRSS', hahaha: MiB(r.vmRss), detail: `RssAnon ${MiB(r.anon)}` });
  } finally {
    await h.stop();
    hahaha = undefined;
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

async function phase(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    note(`${name} phase failed: ${(err as Error).message.split('\n')[0]}`);
  }
}

async function main(): Promise<void> {
  log(`starting a cluster in ${CLUSTER_DIR} and building the compiled daemon in ${APP}`);
  clusterUp = true;
  const built = buildApp().then(
    () => undefined,
    (err: Error) => err,
  );
  const up = await run('bash', [`${ROOT}cluster/scripts/up.sh`], { env: clusterEnv, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
  KUBECONFIG = up.stdout.trim().split('\n').at(-1) as string;
  log(`cluster up (${((Date.now() - T0) / 1000).toFixed(0)} s), kubeconfig ${KUBECONFIG}`);
  const buildError = await built;
  if (buildError) throw new Error(`building the compiled daemon failed: ${buildError.message}`);
  await run('bash', [`${ROOT}scripts/hahaha-up.sh`, '--rbac-only'], { env: clusterEnv, timeout: 300_000 });
  await kubectl(['create', 'serviceaccount', FLOOR_SA, '-n', NAMESPACE]);
  await kubectl(['create', 'clusterrolebinding', FLOOR_SA, '--clusterrole=hahaha', `--serviceaccount=${NAMESPACE}:${FLOOR_SA}`]);
  const admin = await adminApi();
  const floor = await serviceAccountApi(FLOOR_SA);
  saKubeconfig = (await serviceAccountApi('hahaha')).kubeconfig;

  if (PHASES.has('reaction') || PHASES.has('burst') || PHASES.has('native')) {
    webhookPort = await freePort();
    const certDir = join(CLUSTER_DIR, 'bench-webhook-certs');
    await servingCertificate(certDir, join(CLUSTER_DIR, 'pki'));
    // The webhook serves throughout, but is registered with the API server only in phaseNative.
    const webhook = { WEBHOOK_ENABLED: 'true', WEBHOOK_HOST: '127.0.0.1', WEBHOOK_PORT: String(webhookPort), WEBHOOK_CERT_DIR: certDir };
    hahaha = await startHahaha({ LEADER_ELECT: 'false', ...webhook }, false, true);
    log(`hahaha pid ${hahaha.pid}, metrics :${hahaha.port}`);
    if (PHASES.has('reaction')) await phase('reaction', () => phaseReaction(hahaha as Hahaha, admin, floor.api));
    if (PHASES.has('burst')) await phase('burst', () => phaseBurst(hahaha as Hahaha, admin));
    if (PHASES.has('native')) await phase('native burst', () => phaseNative(hahaha as Hahaha, admin));
    await hahaha.stop();
    if (PHASES.has('burst')) await phase('floor burst', () => phaseFloorBurst(admin, floor.kubeconfig));
  }
  if (PHASES.has('rss')) {
    let sourcesRss: Rss | undefined;
    await phase('RSS from sources', async () => {
      const h = await startHahaha({ LEADER_ELECT: 'false' }, true);
      hahaha = h;
      await sleep(3000);
      sourcesRss = rss(h.pid);
      await h.stop();
    });
    // a fresh process, so that idle and RSS(0) hold nothing from the reaps above
    hahaha = await startHahaha({ LEADER_ELECT: 'false' });
    await phase('idle and RSS', () => phaseIdleAndRss(hahaha as Hahaha, admin, sourcesRss));
    await hahaha.stop();
    hahaha = undefined;
  }
  if (PHASES.has('leader')) await phase('idle with leader election', phaseIdleLeader);
  if (PHASES.has('takeover')) await phase('takeover', () => phaseTakeover(admin));
}

let rc = 0;
const load0 = loadavg().map((l) => l.toFixed(2));
try {
  await main();
} catch (err) {
  rc = 1;
  note(`aborted: ${(err as Error).message}`);
} finally {
  if (hahaha) await hahaha.stop();
  await down();
}
const cols = ['figure', 'hahaha', 'reference', 'ratio', 'target'] as const;
const widths = cols.map((c) => Math.max(c.length, ...summary.map((r) => r[c].length)));
const line = (r: Record<(typeof cols)[number], string>) =>
  cols
    .map((c, i) => r[c].padEnd(widths[i] as number))
    .join('  ')
    .trimEnd();
const table = [
  `hahaha cluster benchmark, ${new Date().toISOString()}, ${cpus().length} cores, run took ${((Date.now() - T0) / 1000).toFixed(0)} s; hahaha built from ${builtFrom || '(not built)'}`,
  `load average at start ${load0.join(' ')}, at end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}; 1-minute load per phase (start → end): ${loads.join('; ')}`,
  '',
  line({ figure: 'figure', hahaha: 'hahaha', reference: 'reference', ratio: 'ratio', target: 'target' }),
  ...summary.flatMap((r) => [line(r), ...(r.detail ? [`    ${r.detail}`] : [])]),
  ...(notes.length > 0 ? ['', 'notes:', ...notes.map((n) => `- ${n}`)] : []),
  '',
].join('\n');
process.stdout.write(table);
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, table);
process.exit(rc);
