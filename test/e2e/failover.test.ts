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
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { get, type RunningHahaha, startHahaha } from '../unit/chart-assets.ts';
import { render } from './chart-helm.ts';
import { apply, eventually, kubectl, main, metricValue, naisjob, namespace, RUN, tokenKubeconfig, waitJobComplete } from './harness.ts';
import { describeRequests, parseShutdownRequests } from './shutdown-requests.ts';

const RELEASE = 'hahaha-failover';
const RELEASE_NS = 'hahaha-failover';
const SELECTOR_LABEL = 'hahaha-e2e/failover';
const ROUNDS = Number(process.env.FAILOVER_ROUNDS ?? 1);
const LEASE_SECONDS = 15;

interface Instance extends RunningHahaha {
  readonly name: string;
}

async function leaderGauge(i: Instance): Promise<number | undefined> {
  try {
    return metricValue((await get(i.port, '/metrics')).text, 'hahaha_leader');
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
    await eventually(
      `namespace ${RELEASE_NS} not terminating`,
      async () => !(await kubectl(['get', 'namespace', RELEASE_NS, '--ignore-not-found', '-o', 'jsonpath={.status.phase}'])).includes('Terminating'),
    );
    const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);
    const rbac = (await render(RELEASE, RELEASE_NS)).filter((o) => rbacKinds.has(o.kind));
    await kubectl(['create', 'namespace', RELEASE_NS, '--dry-run=client', '-o', 'yaml']).then((y) => kubectl(['apply', '-f', '-'], { input: y }));
    await kubectl(['apply', '--server-side', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }) });
    kubeconfig = await tokenKubeconfig(RELEASE_NS, RELEASE, logDir);
    ({ ns, cleanup: cleanupNs } = await namespace('e2e-failover'));
  });

  after(async () => {
    for (const i of instances) i.child.kill('SIGKILL');
    await cleanupNs();
    // The release namespace stays: deleting it would make a rerun wait for its termination.
    rmSync(logDir, { recursive: true, force: true });
  });

  async function startInstance(name: string): Promise<Instance> {
    const instance: Instance = {
      name,
      ...(await startHahaha({
        HAHAHA_CLUSTER_MEMBER: RUN,
        KUBECONFIG: kubeconfig,
        WATCH_SELECTOR: `${SELECTOR_LABEL}=true`,
        INSTANCE_NAME: name,
        LEASE_NAME: RELEASE,
        LEASE_NAMESPACE: RELEASE_NS,
      })),
    };
    instances.push(instance);
    await eventually(`${name} ready`, async () => (await get(instance.port, '/readyz').catch(() => undefined))?.status === 200, 30_000);
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
      a.child.kill('SIGKILL');
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
      // A standby counts expiry from the holder's renewTime (never earlier than a retry period
      // before it saw that renewal) and wakes right then; the margin is for scheduling slack.
      assert.ok(sinceRenew <= LEASE_SECONDS + 4, `takeover ${sinceRenew} s after the last renewal`);

      for (const job of jobs) await waitJobComplete(ns, job, 120_000);
      for (const job of jobs) {
        const requests = describeRequests(parseShutdownRequests(readFileSync(join(logDir, `${job}.log`), 'utf8')));
        assert.equal(requests.length, 1, `${job}'s sidecar got ${requests.length} shutdown requests:\n${requests.join('\n')}`);
      }
      assert.equal(await b.stop(), 0, 'SIGTERM must exit 0');
      for (const f of readdirSync(logDir).filter((f) => f.endsWith('.log'))) rmSync(join(logDir, f));
    });
  }
});
