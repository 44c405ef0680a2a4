/**
 * The cases beyond "one sidecar": several sidecars, unknown sidecars, a main container still
 * running, native sidecars, OnFailure retries, a hanging endpoint and a refusing one.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  apply,
  type ContainerSpec,
  containerState,
  eventually,
  firstAttemptStarts,
  getPod,
  hahahaEvents,
  jobPod,
  type KubeEvent,
  killingEvents,
  kubectl,
  kubectlJson,
  main,
  metricsText,
  metricValue,
  naisjob,
  reportedEvents,
  sidecar,
  testNamespace,
  waitJobComplete,
} from './harness.ts';
import { assertShutdownRequests } from './shutdown-requests.ts';

/** A cloud-sql-proxy look-alike that opens its admin port (9091, --quitquitquit) 4 s after it started. */
const lateCloudsqlProxy: ContainerSpec = {
  name: 'cloudsql-proxy',
  command: ['sh', '-c', 'sleep 4; exec fake-sidecar cloudsql --quitquitquit'],
  env: { CSQL_PROXY_QUITQUITQUIT: 'true' },
};

describe('reaping scenarios', { concurrency: true }, () => {
  const ns = testNamespace('e2e-scenarios');

  it('stops three sidecars of one pod concurrently', async () => {
    const job = 'three';
    await apply(
      naisjob(ns.name, job, {
        containers: [main(job, 'sleep 2'), sidecar('linkerd-proxy', 'linkerd'), sidecar('secure-logs-fluentd', 'fluentd'), sidecar('vks-sidecar', 'vks')],
      }),
    );
    const pod = await jobPod(ns.name, job);
    await waitJobComplete(ns.name, job);
    const final = await getPod(ns.name, pod.metadata.name);
    assert.equal(final.status.phase, 'Succeeded');
    // Each sidecar was asked exactly once, as the sidecars themselves logged it.
    await assertShutdownRequests(ns.name, pod.metadata.name, 'linkerd-proxy', ['linkerd http POST /shutdown']);
    await assertShutdownRequests(ns.name, pod.metadata.name, 'secure-logs-fluentd', ['fluentd http GET /api/processes.killWorkers']);
    await assertShutdownRequests(ns.name, pod.metadata.name, 'vks-sidecar', ['vks signal interrupt']);
    const events = await killingEvents(ns.name, pod.metadata.name, 3);
    assert.equal(events.filter((e) => e.type === 'Normal' && e.reason === 'Killing').length, 3, JSON.stringify(events));
    // Concurrently: hahaha began the three asks together, by its own log. (Asked one after the
    // other, each would begin only once the one before had been seen stopped, a watch update
    // later. The sidecars' exit times would also show it, but they move with every pause of the
    // port-forward, exec or the node's reporting, which is not what is tested here.)
    const starts = firstAttemptStarts(pod.metadata.name);
    assert.deepEqual([...starts.keys()].sort(), ['linkerd-proxy', 'secure-logs-fluentd', 'vks-sidecar']);
    const spread = Math.max(...starts.values()) - Math.min(...starts.values());
    assert.ok(spread <= 300, `hahaha began the three asks ${spread} ms apart`);
    // One event on the Job too, for kubectl describe job.
    const onJob = await eventually('the event on the Job', async () => {
      const list = await kubectlJson<{ items: KubeEvent[] }>([
        'get',
        'events',
        '-n',
        ns.name,
        '--field-selector',
        `involvedObject.kind=Job,involvedObject.name=${job}`,
      ]);
      return list.items.find((e) => e.reason === 'SidecarsShutDown');
    });
    assert.match(onJob.message, new RegExp(`^Shut down 3 sidecars of pod ${pod.metadata.name} in \\d+\\.\\d s \\(`));
    assert.match(await kubectl(['describe', 'job', job, '-n', ns.name]), /Normal\s+SidecarsShutDown\s+.*Shut down 3 sidecars/);
  });

  it('reports an unknown sidecar (Warning event, unsupported metric) and leaves the Job running', async () => {
    const job = 'unknown';
    await apply(naisjob(ns.name, job, { containers: [main(job, 'sleep 1'), sidecar('my-agent', 'vks'), sidecar('linkerd-proxy', 'linkerd')] }));
    const pod = await jobPod(ns.name, job);
    const warning = await eventually('the unsupported Warning event', async () =>
      (await hahahaEvents(ns.name, pod.metadata.name)).find((e) => e.type === 'Warning' && /my-agent: unsupported sidecar/.test(e.message)),
    );
    assert.match(warning.message, /^Unsuccessfully shut down container my-agent: unsupported sidecar/);
    const metric = await eventually(
      'hahaha_unsupported_sidecars for my-agent',
      async () => metricValue(await metricsText(), 'hahaha_unsupported_sidecars', { container: 'my-agent', job_name: job, namespace: ns.name }) || undefined,
    );
    assert.equal(metric, 1);
    // The known sidecar is still stopped; the unknown one keeps the pod running.
    await eventually('linkerd-proxy stopped', async () => containerState(await getPod(ns.name, pod.metadata.name), 'linkerd-proxy')?.terminated);
    await sleep(3000);
    const p = await getPod(ns.name, pod.metadata.name);
    assert.equal(p.status.phase, 'Running');
    assert.ok(containerState(p, 'my-agent')?.running, 'my-agent must be left running');
    await assertShutdownRequests(ns.name, pod.metadata.name, 'my-agent', []);
    await assertShutdownRequests(ns.name, pod.metadata.name, 'linkerd-proxy', ['linkerd http POST /shutdown']);
  });

  it('does nothing while the main container runs', async () => {
    const job = 'busy';
    await apply(naisjob(ns.name, job, { containers: [main(job, 'sleep 600'), sidecar('linkerd-proxy', 'linkerd')] }));
    const pod = await jobPod(ns.name, job);
    await eventually('both containers running', async () => {
      const p = await getPod(ns.name, pod.metadata.name);
      return containerState(p, job)?.running && containerState(p, 'linkerd-proxy')?.running;
    });
    await sleep(5000);
    const p = await getPod(ns.name, pod.metadata.name);
    assert.ok(containerState(p, 'linkerd-proxy')?.running, 'the sidecar must still run');
    assert.deepEqual(await hahahaEvents(ns.name, pod.metadata.name), []);
    await assertShutdownRequests(ns.name, pod.metadata.name, 'linkerd-proxy', []);
  });

  it('never touches a native sidecar; the kubelet stops it and the Job completes', async () => {
    const job = 'native';
    await apply(
      naisjob(ns.name, job, {
        initContainers: [{ ...sidecar('linkerd-proxy', 'linkerd'), restartPolicy: 'Always' }],
        containers: [main(job, 'sleep 2')],
      }),
    );
    const pod = await jobPod(ns.name, job);
    await waitJobComplete(ns.name, job);
    assert.deepEqual(await hahahaEvents(ns.name, pod.metadata.name), []);
    // Only the kubelet's SIGTERM reached it.
    await assertShutdownRequests(ns.name, pod.metadata.name, 'linkerd-proxy', ['linkerd signal terminated']);
  });

  it('OnFailure: does not reap after a failed attempt, reaps after the successful retry', async () => {
    const job = 'onfailure';
    const marker = join(tmpdir(), `hahaha-e2e-onfailure-${randomUUID()}`);
    // The first run fails after 1 s; the second, 4 s long, succeeds.
    const script = `if [ -e ${marker} ]; then sleep 4; exit 0; fi; touch ${marker}; sleep 1; exit 1`;
    await apply(naisjob(ns.name, job, { restartPolicy: 'OnFailure', backoffLimit: 3, containers: [main(job, script), sidecar('linkerd-proxy', 'linkerd')] }));
    try {
      const pod = await jobPod(ns.name, job);
      await waitJobComplete(ns.name, job);
      const final = await getPod(ns.name, pod.metadata.name);
      assert.equal(final.status.phase, 'Succeeded');
      // The main container was restarted after its failure, and the sidecar survived it: it was
      // never restarted and stopped only after the successful run ended (checked below). Read
      // from the final state: a poll during the second run can miss it on a slow machine (pinned
      // to one core, the first read that showed the restart came after the sidecar's stop).
      const statusOf = (name: string) => (final.status?.containerStatuses ?? []).find((c: any) => c.name === name);
      assert.ok(statusOf(job)?.restartCount >= 1, 'the main container was restarted');
      assert.equal(statusOf('linkerd-proxy')?.restartCount, 0, 'the sidecar was restarted');
      const events = await killingEvents(ns.name, pod.metadata.name);
      assert.equal(events.filter((e) => e.type === 'Normal').length, 1);
      const mainFinished = Date.parse(containerState(final, job).terminated.finishedAt);
      const sidecarFinished = Date.parse(containerState(final, 'linkerd-proxy').terminated.finishedAt);
      assert.ok(sidecarFinished >= mainFinished, 'the sidecar stopped before the successful run ended');
      await assertShutdownRequests(ns.name, pod.metadata.name, 'linkerd-proxy', ['linkerd http POST /shutdown']);
    } finally {
      rmSync(marker, { force: true });
    }
  });

  it('a hanging shutdown endpoint times out, the next attempt stops the sidecar, a Warning says so', async () => {
    const job = 'hang';
    await apply(
      naisjob(ns.name, job, {
        containers: [
          main(job, 'sleep 2'),
          { name: 'istio-proxy', command: ['sh', '-c', 'fake-sidecar hang --port 15020 & exec fake-sidecar istio --no-status-port'] },
        ],
      }),
    );
    const pod = await jobPod(ns.name, job);
    await eventually('istio-proxy stopped', async () => containerState(await getPod(ns.name, pod.metadata.name), 'istio-proxy')?.terminated, 60_000);
    const events = await eventually('both events', async () => {
      const e = await hahahaEvents(ns.name, pod.metadata.name);
      return e.length >= 2 ? e : undefined;
    });
    const warning = events.find((e) => e.type === 'Warning');
    assert.match(
      warning?.message ?? '',
      /^Unsuccessfully shut down container istio-proxy: http POST :15020\/quitquitquit: timed out after 5s \(then stopped by http POST :15000\/quitquitquit\)/,
    );
    assert.match(events.find((e) => e.type === 'Normal')?.message ?? '', /http POST :15000\/quitquitquit/);
    // One request to each endpoint: the hanging one was not asked again.
    await assertShutdownRequests(ns.name, pod.metadata.name, 'istio-proxy', ['hang http "POST /quitquitquit HTTP/1.1"', 'istio http POST /quitquitquit']);
  });

  it('a sidecar that opens its admin port only after the main container ended is asked again until it listens, not signalled', async () => {
    const job = 'late';
    // The main container ends at once; the look-alike listens 4 s after it started (the real
    // cloud-sql-proxy opens its admin port after its listeners). Refused meanwhile: the ask never
    // reached it, so it is asked again the same way instead of falling back to SIGINT (exit 130).
    await apply(
      naisjob(ns.name, job, {
        containers: [main(job, 'true'), lateCloudsqlProxy],
      }),
    );
    const pod = await jobPod(ns.name, job);
    await waitJobComplete(ns.name, job);
    const events = await killingEvents(ns.name, pod.metadata.name);
    assert.deepEqual(
      events.filter((e) => e.reason === 'Killing').map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)'],
    );
    await assertShutdownRequests(ns.name, pod.metadata.name, 'cloudsql-proxy', ['cloudsql http POST /quitquitquit']);
  });

  it('two admin ports on one port-forward socket: a refused port does not hold up or fail the other', async () => {
    const job = 'shared';
    // linkerd and cloud-sql-proxy are asked together, on one pods/portforward socket carrying
    // both ports. This cloud-sql-proxy opens its admin port only once linkerd's has answered and
    // then closed, i.e. once linkerd has been stopped: its port is refused on the shared socket
    // while linkerd's answers, and it is asked again on a socket of its own. Were linkerd's stop
    // held up by the refused port, cloud-sql-proxy would never listen: after STARTING_MS it would
    // get its exec fallback, which its shell answers with exit 130, failing the Job. No clock.
    // The main container ends only once cloud-sql-proxy has seen linkerd's port answer (a file
    // on the host, which both see): linkerd cannot be stopped before that on a slow machine.
    const seen = join(tmpdir(), `hahaha-e2e-shared-${randomUUID()}`);
    const probe = 'curl -so /dev/null --max-time 1 http://127.0.0.1:4191/ready';
    try {
      await apply(
        naisjob(ns.name, job, {
          containers: [
            main(job, `until [ -e ${seen} ]; do sleep 0.05; done`),
            sidecar('linkerd-proxy', 'linkerd'),
            {
              ...lateCloudsqlProxy,
              command: [
                'sh',
                '-c',
                `trap 'exit 130' INT TERM; until ${probe}; do sleep 0.05; done; touch ${seen}; while ${probe}; do sleep 0.05; done; exec fake-sidecar cloudsql --quitquitquit`,
              ],
            },
          ],
        }),
      );
      const pod = await jobPod(ns.name, job);
      await waitJobComplete(ns.name, job);
      const final = await getPod(ns.name, pod.metadata.name);
      assert.equal(containerState(final, 'cloudsql-proxy').terminated.exitCode, 0);
      const events = await killingEvents(ns.name, pod.metadata.name, 2);
      assert.deepEqual(
        events
          .filter((e) => e.reason === 'Killing')
          .map((e) => `${e.type} ${e.message}`)
          .sort(),
        [
          'Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)',
          'Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)',
        ],
      );
      await assertShutdownRequests(ns.name, pod.metadata.name, 'linkerd-proxy', ['linkerd http POST /shutdown']);
      await assertShutdownRequests(ns.name, pod.metadata.name, 'cloudsql-proxy', ['cloudsql http POST /quitquitquit']);
    } finally {
      rmSync(seen, { force: true });
    }
  });

  it('an endpoint that refuses: the exec fallback stops the sidecar', async () => {
    const job = 'refuse';
    // CSQL_PROXY_QUITQUITQUIT=true is how cloud-sql-proxy's --quitquitquit is set by env: the
    // catalog then tries the endpoint first, which this look-alike refuses with 500.
    await apply(
      naisjob(ns.name, job, {
        containers: [main(job, 'sleep 2'), { ...sidecar('cloudsql-proxy', 'refuse', '--port', '9091'), env: { CSQL_PROXY_QUITQUITQUIT: 'true' } }],
      }),
    );
    const pod = await jobPod(ns.name, job);
    await waitJobComplete(ns.name, job);
    const events = await reportedEvents(ns.name, pod.metadata.name, (e) => e.some((x) => x.type === 'Normal') && e.some((x) => x.type === 'Warning'));
    assert.match(events.find((e) => e.type === 'Normal')?.message ?? '', /^Shut down container cloudsql-proxy \(exec \/bin\/kill -s INT 1, exit code 0\)/);
    assert.match(events.find((e) => e.type === 'Warning')?.message ?? '', /http POST :9091\/quitquitquit: HTTP 500/);
    await assertShutdownRequests(ns.name, pod.metadata.name, 'cloudsql-proxy', ['refuse http POST /quitquitquit', 'refuse signal interrupt']);
  });
});
