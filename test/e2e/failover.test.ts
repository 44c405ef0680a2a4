/**
 * Leader election under failure: two hahaha instances share a Lease; the leader is SIGKILLed
 * while pods are finishing; the standby must take over within the lease duration, every pod must
 * be reaped, and no sidecar may receive its shutdown request twice.
 *
 * The two instances form their own release (RBAC rendered from the chart into namespace
 * hahaha-failover) and watch their own label, so the suite's main instance stays out of it.
 * FAILOVER_ROUNDS (default 1) repeats the whole scenario.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  BUILT,
  ROOT,
  RUN,
  apply,
  eventually,
  kubectl,
  main,
  metricValue,
  namespace,
  naisjob,
  waitJobComplete,
} from './harness.ts';

const RELEASE = 'hahaha-failover';
const RELEASE_NS = 'hahaha-failover';
const SELECTOR_LABEL = 'hahaha-e2e/failover';
const ROUNDS = Number(process.env.FAILOVER_ROUNDS ?? 1);
const LEASE_SECONDS = 15;


function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Instance {
  name: string;
  proc: ChildProcess;
  url: string;
}

async function leaderGauge(i: Instance): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${i.url}/metrics`)).text();
    return metricValue(text, 'hahaha_leader');
  } catch {
    return undefined;
  }
}

describe('leader election failover', () => {
  let kubeconfig = '';
  let ns = '';
  let cleanupNs = async () => {};
  const instances: Instance[] = [];
  const logDir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-failover-'));

  before(async () => {
    await eventually(`namespace ${RELEASE_NS} not terminating`, async () =>
      !(await kubectl(['get', 'namespace', RELEASE_NS, '--ignore-not-found', '-o', 'jsonpath={.status.phase}'])).includes('Terminating'),
    );
    const rendered = execFileSync(`${BUILT.HELM_BIN}/helm`, ['template', RELEASE, `${ROOT}charts/hahaha`, '--namespace', RELEASE_NS], { encoding: 'utf8' });
    const rbac = execFileSync('node', [`${ROOT}scripts/select-kinds.mjs`, 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'], { input: rendered, encoding: 'utf8' });
    await kubectl(['create', 'namespace', RELEASE_NS, '--dry-run=client', '-o', 'yaml']).then((y) => kubectl(['apply', '-f', '-'], y));
    await kubectl(['apply', '--server-side', '-f', '-'], rbac);
    const token = (await kubectl(['-n', RELEASE_NS, 'create', 'token', RELEASE, '--duration=1h'])).trim();
    const admin = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']));
    kubeconfig = join(logDir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: admin.clusters[0].cluster }],
        users: [{ name: RELEASE, user: { token } }],
        contexts: [{ name: 'ctx', context: { cluster: 'local', user: RELEASE } }],
        'current-context': 'ctx',
      }),
      { mode: 0o600 },
    );
    ({ ns, cleanup: cleanupNs } = await namespace('e2e-failover'));
  });

  after(async () => {
    for (const i of instances) i.proc.kill('SIGKILL');
    await cleanupNs();
    // The release namespace stays: deleting it would make a rerun wait for its termination.
    rmSync(logDir, { recursive: true, force: true });
  });

  async function startInstance(name: string): Promise<Instance> {
    const port = await freePort();
    const proc = spawn(process.execPath, [`${ROOT}bin/hahaha.js`, 'run'], {
      env: {
        ...process.env,
        HAHAHA_CLUSTER_MEMBER: RUN,
        KUBECONFIG: kubeconfig,
        WATCH_SELECTOR: `${SELECTOR_LABEL}=true`,
        INSTANCE_NAME: name,
        LEASE_NAME: RELEASE,
        LEASE_NAMESPACE: RELEASE_NS,
        METRICS_HOST: '127.0.0.1',
        METRICS_PORT: String(port),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const instance = { name, proc, url: `http://127.0.0.1:${port}` };
    instances.push(instance);
    await eventually(`${name} ready`, async () => (await fetch(`${instance.url}/readyz`).catch(() => undefined))?.status === 200, 30_000);
    return instance;
  }

  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: the standby takes over a SIGKILLed leader; every pod reaped once`, async () => {
      const a = await startInstance(`failover-a-${round}`);
      await eventually('a leader', async () => (await leaderGauge(a)) === 1, LEASE_SECONDS * 1000 + 10_000);
      const b = await startInstance(`failover-b-${round}`);
      await sleep(3000);
      assert.equal(await leaderGauge(b), 0, 'the second instance must be a standby');

      // Jobs finishing over ~12 s; each sidecar appends every request it gets to its own file.
      const jobs = Array.from({ length: 6 }, (_, i) => `r${round}-job-${i}`);
      await apply(
        jobs.map((job, i) =>
          naisjob(ns, job, {
            labels: { [SELECTOR_LABEL]: 'true', 'nais.io/naisjob': 'false' },
            containers: [
              main(job, `sleep ${1 + i * 2}`),
              { name: 'linkerd-proxy', command: ['sh', '-c', `exec fake-sidecar linkerd 2>>${logDir}/${job}.log`] },
            ],
          }),
        ),
      );
      // Kill the leader while the first pods are being reaped and the rest still run.
      await sleep(4000);
      a.proc.kill('SIGKILL');
      const killedAt = Date.now();
      const lease = async () => JSON.parse(await kubectl(['get', 'lease', RELEASE, '-n', RELEASE_NS, '-o', 'json'])).spec;
      const lastRenew = Date.parse((await lease()).renewTime);
      await eventually('the standby to lead', async () => (await leaderGauge(b)) === 1, LEASE_SECONDS * 1000 + 10_000, 100);
      const takeover = (Date.now() - killedAt) / 1000;
      const after = await lease();
      assert.equal(after.holderIdentity, b.name);
      const sinceRenew = (Date.parse(after.acquireTime) - lastRenew) / 1000;
      process.stderr.write(
        `failover round ${round}: standby took over ${takeover.toFixed(1)} s after SIGKILL, ${sinceRenew.toFixed(1)} s after the leader's last renewal\n`,
      );
      // A standby measures expiry from when it saw the last renewal, on its own clock, and
      // looks every retry period (2 s): takeover comes within lease + 2 retry periods.
      assert.ok(sinceRenew <= LEASE_SECONDS + 4, `takeover ${sinceRenew} s after the last renewal`);

      for (const job of jobs) await waitJobComplete(ns, job, 120_000);
      for (const job of jobs) {
        const requests = readFileSync(join(logDir, `${job}.log`), 'utf8').split('\n').filter((l) => / POST \/shutdown from /.test(l));
        assert.equal(requests.length, 1, `${job}'s sidecar got ${requests.length} shutdown requests:\n${requests.join('\n')}`);
      }
      b.proc.kill('SIGTERM');
      await new Promise((r) => b.proc.once('exit', r));
      assert.equal(b.proc.exitCode, 0, 'SIGTERM must exit 0');
      for (const f of readdirSync(logDir).filter((f) => f.endsWith('.log'))) rmSync(join(logDir, f));
    });
  }
});
