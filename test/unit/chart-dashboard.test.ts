import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { DASHBOARD, dashboardExpressions, metricNamesIn, RULES, ruleExpressions } from './chart-assets.ts';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };

describe('the dashboard and alert rules show the truth about exit codes and the webhook', () => {
  it('has a panel for each of the exit-code and webhook metrics', () => {
    const byTitle = new Map(dashboardExpressions().map((e) => [e.where, metricNamesIn(e.expr)]));
    const usedBy = (title: string) => [...byTitle].filter(([where]) => where.startsWith(`dashboard panel "${title}"`)).flatMap(([, names]) => names);
    assert.deepEqual(usedBy("Jobs failed by a sidecar's exit code"), ['hahaha_pods_failed_by_sidecars_total']);
    assert.deepEqual(usedBy('Stopped sidecars by exit class'), ['hahaha_stopped_sidecar_exits_total']);
    assert.deepEqual(usedBy('Native sidecar conversions'), ['hahaha_native_sidecar_conversions_total']);
    assert.deepEqual(usedBy('Webhook requests by outcome'), ['hahaha_webhook_requests_total']);
    assert.deepEqual([...new Set(usedBy('Webhook latency'))], ['hahaha_webhook_request_duration_seconds_bucket']);
  });

  it('lays panels out without overlaps, with unique ids', () => {
    const panels = dashboard.panels;
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'unique panel ids');
    const overlaps: string[] = [];
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) {
        const g = a.gridPos;
        const h = b.gridPos;
        if (g.x < h.x + h.w && h.x < g.x + g.w && g.y < h.y + h.h && h.y < g.y + g.h) overlaps.push(`${a.title} / ${b.title}`);
      }
      assert.ok(a.gridPos.x + a.gridPos.w <= 24, `${a.title} fits in 24 columns`);
    }
    assert.deepEqual(overlaps, []);
  });

  it('alerts on jobs failed by a sidecar and on webhook errors, as warnings that say what to do', () => {
    const rules = (
      parseYaml(readFileSync(RULES, 'utf8')) as {
        groups: { rules: { alert: string; expr: string; for?: string; labels: { severity: string }; annotations: { description: string } }[] }[];
      }
    ).groups.flatMap((g) => g.rules);
    const failed = rules.find((r) => r.alert === 'HahahaJobsFailedBySidecars');
    assert.ok(failed);
    assert.match(failed.expr, /increase\(hahaha_pods_failed_by_sidecars_total\[30m\]\)\) > 0/);
    assert.equal(failed.labels.severity, 'warning');
    assert.match(failed.annotations.description, /native: true/);
    const errors = rules.find((r) => r.alert === 'HahahaWebhookErrors');
    assert.ok(errors);
    assert.match(errors.expr, /hahaha_webhook_requests_total\{outcome="error"\}/);
    assert.equal(errors.for, '15m');
    assert.equal(errors.labels.severity, 'warning');
    assert.ok(ruleExpressions().length === rules.length);
  });
});
