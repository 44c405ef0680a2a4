/**
 * The watch survives an API server crash: the kube-apiserver is SIGKILLed while a Job runs and
 * started again; hahaha's watch fails, backs off, re-lists, and reaps the pod, as it does one
 * created afterwards. A crash right after a sidecar accepted its shutdown does not make hahaha
 * call that stop unsuccessful, nor ask twice; nor does an outage that outlasts the verification
 * (70 s, leader election off), after which the stop is reported as the ask's. A 403 or a
 * SelfSubjectAccessReview's denial from an API server that is not ready (etcd paused for a
 * moment) says so, and one from a ready server does not. Runs alone (test/e2e/serial/), since it
 * takes the API away from everything else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadKubeConfig } from '../../../src/config/kubeconfig.ts';
import { ApiAccessReviewer } from '../../../src/kube/access-review.ts';
import { ApiError, KubeClient } from '../../../src/kube/kube-client.ts';
import { causeOf } from '../../../src/strategies/strategy.ts';
import { clusterMemberPid, restartApiServer } from '../../soak/cluster.ts';
import { get } from '../../unit/chart-assets.ts';
import {
  apply,
  eventually,
  getPod,
  hahahaEvents,
  jobPod,
  kubectl,
  main,
  metricsText,
  metricValue,
  naisjob,
  ownHahaha,
  RUN,
  sidecar,
  testNamespace,
  tokenKubeconfig,
} from '../harness.ts';
import { describeRequests, nodeLogShutdownRequests } from '../shutdown-requests.ts';

/** SIGKILLs the cluster's kube-apiserver and starts it again with the same command line. */
async function crashAndRestartApiServer(downMs: number): Promise<void> {
  await restartApiServer(RUN, downMs, async () => (await kubectl(['get', '--raw', '/readyz'])).trim() === 'ok', 60_000);
}

/**
 * Waits for the pod to succeed, then for hahaha's Killing events on it (posted once hahaha has
 * seen the exit, which may be just after the phase). The pod's phase, not the Job's completion:
 * after an API server restart, kube-controller-manager's Job controller can wait a minute for its
 * own cache ("read version … is not as new as written version"), which says nothing about hahaha.
 */
async function reaped(namespace: string, pod: string, timeoutMs: number): Promise<string[]> {
  await eventually(`pod ${pod} to succeed`, async () => (await getPod(namespace, pod)).status?.phase === 'Succeeded', timeoutMs);
  return eventually(
    `a Killing event on ${pod}`,
    async () => {
      const k = (await hahahaEvents(namespace, pod)).filter((e) => e.reason === 'Killing').map((e) => `${e.type} ${e.message}`);
      return k.length > 0 ? k : undefined;
    },
    30_000,
  );
}

/**
 * A Job whose linkerd look-alike accepts its shutdown at once and exits `exitAfterSeconds` later;
 * the API server is SIGKILLed as the request arrives and kept down `downMs`. Resolves once the pod
 * has succeeded, with its Killing events and the shutdown requests its sidecar received.
 */
async function crashAsAsked(
  namespace: string,
  job: string,
  opts: { exitAfterSeconds: number; downMs: number; labels?: Record<string, string> },
): Promise<{ ref: { namespace: string; name: string; uid: string }; killing: string[]; asks: string[] }> {
  await apply(
    naisjob(namespace, job, {
      ...(opts.labels !== undefined && { labels: opts.labels }),
      containers: [main(job, 'sleep 2'), { name: 'linkerd-proxy', command: ['sh', '-c', `fake-sidecar linkerd; sleep ${opts.exitAfterSeconds}`] }],
    }),
  );
  const pod = await jobPod(namespace, job);
  const ref = { namespace, name: pod.metadata.name as string, uid: pod.metadata.uid as string };
  await eventually('the shutdown request', async () => nodeLogShutdownRequests(RUN, ref, 'linkerd-proxy').length > 0, 60_000, 20);
  await crashAndRestartApiServer(opts.downMs);
  const killing = await reaped(namespace, ref.name, 120_000);
  return { ref, killing, asks: describeRequests(nodeLogShutdownRequests(RUN, ref, 'linkerd-proxy')) };
}

