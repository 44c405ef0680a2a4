/**
 * One Naisjob-like Job per default catalog entry: the main container exits, hahaha stops the
 * sidecar the entry's way, the pod ends Succeeded, the Job Complete, and `kubectl describe pod`
 * shows the Normal Killing event. The look-alike sidecars must have been asked exactly once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  apply,
  BUILT,
  type ContainerSpec,
  eventually,
  getPod,
  jobPod,
  killingEvents,
  kubectl,
  main,
  metricsText,
  metricValue,
  naisjob,
  sidecar,
  testNamespace,
  waitJobComplete,
} from './harness.ts';
import { assertShutdownRequests } from './shutdown-requests.ts';

const configmapDir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-configmap-'));

/** `asked`: the shutdown requests the look-alike logs (shutdown-requests.ts); the real programs log none. */
const entries: { entry: string; container: ContainerSpec; via: RegExp; fails?: boolean; asked?: string[] }[] = [
  { entry: 'linkerd', container: sidecar('linkerd-proxy', 'linkerd'), via: /http POST :4191\/shutdown, exit code 0/, asked: ['linkerd http POST /shutdown'] },
  {
    // The real proxy, measured: without an identity from its control plane, it drains for the
    // whole grace period after the 200; hahaha waits for the configured one instead of calling
    // the ask ignored after 10 s and asking a port that no longer listens.
    entry: 'linkerd without its identity, LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=15s: waited for, asked once',
    container: {
      ...sidecar('linkerd-proxy', 'linkerd', '--no-identity', '--shutdown-grace-period', '15s'),
      env: { LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD: '15s' },
    },
    via: /http POST :4191\/shutdown, exit code 0/,
    asked: ['linkerd http POST /shutdown'],
  },
  {
    // Unset, the catalog assumes the proxy's own default (2m): the drain is awaited without a
    // worker, and the exit (this look-alike's 15 s drain, past the 10 s window) is the ask's stop.
    entry: 'linkerd without its identity, LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD unset: its drain awaited, asked once, no Warning',
    container: sidecar('linkerd-proxy', 'linkerd', '--no-identity', '--shutdown-grace-period', '15s'),
    via: /http POST :4191\/shutdown, exit code 0/,
    asked: ['linkerd http POST /shutdown'],
  },
  {
    entry: 'istio',
    container: sidecar('istio-proxy', 'istio'),
    via: /http POST :15020\/quitquitquit, exit code 0/,
    asked: ['istio http POST /quitquitquit'],
  },
  {
    entry: 'cloud-sql-proxy (v2, quitquitquit)',
    container: sidecar('cloud-sql-proxy', 'cloudsql', '--quitquitquit'),
    via: /http POST :9091\/quitquitquit, exit code 0/,
    asked: ['cloudsql http POST /quitquitquit'],
  },
  {
    entry: 'secure-logs-fluentd',
    container: sidecar('secure-logs-fluentd', 'fluentd'),
    via: /http GET :24444\/api\/processes.killWorkers, exit code 0/,
    asked: ['fluentd http GET /api/processes.killWorkers'],
  },
  {
    entry: 'secure-logs-configmap-reload (the real configmap-reload, stopped with killall)',
    container: {
      name: 'secure-logs-configmap-reload',
      command: [
        `${BUILT.CONFIGMAP_RELOAD_BIN}/configmap-reload`,
        `--volume-dir=${configmapDir}`,
        '--webhook-url=http://127.0.0.1:9999/-/reload',
        '--web.listen-address=127.0.0.1:9533',
      ],
    },
    via: /exec \/bin\/killall configmap-reload, exit code 2; a non-zero exit code fails the pod/,
    // configmap-reload handles no signal: as PID 1 it exits 2 after SIGTERM (Go's runtime), so
    // the pod fails. This is what the entry (HAHAHA's) does on a real cluster too; only as a
    // native sidecar does its Job complete (native-sidecars.test.ts).
    fails: true,
  },
  {
    entry: 'secure-logs-configmap-reload (look-alike, killall counted)',
    container: sidecar('secure-logs-configmap-reload', 'configmap-reload'),
    via: /exec \/bin\/killall configmap-reload, exit code 2; a non-zero exit code fails the pod/,
    fails: true,
    asked: ['configmap-reload signal terminated'],
  },
  { entry: 'vks-sidecar', container: sidecar('vks-sidecar', 'vks'), via: /exec \/bin\/kill -s INT 1, exit code 0/, asked: ['vks signal interrupt'] },
  {
    entry: 'vault-agent',
    container: sidecar('vault-agent', 'vault'),
    via: /http POST :8200\/agent\/v1\/quit, exit code 0/,
    asked: ['vault http POST /agent/v1/quit'],
  },
  { entry: 'dapr', container: sidecar('daprd', 'dapr'), via: /http POST :3500\/v1.0\/shutdown, exit code 0/, asked: ['dapr http POST /v1.0/shutdown'] },
];

describe('every default catalog entry stops its sidecar', () => {
  const ns = testNamespace('e2e-entries');

  for (const [i, { entry, container, via, fails, asked }] of entries.entries()) {
    it(entry, async () => {
      const job = `entry-${i}`;
      await apply(naisjob(ns.name, job, { containers: [main(job, 'sleep 2; echo done'), container] }));
      const pod = await jobPod(ns.name, job);
      if (fails) {
        const phase = await eventually(
          'the pod to finish',
          async () => {
            const p = await getPod(ns.name, pod.metadata.name);
            return ['Succeeded', 'Failed'].includes(p.status?.phase) ? p.status.phase : undefined;
          },
          90_000,
        );
        assert.equal(phase, 'Failed');
        // Counted as what it is: a Job failed by its sidecar's exit code.
        await eventually(
          'hahaha_pods_failed_by_sidecars_total for the job',
          async () => metricValue(await metricsText(), 'hahaha_pods_failed_by_sidecars_total', { namespace: ns.name, job_name: job }) === 1,
        );
      } else {
        await waitJobComplete(ns.name, job);
        assert.equal((await getPod(ns.name, pod.metadata.name)).status.phase, 'Succeeded');
      }
      const events = await killingEvents(ns.name, pod.metadata.name);
      // A stop that leaves a non-zero exit code is a Warning: it fails the pod.
      const type = fails ? 'Warning' : 'Normal';
      const event = events.find((e) => e.type === type && e.reason === 'Killing' && e.message.startsWith('Shut down'));
      assert.ok(event, `no ${type} Killing event: ${JSON.stringify(events)}`);
      if (!fails) assert.ok(!events.some((e) => e.type === 'Warning' && e.reason === 'Killing'), `a Warning Killing event: ${JSON.stringify(events)}`);
      assert.match(event.message, new RegExp(`^Shut down container ${container.name} \\(`));
      assert.match(event.message, via);
      const described = await kubectl(['describe', 'pod', pod.metadata.name, '-n', ns.name]);
      assert.match(described, new RegExp(`${type}\\s+Killing\\s+.*Shut down container ${container.name}`));
      if (asked) await assertShutdownRequests(ns.name, pod.metadata.name, container.name, asked);
    });
  }
});
