/**
 * hahaha watches only running pods (field selector status.phase=Running): a pod that finishes or
 * is deleted leaves its cache at once, and a reap still sees the stop that finished the pod.
 * Runs its own hahaha (the chart ServiceAccount's token) on a label no other test uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { get } from '../unit/chart-assets.ts';
import { apply, eventually, hahahaEvents, jobPod, kubectl, main, metricValue, naisjob, namespace, ownHahaha, sidecar, waitJobComplete } from './harness.ts';

describe('watch scope', () => {
  it('finished and deleted pods leave the cache; the stop that finished a pod is still verified', async (t) => {
    const { ns, cleanup } = await namespace('e2e-watch');
    t.after(cleanup);
    const { hahaha, id } = await ownHahaha(t, 'e2e-watch');
    const watched = async () => metricValue((await get(hahaha.port, '/metrics')).text, 'hahaha_watched_pods');
    const labels = { 'e2e-watch': id, 'nais.io/naisjob': 'false' };

    await apply([
      naisjob(ns, 'reaped', { labels, containers: [main('reaped', 'sleep 3'), sidecar('vks-sidecar', 'vks')] }),
      naisjob(ns, 'deleted', { labels, containers: [main('deleted', 'sleep 600'), sidecar('vks-sidecar', 'vks')] }),
    ]);
    await eventually('both pods watched while running', async () => (await watched()) === 2, 30_000);

    // The last sidecar's stop makes the pod Succeeded, so it leaves the watch in the same update
    // that shows the sidecar terminated: the reap must still count it as shut down.
    const reaped = await jobPod(ns, 'reaped');
    await waitJobComplete(ns, 'reaped');
    await eventually('the finished pod dropped', async () => (await watched()) === 1, 10_000);
    // Recorded just after the pod turned Succeeded (hahaha reads the finished pod first).
    const events = await eventually('the Killing event', async () => {
      const e = await hahahaEvents(ns, reaped.metadata.name);
      return e.length > 0 ? e : undefined;
    });
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container vks-sidecar (exec /bin/kill -s INT 1, exit code 0)'],
    );
    const text = (await get(hahaha.port, '/metrics')).text;
    assert.equal(metricValue(text, 'hahaha_sidecar_shutdowns', { namespace: ns }), 1);
    assert.equal(metricValue(text, 'hahaha_failed_sidecar_shutdowns'), 0);

    // Deleting the Job deletes its pod (a pod deleted alone would be replaced by the Job controller).
    await kubectl(['delete', 'job', 'deleted', '-n', ns, '--wait=false']);
    await eventually('the deleted pod dropped', async () => (await watched()) === 0, 30_000);
  });
});
