/**
 * The soak's own cluster and what it does to it: a local cluster in a run dir of its own
 * (cluster/scripts/up.sh with HAHAHA_CLUSTER_DIR, never the default .cluster), a small HTTPS
 * client for its API, two hahaha replicas with leader election and the admission webhook, and
 * the faults: API server SIGKILL and restart, SIGKILL of a replica, etcd compaction.
 *
 * Safety: every process signalled here is found through this run dir's pidfiles or is a child
 * this process started, and is checked (command line, HAHAHA_CLUSTER_MEMBER=<run dir> in its
 * environment) before it is signalled. Nothing is looked up by name across the machine.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { metricValue } from '../e2e/metric-value.ts';
import { buildImageTree, dockerfileFinalStage } from '../image-tree.ts';
import { localWebhookConfigurations, servingCertificate } from '../local-webhook.ts';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MEMBER_ENV = 'HAHAHA_CLUSTER_MEMBER';
/** The chart's release and namespace, as scripts/hahaha-up.sh installs them. */
export const RELEASE = 'hahaha';
export const RELEASE_NS = 'hahaha-system';

export type Log = (msg: string) => void;

/** Polls `fn` until it returns something other than undefined/false; fails after timeoutMs. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
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

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * The admin's HTTPS client for the cluster (client certificate from the admin kubeconfig, one
 * keep-alive agent). `call` retries connection errors and 5xx for up to `retryMs`, so that the
 * soak rides through its own API server restarts.
 */
export class Api {
  private readonly agent: Agent;
  private readonly server: URL;

  constructor(kubeconfig: string) {
    const kc = parseYaml(readFileSync(kubeconfig, 'utf8'));
    const b64 = (s: string) => Buffer.from(s, 'base64');
    this.server = new URL(kc.clusters[0].cluster.server);
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 8,
      ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
      cert: b64(kc.users[0].user['client-certificate-data']),
      key: b64(kc.users[0].user['client-key-data']),
    });
  }

  once<T = any>(method: string, path: string, body?: unknown, timeoutMs = 20_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          host: this.server.hostname,
          port: this.server.port,
          path,
          method,
          agent: this.agent,
          timeout: timeoutMs,
          headers: { accept: 'application/json', ...(data !== undefined && { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              try {
                resolve((text === '' ? {} : JSON.parse(text)) as T);
              } catch {
                resolve(text as T);
              }
            } else reject(new ApiError(status, `${method} ${path}: HTTP ${status}: ${text.slice(0, 300)}`));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(data);
    });
  }

  async call<T = any>(method: string, path: string, body?: unknown, retryMs = 120_000): Promise<T> {
    const deadline = Date.now() + retryMs;
    for (;;) {
      try {
        return await this.once<T>(method, path, body);
      } catch (err) {
        const retryable = !(err instanceof ApiError) || err.status >= 500 || err.status === 429;
        if (!retryable || Date.now() > deadline) throw err;
        await sleep(500);
      }
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Whether a process of ours still runs. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readProc(pid: number, what: 'cmdline' | 'environ'): string[] {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return [];
  }
}

/**
 * The pid in the pidfile of one of the components of the cluster in `dir`, checked to be that
 * program and a process of that cluster (its HAHAHA_CLUSTER_MEMBER environment), so that a
 * signal sent to it reaches nothing else.
 */
export function clusterMemberPid(dir: string, name: 'kube-apiserver' | 'etcd'): number {
  const pid = Number(readFileSync(join(dir, 'pids', `${name}.pid`), 'utf8').trim());
  const argv0 = readProc(pid, 'cmdline')[0] ?? '';
  if (!argv0.endsWith(`/${name}`)) throw new Error(`pid ${pid} of ${name}.pid is not ${name}: ${argv0}`);
  if (!readProc(pid, 'environ').includes(`${MEMBER_ENV}=${dir}`)) throw new Error(`pid ${pid} is not a process of the cluster in ${dir}`);
  return pid;
}

/**
 * SIGKILLs the kube-apiserver of the cluster in `dir`, waits `downMs` and starts it again with
 * the same command line and environment; resolves once `ready` answers true, within
 * `readyTimeoutMs`.
 */
export async function restartApiServer(dir: string, downMs: number, ready: () => Promise<boolean>, readyTimeoutMs: number): Promise<void> {
  const pid = clusterMemberPid(dir, 'kube-apiserver');
  const argv = readProc(pid, 'cmdline');
  const environ = readProc(pid, 'environ').filter((e) => e.includes('='));
  process.kill(pid, 'SIGKILL');
  await until('the API server to die', async () => !alive(pid), 10_000, 50);
  await sleep(downMs);
  const logFd = openSync(join(dir, 'logs', 'kube-apiserver.log'), 'a');
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: dir,
    env: Object.fromEntries(environ.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])),
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  child.unref();
  writeFileSync(join(dir, 'pids', 'kube-apiserver.pid'), `${child.pid}\n`);
  await until('the API server to be ready again', ready, readyTimeoutMs, 250);
}