describe('API server crash', () => {
  const ns = testNamespace('e2e-apiserver');

  it('hahaha recovers its watch and reaps pods that finished while the API was down', async () => {
    const restartsBefore = metricValue(await metricsText(), 'hahaha_watch_restarts_total');
    await apply(naisjob(ns.name, 'during', { containers: [main('during', 'sleep 4'), sidecar('linkerd-proxy', 'linkerd')] }));
    const pod = await jobPod(ns.name, 'during');
    await eventually(
      'the pod running',
      async () => JSON.parse(await kubectl(['get', 'pod', pod.metadata.name, '-n', ns.name, '-o', 'json'])).status.phase === 'Running',
    );
    await crashAndRestartApiServer(5000);
    assert.ok((await reaped(ns.name, pod.metadata.name, 120_000)).some((m) => m.startsWith('Normal ')));

    await apply(naisjob(ns.name, 'after', { containers: [main('after', 'sleep 1'), sidecar('linkerd-proxy', 'linkerd')] }));
    assert.ok((await reaped(ns.name, (await jobPod(ns.name, 'after')).metadata.name, 60_000)).some((m) => m.startsWith('Normal ')));
    const restartsAfter = metricValue(await metricsText(), 'hahaha_watch_restarts_total');
    assert.ok(restartsAfter > restartsBefore, `hahaha_watch_restarts_total did not grow (${restartsBefore} → ${restartsAfter})`);
  });

  it('a stop the crash hides from the watch is verified once the watch is back: asked once, reported as stopped', async () => {
    // The sidecar accepts at once and exits 11 s later (a proxy draining its connections), so its
    // exit comes after the verify window (10 s); the API server is SIGKILLed as the ask arrives,
    // so that window is one the watch was down in.
    const { killing, asks } = await crashAsAsked(ns.name, 'drain', { exitAfterSeconds: 11, downMs: 1000 });
    assert.deepEqual(
      killing.filter((m) => m.startsWith('Warning')),
      [],
      'no Warning: the sidecar stopped',
    );
    assert.ok(
      killing.some((m) => /^Normal Shut down container linkerd-proxy \(.*exit code 0/.test(m)),
      `no Normal Killing event: ${JSON.stringify(killing)}`,
    );
    assert.equal(asks.length, 1, `asked ${asks.length} times: ${asks.join('; ')}`);
  });

  it('leader election off, the watch down past the window and its minute: the stop is reported as the ask once the API server is back; asked once', async (t) => {
    // A hahaha of the test's own, without leader election (the suite's would lose its Lease and
    // leave the stop to its hand-over), with a 2 s verify window: 70 s without the API server
    // outlast that window and the minute after it, so the accepted ask stays unverified.
    const { hahaha, id } = await ownHahaha(t, 'e2e-unverified', { VERIFY_TIMEOUT_SECONDS: '2' });
    // The sidecar accepts at once and exits 3 s later, while the API server is down.
    const { ref, killing, asks } = await crashAsAsked(ns.name, 'unverified', {
      exitAfterSeconds: 3,
      downMs: 70_000,
      labels: { 'e2e-unverified': id, 'nais.io/naisjob': 'false' },
    });
    assert.deepEqual(killing, ['Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)']);
    assert.equal(asks.length, 1, `asked ${asks.length} times: ${asks.join('; ')}`);
    assert.ok(
      hahaha.logs.some((l) => l.includes('an ask the API server could not verify did stop the sidecar')),
      `reported as the unverified ask, not verified by the first window; the pod's log lines:\n${hahaha.logs.filter((l) => l.includes(ref.name)).join('\n')}`,
    );
    const text = (await get(hahaha.port, '/metrics')).text;
    assert.equal(metricValue(text, 'hahaha_sidecar_shutdowns', { namespace: ns.name }), 1);
    assert.equal(metricValue(text, 'hahaha_failed_sidecar_shutdowns'), 0);
  });

  it('a 403 says whether the API server was ready to authorize: believed when /readyz answers 200, not while it fails', async () => {
    // An account bound to nothing: RBAC refuses it everything but the defaults, ready or not.
    const account = 'e2e-bound-to-nothing';
    await kubectl(['create', 'serviceaccount', account, '-n', ns.name]);
    const dir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-not-ready-'));
    const client = new KubeClient(loadKubeConfig({ env: { KUBECONFIG: await tokenKubeconfig(ns.name, account, dir) } }).access);
    const refusals = async (): Promise<ApiError[]> => {
      const rest = client.request('GET', `/api/v1/namespaces/${ns.name}/secrets`);
      const exec = client.openSocket(`/api/v1/namespaces/${ns.name}/pods/nothing/exec?container=c&command=true&stdout=true`, ['v5.channel.k8s.io'], {
        signal: AbortSignal.timeout(20_000),
      });
      const errors = await Promise.all(
        [rest, exec].map((p) =>
          p.then(
            () => assert.fail('RBAC allowed an account bound to nothing'),
            (err: unknown) => err,
          ),
        ),
      );
      for (const err of errors) {
        assert.ok(err instanceof ApiError, String(err));
        assert.equal(err.status, 403, err.message);
      }
      return errors as ApiError[];
    };
    try {
      const [readyRest, readyExec] = await refusals();
      assert.equal(readyRest?.notReady, undefined, readyRest?.message);
      assert.equal(readyExec?.notReady, undefined, readyExec?.message);
      assert.equal(causeOf(readyExec), 'forbidden');
      // A SelfSubjectAccessReview (the access check's question) is answered the same way.
      const reviewer = new ApiAccessReviewer(client);
      const need = { verb: 'list', group: '', resource: 'secrets', namespace: ns.name, why: 'e2e' };
      assert.equal((await reviewer.review(need)).allowed, false);

      // Paused etcd fails /readyz (its etcd check) while RBAC still answers from its caches: a
      // 403 then cannot be told from one of caches still loading, and is not believed.
      await sleep(1100); // past the time one /readyz answer serves
      const etcd = clusterMemberPid(RUN, 'etcd');
      process.kill(etcd, 'SIGSTOP');
      let paused: ApiError[];
      let review: unknown;
      try {
        [paused, review] = await Promise.all([refusals(), reviewer.review(need).catch((err: unknown) => err)]);
      } finally {
        process.kill(etcd, 'SIGCONT');
      }
      for (const err of paused) {
        // Its etcd check fails after its own timeout, or /readyz takes longer than the client waits.
        assert.match(err.notReady ?? '', /^\/readyz( answered HTTP 5\d\d|: .+)$/, err.message);
        assert.match(err.message, /\(the API server is not ready yet: \/readyz/);
      }
      assert.equal(causeOf(paused[1]), 'api-unreachable');
      assert.match(String(review), /the API server is not ready to authorize yet \(\/readyz/, 'a denial from an API server that is not ready is no answer');
      await eventually('the API server to be ready again', async () => (await kubectl(['get', '--raw', '/readyz'])).trim() === 'ok', 60_000, 250);
    } finally {
      client.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
