/**
 * The daemon as its image runs it: compiled with tsc, laid out as the image's /app, started with
 * the Dockerfile's final-stage ENV and its ENTRYPOINT's node flags (`--lite-mode`: V8 without its
 * compilers and without WebAssembly). The other e2e tests run the TypeScript sources, which a
 * node started with those flags cannot load, so this is where each way of stopping a sidecar is
 * proven under them (the short soak's replicas run the same tree, under faults): an HTTP call
 * through a port-forward (linkerd) and a command through exec (vks), both to fake sidecars the
 * test started.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildImageTree, dockerfileFinalStage } from '../image-tree.ts';
import { get } from '../unit/chart-assets.ts';
import { apply, eventually, hahahaEvents, jobPod, main, metricValue, naisjob, namespace, ownHahaha, sidecar, waitJobComplete } from './harness.ts';

describe("the image's node flags", () => {
  it('the compiled daemon, started as the image starts it, reaps an HTTP and an exec sidecar', async (t) => {
    const app = mkdtempSync(join(tmpdir(), 'hahaha-e2e-image-'));
    t.after(() => rmSync(app, { recursive: true, force: true }));
    await buildImageTree(app);
    const stage = dockerfileFinalStage();
    const { ns, cleanup } = await namespace('e2e-image');
    t.after(cleanup);
    const { hahaha, id } = await ownHahaha(t, 'e2e-image', stage.env, { script: join(app, 'bin', 'hahaha.js'), cwd: app, nodeArgs: stage.flags });
    // The process runs the compiled tree with exactly the ENTRYPOINT's flags.
    const argv = readFileSync(`/proc/${hahaha.child.pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
    assert.deepEqual(argv.slice(1), [...stage.flags, join(app, 'bin', 'hahaha.js'), 'run']);

    const labels = { 'e2e-image': id, 'nais.io/naisjob': 'false' };
    await apply(naisjob(ns, 'image', { labels, containers: [main('image', 'sleep 2'), sidecar('linkerd-proxy', 'linkerd'), sidecar('vks-sidecar', 'vks')] }));
    const pod = await jobPod(ns, 'image');
    await waitJobComplete(ns, 'image');
    const events = await eventually('both Killing events', async () => {
      const e = await hahahaEvents(ns, pod.metadata.name);
      return e.length >= 2 ? e : undefined;
    });
    assert.deepEqual(events.map((e) => `${e.type} ${e.message}`).sort(), [
      'Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)',
      'Normal Shut down container vks-sidecar (exec /bin/kill -s INT 1, exit code 0)',
    ]);
    const text = (await get(hahaha.port, '/metrics')).text;
    assert.equal(metricValue(text, 'hahaha_sidecar_shutdowns', { namespace: ns }), 2);
    assert.equal(metricValue(text, 'hahaha_failed_sidecar_shutdowns'), 0);
  });
});