/** A TCP port free on 127.0.0.1 now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A local cluster of the soak's own, in `dir`. */
export class SoakCluster {
  readonly env: NodeJS.ProcessEnv;
  kubeconfig = '';
  api!: Api;
  clusterEnv: Record<string, string> = {};
  bins: Record<string, string> = {};

  readonly dir: string;
  private readonly log: Log;

  constructor(dir: string, log: Log) {
    this.dir = dir;
    this.log = log;
    this.env = { ...process.env, HAHAHA_CLUSTER_DIR: dir };
  }

  async up(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const up = await run('bash', [`${ROOT}cluster/scripts/up.sh`], { env: this.env, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
    this.kubeconfig = up.stdout.trim().split('\n').at(-1) as string;
    this.clusterEnv = envFile(join(this.dir, 'cluster.env'));
    const printed = await run('bash', [`${ROOT}cluster/scripts/build.sh`, '--print-env'], { env: this.env });
    this.bins = Object.fromEntries(
      printed.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    this.api = new Api(this.kubeconfig);
  }

  /** down.sh: stops everything of this run dir, also after a crash. */
  async down(): Promise<void> {
    this.api?.close();
    await run('bash', [`${ROOT}cluster/scripts/down.sh`], { env: this.env, timeout: 180_000 }).catch((err: Error) =>
      this.log(`down.sh failed: ${err.message}`),
    );
  }

  async kubectl(args: string[], input?: string): Promise<string> {
    const child = run(`${this.bins.K8S_BIN}/kubectl`, ['--kubeconfig', this.kubeconfig, '--request-timeout=30s', ...args], { maxBuffer: 64 * 1024 * 1024 });
    child.child.stdin?.end(input ?? '');
    try {
      return (await child).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.slice(0, 4).join(' ')} failed: ${e.stderr || e.message}`);
    }
  }

  /** SIGKILLs this cluster's kube-apiserver, waits `downMs` and starts it again with the same command line and environment. */
  async restartApiServer(downMs: number): Promise<void> {
    await restartApiServer(this.dir, downMs, async () => (await this.api.once<string>('GET', '/readyz', undefined, 2000)) === 'ok', 90_000);
  }

  /** Compacts etcd (through its v3 HTTP gateway) at its current revision; returns that revision. */
  async compactEtcd(): Promise<number> {
    const url = this.clusterEnv.ETCD_URL;
    if (!url) throw new Error('no ETCD_URL in cluster.env');
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`etcd ${path}: HTTP ${res.status}: ${await res.text()}`);
      return res.json() as Promise<any>;
    };
    const range = await post('/v3/kv/range', { key: Buffer.from('\0').toString('base64'), count_only: true });
    const revision = Number(range.header.revision);
    await post('/v3/kv/compaction', { revision: String(revision), physical: true });
    return revision;
  }
}

function envFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('=') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** One hahaha process of a replica slot. */
export interface Replica {
  readonly slot: string;
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  exited: boolean;
}

/**
 * Two hahaha replicas as the image runs them (compiled into the run dir's app/ by
 * test/image-tree.ts, started with the Dockerfile's ENTRYPOINT node flags and ENV, so an edit of
 * src/ during a soak does not reach them), each holding only a TokenRequest token of
 * the chart's ServiceAccount (RBAC applied by scripts/hahaha-up.sh --rbac-only), with
 * LEADER_ELECT=true and the webhook on. Each slot keeps its metrics and webhook ports across
 * replacements, and the MutatingWebhookConfiguration (the chart's, rendered by helm) names both
 * slots' webhooks, so a pod is converted while either replica serves.
 */
export class Replicas {
  private readonly ports = new Map<string, { metrics: number; webhook: number }>();
  private readonly generation = new Map<string, number>();
  readonly current = new Map<string, Replica>();
  private kubeconfig = '';
  private certDir = '';
  /** The compiled daemon, laid out as the image's /app. */
  private app = '';
  private readonly stage = dockerfileFinalStage();

  private readonly cluster: SoakCluster;
  private readonly log: Log;
  readonly slots: readonly string[];

  constructor(cluster: SoakCluster, log: Log, slots: readonly string[] = ['a', 'b']) {
    this.cluster = cluster;
    this.log = log;
    this.slots = slots;
  }

  async setUp(): Promise<void> {
    const c = this.cluster;
    this.app = join(c.dir, 'app');
    await buildImageTree(this.app);
    await run('bash', [`${ROOT}scripts/hahaha-up.sh`, '--rbac-only'], { env: c.env, timeout: 300_000 });
    const token = (await c.kubectl(['create', 'token', RELEASE, '-n', RELEASE_NS, '--duration=24h'])).trim();
    const admin = parseYaml(readFileSync(c.kubeconfig, 'utf8'));
    this.kubeconfig = join(c.dir, 'soak-hahaha.kubeconfig');
    writeFileSync(
      this.kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: admin.clusters[0].cluster }],
        users: [{ name: RELEASE, user: { token } }],
        contexts: [{ name: 'hahaha', context: { cluster: 'local', user: RELEASE, namespace: RELEASE_NS } }],
        'current-context': 'hahaha',
      }),
      { mode: 0o600 },
    );
    this.certDir = join(c.dir, 'soak-webhook-certs');
    await servingCertificate(this.certDir, join(c.dir, 'pki'));
    for (const slot of this.slots) this.ports.set(slot, { metrics: await freePort(), webhook: await freePort() });
    for (const slot of this.slots) await this.start(slot);
    await this.registerWebhooks();
  }

  private async registerWebhooks(): Promise<void> {
    const c = this.cluster;
    const targets = this.slots.map((slot) => ({ name: slot, url: this.webhookUrl(slot) }));
    const list = await localWebhookConfigurations(c.bins.HELM_BIN as string, targets, join(c.dir, 'pki', 'ca.crt'));
    await c.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(list));
  }

  private webhookUrl(slot: string): string {
    return `https://127.0.0.1:${this.ports.get(slot)?.webhook}/mutate-v1-pod`;
  }

  metricsPort(slot: string): number {
    return this.ports.get(slot)?.metrics as number;
  }

  /** Starts the slot's next replica and waits until its /readyz answers 200. */
  async start(slot: string): Promise<Replica> {
    const gen = (this.generation.get(slot) ?? 0) + 1;
    this.generation.set(slot, gen);
    const name = `soak-${slot}-${gen}`;
    const ports = this.ports.get(slot) as { metrics: number; webhook: number };
    const logFile = join(this.cluster.dir, 'logs', `hahaha-${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(process.execPath, [...this.stage.flags, join(this.app, 'bin', 'hahaha.js'), 'run'], {
      cwd: this.app,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        ...this.stage.env,
        [MEMBER_ENV]: this.cluster.dir,
        KUBECONFIG: this.kubeconfig,
        POD_NAMESPACE: RELEASE_NS,
        INSTANCE_NAME: name,
        LEADER_ELECT: 'true',
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: String(ports.metrics),
        WEBHOOK_ENABLED: 'true',
        WEBHOOK_HOST: '127.0.0.1',
        WEBHOOK_PORT: String(ports.webhook),
        WEBHOOK_CERT_DIR: this.certDir,
        LOG_LEVEL: 'info',
      },
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    const replica: Replica = { slot, name, child, logFile, exited: false };
    child.once('exit', () => {
      replica.exited = true;
    });
    writeFileSync(join(this.cluster.dir, 'pids', `hahaha-${slot}.pid`), `${child.pid}\n`);
    this.current.set(slot, replica);
    // A port of the killed replica may still be in TIME_WAIT for the webhook's clients: retry.
    await until(
      `${name} ready`,
      async () => {
        if (replica.exited) throw new Error(`${name} exited; see ${logFile}`);
        return (await fetch(`http://127.0.0.1:${ports.metrics}/readyz`, { signal: AbortSignal.timeout(2000) })).status === 200;
      },
      60_000,
      200,
    );
    this.log(`replica ${name} ready (pid ${child.pid})`);
    return replica;
  }

  /**
   * The replica that holds the Lease, from its holderIdentity (`<INSTANCE_NAME>_<UUID>`);
   * undefined when none of ours does.
   */
  async leader(): Promise<Replica | undefined> {
    const lease = await this.cluster.api.call('GET', `/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NS}/leases/${RELEASE}`);
    const holder = lease.spec?.holderIdentity as string | undefined;
    return [...this.current.values()].find((r) => holder?.startsWith(`${r.name}_`) === true && !r.exited);
  }

  /** Waits until the Lease names a live replica of ours that also says it leads. */
  async waitForLeader(timeoutMs = 60_000): Promise<Replica> {
    return until(
      'a live leader',
      async () => {
        const l = await this.leader();
        if (l === undefined) return undefined;
        return (await this.metric(l.slot, 'hahaha_leader')) === 1 ? l : undefined;
      },
      timeoutMs,
      250,
    );
  }

  async metric(slot: string, name: string): Promise<number | undefined> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.metricsPort(slot)}/metrics`, { signal: AbortSignal.timeout(2000) });
      return metricValue(await res.text(), name);
    } catch {
      return undefined;
    }
  }

  /** SIGKILLs one replica this soak started (its own child process) and waits until it is gone. */
  async kill(replica: Replica): Promise<void> {
    const pid = replica.child.pid as number;
    if (!readProc(pid, 'environ').includes(`${MEMBER_ENV}=${this.cluster.dir}`)) throw new Error(`pid ${pid} is not ${replica.name}`);
    replica.child.kill('SIGKILL');
    await until(`${replica.name} to die`, async () => replica.exited, 10_000, 20);
  }

  /** SIGTERMs every replica (SIGKILL after 20 s). */
  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.current.values()]
        .filter((r) => !r.exited)
        .map(async (r) => {
          r.child.kill('SIGTERM');
          await until(`${r.name} to stop`, async () => r.exited, 20_000, 100).catch(() => r.child.kill('SIGKILL'));
        }),
    );
  }

  /** The log files of every replica started so far. */
  logFiles(): string[] {
    return this.slots
      .flatMap((slot) => Array.from({ length: this.generation.get(slot) ?? 0 }, (_, i) => join(this.cluster.dir, 'logs', `hahaha-soak-${slot}-${i + 1}.log`)))
      .filter((f) => existsSync(f));
  }

  /** Lines of every replica's log that match `re`, counted. */
  countLogLines(re: RegExp): number {
    let n = 0;
    for (const file of this.logFiles()) for (const line of readFileSync(file, 'utf8').split('\n')) if (re.test(line)) n++;
    return n;
  }
}
