import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertNamesExposed,
  dashboardExpressions,
  exposedNames,
  get,
  metricNamesIn,
  type RunningHahaha,
  ruleExpressions,
  startHahaha,
} from './chart-assets.ts';

// A kubeconfig whose API server refuses connections: hahaha serves its metrics regardless,
// and keeps retrying the pod watch in the background.
function unreachableKubeconfig(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hahaha-chart-metrics-'));
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]',
      'users: [{name: none, user: {token: none}}]',
      'contexts: [{name: none, context: {cluster: none, user: none}}]',
      'current-context: none',
      '',
    ].join('\n'),
  );
  return file;
}

describe('dashboard and alert rules use the metric names hahaha exports', () => {
  let hahaha: RunningHahaha | undefined;
  let exposed: Set<string>;

  before(async () => {
    hahaha = await startHahaha({ KUBECONFIG: unreachableKubeconfig(), LEADER_ELECT: 'false' });
    const res = await get(hahaha.port, '/metrics');
    assert.equal(res.status, 200);
    exposed = exposedNames(res.text);
  });
  after(async () => {
    if (hahaha !== undefined) assert.equal(await hahaha.stop(), 0, 'hahaha exits 0 on SIGTERM');
  });

  it("the scrape has HAHAHA's four names and hahaha_leader", () => {
    for (const name of [
      'hahaha_sidecar_shutdowns',
      'hahaha_failed_sidecar_shutdowns',
      'hahaha_unsupported_sidecars',
      'hahaha_total_unsuccessful_event_posts',
      'hahaha_leader',
    ]) {
      assert.ok(exposed.has(name), `${name} missing from the scrape`);
    }
  });

  it('every dashboard expression', () => {
    const exprs = dashboardExpressions();
    assert.ok(exprs.length >= 15, `only ${exprs.length} dashboard expressions found`);
    assertNamesExposed(exprs, exposed);
  });

  it('every alert rule expression', () => {
    const exprs = ruleExpressions();
    const alerts = exprs.map((e) => e.where);
    for (const alert of [
      'HahahaSidecarShutdownsFailing',
      'HahahaUnsupportedSidecar',
      'HahahaPodsWaiting',
      'HahahaNoLeader',
      'HahahaJobsFailedBySidecars',
      'HahahaWebhookErrors',
    ]) {
      assert.ok(alerts.includes(`rule hahaha/${alert}`), `alert ${alert} missing`);
    }
    assertNamesExposed(exprs, exposed);
  });

  it('the checker catches a misspelt name', () => {
    assert.deepEqual(metricNamesIn('sum by (container) (rate(hahaha_sidecar_shutdown_total{job=~"$job"}[5m])) > 0'), ['hahaha_sidecar_shutdown_total']);
    assert.throws(() => assertNamesExposed([{ where: 'typo', expr: 'hahaha_sidecar_shutdown_total' }], exposed));
  });

  it('the checker sees every name of a binary expression', () => {
    assert.deepEqual(metricNamesIn('(min_over_time(hahaha_queue_depth[15m]) > 0) and on (instance) (hahaha_leader == 1)').sort(), [
      'hahaha_leader',
      'hahaha_queue_depth',
    ]);
  });
});
