/**
 * The Helm chart, checked with the real helm (built by cluster/scripts/build.sh): lint, render
 * with every optional template on, the schema rejecting typos, least-privilege RBAC rules, a
 * Pod Security `restricted` pod, the catalog carried byte for byte. Needs no cluster; the
 * server-side checks are in rbac.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CHART, DASHBOARD, REPO, RULES } from '../unit/chart-assets.ts';
import { ALL_OPTIONAL_ON, CLUSTER_RULES, find, HELM_MISSING, helm, type K8sObject, render } from './chart-helm.ts';

const skip = HELM_MISSING();
const NS = 'hahaha-system';

/** Rules as comparable strings: "group|resource|verb[|name]" (group "core" for ""), sorted. */
export function flattenRules(rules: any[]): string[] {
  const out: string[] = [];
  for (const r of rules) {
    for (const g of r.apiGroups ?? [''])
      for (const res of r.resources ?? [])
        for (const v of r.verbs ?? [])
          for (const n of r.resourceNames ?? ['']) out.push([g === '' ? 'core' : g, res, v, n].join('|').replace(/\|$/, ''));
  }
  return out.sort();
}

describe('helm chart', { skip }, () => {
  it('passes helm lint --strict, with defaults and with every optional template on', async () => {
    await helm(['lint', '--strict', CHART]);
    const sets = Object.entries(ALL_OPTIONAL_ON).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
    await helm(['lint', '--strict', CHART, ...sets]);
  });

  it('renders only the core objects by default', async () => {
    const kinds = (await render('hahaha', NS)).map((o) => o.kind).sort();
    assert.deepEqual(kinds, [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Deployment',
      'PodDisruptionBudget',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('renders ServiceMonitor, PrometheusRule, dashboard ConfigMap and NetworkPolicy when switched on', async () => {
    const objects = await render('hahaha', NS, ALL_OPTIONAL_ON);
    const sm = find(objects, 'ServiceMonitor');
    assert.equal(sm.spec.endpoints[0].port, 'metrics');
    assert.equal(sm.spec.endpoints[0].path, '/metrics');
    const rule = find(objects, 'PrometheusRule');
    const fileRules = (await import('yaml')).parse(readFileSync(RULES, 'utf8')).groups;
    assert.deepEqual(
      rule.spec.groups.map((g: any) => g.rules.map((r: any) => [r.alert, r.expr])),
      fileRules.map((g: any) => g.rules.map((r: any) => [r.alert, r.expr])),
      'the PrometheusRule carries rules/hahaha.yaml unchanged',
    );
    const dashboards = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
    assert.equal(dashboards.length, 1, 'one ConfigMap labelled grafana_dashboard: "1"');
    assert.deepEqual(JSON.parse(dashboards[0]!.data['hahaha.json']), JSON.parse(readFileSync(DASHBOARD, 'utf8')));
    const np = find(objects, 'NetworkPolicy');
    assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(np.spec.ingress, [{ ports: [{ port: 'metrics', protocol: 'TCP' }] }]);
    assert.deepEqual(np.spec.egress[0].to, [{ ipBlock: { cidr: '127.0.0.1/32' } }]);
  });

  it('adds alertLabels to every alert without overriding its severity', async () => {
    const objects = await render('hahaha', NS, { prometheusRule: { enabled: true, alertLabels: { team: 'platform', severity: 'page' } } });
    for (const r of find(objects, 'PrometheusRule').spec.groups.flatMap((g: any) => g.rules)) {
      assert.equal(r.labels.team, 'platform', r.alert);
      assert.notEqual(r.labels.severity, 'page', r.alert);
    }
  });

  it('rejects typos anywhere in the values (values.schema.json closes every object)', async () => {
    for (const set of ['logLevl=debug', 'serviceMonitor.enabeld=true', 'leaderElection.leaseDuration=15', 'securityContext.readOnlyRootFilesytem=false', 'resources.requests.cpus=1']) {
      await assert.rejects(helm(['template', 'hahaha', CHART, '--set', set]), /additional properties .* not allowed/, set);
    }
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'logLevel=verbose']), /logLevel|enum|must be one of/);
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'replicaCount=0']), /replicaCount|minimum/);
  });

  it('refuses combinations that would act twice or cannot work', async () => {
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'leaderElection.enabled=false']), /replicaCount > 1 needs leaderElection/);
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'networkPolicy.enabled=true']), /networkPolicy.apiServer.cidrs/);
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'leaderElection.renewDeadlineSeconds=20']), /leaseDurationSeconds > renewDeadlineSeconds/);
  });

  it('creates a PodDisruptionBudget only with more than one replica', async () => {
    const one = await render('hahaha', NS, { replicaCount: 1 });
    assert.ok(!one.some((o) => o.kind === 'PodDisruptionBudget'));
    const two = await render('hahaha', NS, { replicaCount: 2 });
    assert.equal(find(two, 'PodDisruptionBudget').spec.maxUnavailable, 1);
  });

  it('grants exactly the verbs hahaha uses', async () => {
    const objects = await render('hahaha', NS);
    assert.deepEqual(flattenRules(find(objects, 'ClusterRole').rules), CLUSTER_RULES);
    const role = find(objects, 'Role');
    assert.equal(role.metadata.namespace, NS);
    assert.deepEqual(flattenRules(role.rules), [
      'coordination.k8s.io|leases|create',
      'coordination.k8s.io|leases|get|hahaha',
      'coordination.k8s.io|leases|update|hahaha',
    ]);
    const sa = find(objects, 'ServiceAccount').metadata.name;
    for (const kind of ['ClusterRoleBinding', 'RoleBinding']) {
      assert.deepEqual(find(objects, kind).subjects, [{ kind: 'ServiceAccount', name: sa, namespace: NS }], kind);
    }
  });

  it('runs a pod that meets Pod Security restricted, with the downward API and the lease settings', async () => {
    const dep = find(await render('hahaha', NS), 'Deployment');
    assert.equal(dep.spec.replicas, 2);
    const pod = dep.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
    assert.equal(pod.hostNetwork ?? false, false);
    assert.equal(pod.containers.length, 1);
    const c = pod.containers[0];
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.ok(!(pod.volumes as any[]).some((v) => v.hostPath), 'no hostPath volumes');
    const env = Object.fromEntries((c.env as any[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    assert.deepEqual(env.POD_NAME, { fieldRef: { fieldPath: 'metadata.name' } });
    assert.deepEqual(env.POD_NAMESPACE, { fieldRef: { fieldPath: 'metadata.namespace' } });
    assert.equal(env.WATCH_SELECTOR, 'nais.io/naisjob=true');
    assert.equal(env.METRICS_PORT, '8999');
    assert.equal(env.LEADER_ELECT, 'true');
    assert.equal(env.LEASE_NAME, find(await render('hahaha', NS), 'Role').rules[1].resourceNames[0]);
    assert.equal(env.SIDECAR_CATALOG, '/etc/hahaha/sidecars.yaml');
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
    assert.ok(c.resources.requests.memory && c.resources.limits.memory);
  });

  it('turns values into the daemon environment', async () => {
    const dep = find(
      await render('hahaha', NS, {
        watch: { selector: 'team=x', namespaces: ['a', 'b'] },
        logLevel: 'debug',
        maxConcurrentPods: 8,
        retry: { baseSeconds: 2, maxSeconds: 60 },
        leaderElection: { leaseName: 'reaper' },
      }),
      'Deployment',
    );
    const env = Object.fromEntries((dep.spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value]));
    assert.equal(env.WATCH_SELECTOR, 'team=x');
    assert.equal(env.WATCH_NAMESPACES, 'a,b');
    assert.equal(env.LOG_LEVEL, 'debug');
    assert.equal(env.MAX_CONCURRENT_PODS, '8');
    assert.equal(env.RETRY_BASE_SECONDS, '2');
    assert.equal(env.RETRY_MAX_SECONDS, '60');
    assert.equal(env.LEASE_NAME, 'reaper');
  });

  it('carries config/sidecars.yaml byte for byte in the catalog ConfigMap, and rolls pods when it changes', async () => {
    const objects = await render('hahaha', NS);
    const cm = objects.find((o: K8sObject) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-catalog'));
    assert.ok(cm);
    assert.equal(cm.data['sidecars.yaml'], readFileSync(`${REPO}config/sidecars.yaml`, 'utf8'));
    const custom = 'sidecars:\n  - name: x\n    containers: [x]\n    attempts:\n      - exec: {command: [/bin/true]}\n';
    const other = await render('hahaha', NS, { catalog: { content: custom } });
    const otherCm = other.find((o) => o.kind === 'ConfigMap')!;
    assert.equal(otherCm.data['sidecars.yaml'], custom);
    const checksum = (objs: K8sObject[]) => find(objs, 'Deployment').spec.template.metadata.annotations['checksum/catalog'];
    assert.notEqual(checksum(objects), checksum(other));
  });
});
