/**
 * Knowing before it hangs: the preflight Warning at pod start, and dry-run mode, on the local
 * cluster. The preflight cases use the suite's hahaha; the dry-run case runs its own
 * hahaha (the chart ServiceAccount's token, DRY_RUN=true) on a label no other test uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { get } from '../unit/chart-assets.ts';
import {
  apply,
  containerState,
  eventually,
  getPod,
  hahahaEvents,
  jobPod,
  kubectlJson,
  main,
  metricValue,
  naisjob,
  namespace,
  ownHahaha,
  sidecar,
  testNamespace,
} from './harness.ts';

describe('preflight at pod start', { concurrency: true }, () => {
  const ns = testNamespace('e2e-preflight');

  it('a sidecar predicted to fail the Job gets a SidecarPreflight Warning within 5 s of running, before the main container ends', async () => {
    const job = 'doomed';
    // configmap-reload (not converted here) exits 2 on killall: the Job would fail.
    await apply(
      naisjob(ns.name, job, {
        containers: [main(job, 'sleep 20'), { name: 'secure-logs-configmap-reload', command: ['fake-sidecar', 'deaf'] }, sidecar('my-agent', 'deaf')],
      }),
    );
    const pod = await jobPod(ns.name, job);
    const running = await eventually('the pod running', async () => {
      const p = await getPod(ns.name, pod.metadata.name);
      return p.status?.phase === 'Running' ? Date.now() : undefined;
    });
    const warning = await eventually(
      'the preflight Warning',
      async () => (await hahahaEvents(ns.name, pod.metadata.name)).find((e) => e.reason === 'SidecarPreflight'),
      5000,
      100,
    );
    assert.ok(Date.now() - running <= 5000 + 500, `${Date.now() - running} ms after running`);
    assert.equal(warning.type, 'Warning');
    assert.match(warning.message, /Sidecar secure-logs-configmap-reload will fail the Job: exec \/bin\/killall configmap-reload stops it with exit code 2/);
    assert.match(warning.message, /Sidecar my-agent will hang the Job: no catalog entry matches my-agent/);
    assert.ok(containerState(await getPod(ns.name, pod.metadata.name), job)?.running, 'before the main container ends');
  });

  it('a pod that will be fine gets no preflight event', async () => {
    const job = 'fine';
    await apply(naisjob(ns.name, job, { containers: [main(job, 'sleep 3'), sidecar('linkerd-proxy', 'linkerd'), sidecar('daprd', 'dapr')] }));
    const pod = await jobPod(ns.name, job);
    await eventually('the Job to complete', async () => {
      const j = await kubectlJson(['get', 'job', job, '-n', ns.name]);
      return (j.status?.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True');
    });
    assert.deepEqual(
      (await hahahaEvents(ns.name, pod.metadata.name)).filter((e) => e.reason === 'SidecarPreflight'),
      [],
    );
  });
});

describe('dry run', () => {
  it('decides and records "would" events, never stops anything: with only a dry run the Job stays running', async (t) => {
    const { ns, cleanup } = await namespace('e2e-dryrun');
    t.after(cleanup);
    const { hahaha, id } = await ownHahaha(t, 'e2e-dryrun', { DRY_RUN: 'true' });
    const job = 'dry';
    await apply(
      naisjob(ns, job, {
        labels: { 'e2e-dryrun': id, 'nais.io/naisjob': 'false' },
        containers: [main(job, 'sleep 1'), sidecar('linkerd-proxy', 'linkerd'), sidecar('vks-sidecar', 'vks')],
      }),
    );
    const pod = await jobPod(ns, job);
    const events = await eventually('two "would" events', async () => {
      const e = (await hahahaEvents(ns, pod.metadata.name)).filter((x) => x.message.startsWith('Would shut down'));
      return e.length === 2 ? e : undefined;
    });
    assert.deepEqual(events.map((e) => `${e.type} ${e.message}`).sort(), [
      'Normal Would shut down container linkerd-proxy (http POST :4191/shutdown); dry run, nothing was done',
      'Normal Would shut down container vks-sidecar (exec /bin/kill -s INT 1); dry run, nothing was done',
    ]);
    await sleep(5000);
    const p = await getPod(ns, pod.metadata.name);
    assert.ok(containerState(p, 'linkerd-proxy')?.running && containerState(p, 'vks-sidecar')?.running, 'both sidecars still run');
    const j = await kubectlJson(['get', 'job', job, '-n', ns]);
    assert.ok(
      !(j.status?.conditions ?? []).some((c: any) => c.status === 'True' && (c.type === 'Complete' || c.type === 'Failed')),
      'the Job is still running',
    );
    const text = (await get(hahaha.port, '/metrics')).text;
    assert.equal(metricValue(text, 'hahaha_dry_run_would_stop_total', { namespace: ns }), 2);
    assert.equal(metricValue(text, 'hahaha_sidecar_shutdowns'), 0);
    assert.equal(metricValue(text, 'hahaha_attempt_duration_seconds_count'), 0, 'no attempt was made');
  });
});
