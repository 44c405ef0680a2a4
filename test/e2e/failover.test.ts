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
import { stopEventName } from '../../src/domain/handover.ts';
import { get, type RunningHahaha, startHahaha } from '../unit/chart-assets.ts';
import { render } from './chart-helm.ts';
import {
  apply,
  containerState,
  eventually,
  getPod,
  hahahaEvents,
  jobPod,
  kubectl,
  main,
  metricValue,
  naisjob,
  namespace,
  RUN,
  tokenKubeconfig,
  waitJobComplete,
} from './harness.ts';
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

  async function startInstance(name: string, env: Record<string, string> = {}): Promise<Instance> {
    const instance: Instance = {
      name,
      ...(await startHahaha({
        HAHAHA_CLUSTER_MEMBER: RUN,
        KUBECONFIG: kubeconfig,
        WATCH_SELECTOR: `${SELECTOR_LABEL}=true`,
        INSTANCE_NAME: name,
        LEASE_NAME: RELEASE,
        LEASE_NAMESPACE: RELEASE_NS,
        ...env,
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
      assert.match(after.holderIdentity, new RegExp(`^${b.name}_[0-9a-f-]{36}$`), 'the holder is the instance name and a UUID of the process');
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

  it('two replicas given the same INSTANCE_NAME: one leads, the other stands by; each sidecar asked once', async () => {
    const name = 'failover-same-name';
    const a = await startInstance(name);
    await eventually('a leader', async () => (await leaderGauge(a)) === 1, LEASE_SECONDS * 1000 + 10_000);
    const b = await startInstance(name);
    const job = 'same-name-job';
    await apply([
      naisjob(ns, job, {
        labels: { [SELECTOR_LABEL]: 'true', 'nais.io/naisjob': 'false' },
        containers: [main(job, 'sleep 3'), { name: 'linkerd-proxy', command: ['sh', '-c', `exec fake-sidecar linkerd 2>>${logDir}/${job}.log`] }],
      }),
    ]);
    // Over several retry periods (2 s) both replicas have read and tried the Lease many times.
    for (let i = 0; i < 5; i++) {
      await sleep(1000);
      assert.deepEqual([await leaderGauge(a), await leaderGauge(b)], [1, 0], 'only the first replica leads');
    }
    await waitJobComplete(ns, job, 60_000);
    const requests = describeRequests(parseShutdownRequests(readFileSync(join(logDir, `${job}.log`), 'utf8')));
    assert.equal(requests.length, 1, `the sidecar got ${requests.length} shutdown requests:\n${requests.join('\n')}`);
    assert.equal(await a.stop(), 0);
    await eventually('the other replica to lead once the first released the lease', async () => (await leaderGauge(b)) === 1, 10_000, 100);
    assert.equal(await b.stop(), 0);
    rmSync(join(logDir, `${job}.log`));
  });

  it('the next leader reports the stops a SIGKILLed leader made but had not reported, and does not repeat one it had', async () => {
    // The test plays a leader SIGKILLed between a verified stop and its event: no hahaha watches
    // these pods while the test stops their sidecars itself, inside its own test containers.
    const linkerd = (job: string) => ({ name: 'linkerd-proxy', command: ['sh', '-c', `exec fake-sidecar linkerd 2>>${logDir}/${job}.log`] });
    const jobs = {
      finished: [linkerd('h-finished')],
      reported: [linkerd('h-reported')],
      running: [linkerd('h-running'), { name: 'secure-logs-fluentd', command: ['fake-sidecar', 'fluentd'] }],
      // Not selected by the instance's WATCH_SELECTOR: nothing may be reported about it.
      stranger: [linkerd('h-stranger')],
    };
    await apply(
      Object.entries(jobs).map(([kind, sidecars]) =>
        naisjob(ns, `h-${kind}`, {
          labels: { ...(kind !== 'stranger' && { [SELECTOR_LABEL]: 'true' }), 'nais.io/naisjob': 'false' },
          containers: [main(`h-${kind}`, 'sleep 1'), ...sidecars],
        }),
      ),
    );
    const pods: Record<string, any> = {};
    for (const kind of Object.keys(jobs)) {
      const job = `h-${kind}`;
      const pod = await jobPod(ns, job);
      pods[kind] = pod;
      await eventually(`${job}'s main container to end`, async () => containerState(await getPod(ns, pod.metadata.name), job)?.terminated, 60_000);
      // The kill process may die with the container's PID namespace as PID 1 exits: 137.
      await kubectl(['exec', '-n', ns, pod.metadata.name, '-c', 'linkerd-proxy', '--', 'kill', '-TERM', '1']).catch((err: Error) => {
        if (!/exit code 137/.test(err.message)) throw err;
      });
      await eventually(`${job}'s linkerd-proxy stopped`, async () => containerState(await getPod(ns, pod.metadata.name), 'linkerd-proxy')?.terminated);
    }
    // For h-reported, the killed leader had posted its event, under the name every replica uses.
    const reported = pods.reported;
    const theirs = 'Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)';
    await kubectl(['create', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: stopEventName({ name: reported.metadata.name, uid: reported.metadata.uid }, 'linkerd-proxy', 0), namespace: ns },
        involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: ns, name: reported.metadata.name, uid: reported.metadata.uid },
        type: 'Normal',
        reason: 'Killing',
        message: theirs,
        source: { component: 'hahaha' },
        reportingComponent: 'hahaha',
        reportingInstance: 'killed-replica',
      }),
    });
    // The killed leader's Lease, renewed a moment ago.
    const now = new Date().toISOString().replace('Z', '000Z');
    await kubectl(['apply', '--server-side', '--force-conflicts', '--field-manager=e2e-failover', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: RELEASE, namespace: RELEASE_NS },
        spec: { holderIdentity: 'killed-replica', leaseDurationSeconds: 4, acquireTime: now, renewTime: now, leaseTransitions: 1 },
      }),
    });

    const next = await startInstance('handover-next', { LEASE_DURATION_SECONDS: '4', RENEW_DEADLINE_SECONDS: '3', RETRY_PERIOD_SECONDS: '1' });
    await eventually('the next instance to lead', async () => (await leaderGauge(next)) === 1, 20_000, 100);
    for (const kind of Object.keys(jobs)) await waitJobComplete(ns, `h-${kind}`, 60_000);
    const killing = async (kind: string) =>
      (await hahahaEvents(ns, pods[kind].metadata.name)).filter((e) => e.reason === 'Killing').map((e) => `${e.type} ${e.message}`);
    const byNext = 'Normal Shut down container linkerd-proxy (exit code 0; stopped around a hahaha leader change, reported by the next leader)';
    await eventually('the reported stops', async () => (await killing('finished')).length > 0 && (await killing('running')).length > 1, 20_000);
    await sleep(2000); // time for a second event, which must not come
    assert.deepEqual(await killing('finished'), [byNext]);
    assert.deepEqual(await killing('reported'), [`Normal ${theirs}`]);
    assert.deepEqual((await killing('running')).sort(), [
      byNext,
      'Normal Shut down container secure-logs-fluentd (http GET :24444/api/processes.killWorkers, exit code 0)',
    ]);
    assert.deepEqual(await killing('stranger'), [], 'a pod outside the watch selector is not reported');
    assert.equal(metricValue((await get(next.port, '/metrics')).text, 'hahaha_handover_reported_stops_total'), 2);
    // Each linkerd was asked once, by the test: the next leader did not ask again.
    for (const kind of Object.keys(jobs)) {
      const requests = describeRequests(parseShutdownRequests(readFileSync(join(logDir, `h-${kind}.log`), 'utf8')));
      assert.deepEqual(requests, ['linkerd signal terminated'], `h-${kind}`);
    }
    assert.equal(await next.stop(), 0, 'SIGTERM must exit 0');
  });
});
