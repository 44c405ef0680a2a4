/** A Naisjob with a schedule becomes a CronJob: its Jobs must complete too. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apply, eventually, killingEvents, kubectlJson, main, podTemplate, sidecar, testNamespace } from './harness.ts';

describe('CronJob', () => {
  const ns = testNamespace('e2e-cronjob');

  it("a CronJob's Job completes with its sidecars stopped", async () => {
    const name = 'nightly';
    await apply({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name, namespace: ns.name, labels: { app: name } },
      spec: {
        schedule: '* * * * *',
        concurrencyPolicy: 'Forbid',
        jobTemplate: {
          spec: {
            backoffLimit: 0,
            template: podTemplate({
              app: name,
              containers: [main(name, 'sleep 1'), sidecar('linkerd-proxy', 'linkerd'), sidecar('secure-logs-fluentd', 'fluentd')],
            }),
          },
        },
      },
    });
    // The first tick comes within a minute.
    const job = await eventually(
      'a completed Job of the CronJob',
      async () => {
        const jobs = await kubectlJson<{ items: any[] }>(['get', 'jobs', '-n', ns.name]);
        return jobs.items.find((j) => (j.status?.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True'));
      },
      150_000,
      1000,
    );
    const pods = await kubectlJson<{ items: any[] }>(['get', 'pods', '-n', ns.name, '-l', `batch.kubernetes.io/job-name=${job.metadata.name}`]);
    const pod = pods.items[0];
    assert.equal(pod.status.phase, 'Succeeded');
    const events = await killingEvents(ns.name, pod.metadata.name, 2);
    assert.equal(events.filter((e) => e.type === 'Normal' && e.reason === 'Killing').length, 2, JSON.stringify(events));
  });
});
