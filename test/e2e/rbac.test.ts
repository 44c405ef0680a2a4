/**
 * Least privilege, proven on the local cluster: the chart is rendered with helm into
 * hahaha-system and applied (server-side), then
 *   - a SubjectAccessReview matrix for the chart's ServiceAccount: every verb hahaha needs is
 *     allowed, secrets, configmaps, pod writes, nodes, other namespaces' leases and lease
 *     list/watch/delete are denied;
 *   - a SelfSubjectRulesReview with the ServiceAccount's own token lists no rule beyond the
 *     chart's (and Kubernetes' defaults for every authenticated user);
 *   - hahaha runs with only that token: it lists and watches pods cluster-wide, takes its lease,
 *     stops one sidecar through pods/exec and one through pods/portforward, and posts events;
 *     its scrape serves every metric name of the dashboard and the alert rules;
 *   - `kubectl apply --server-side --dry-run=server` accepts every template with all optional
 *     resources on, and the Deployment's pod passes Pod Security `restricted` admission.
 *
 * The release is named rbac-e2e so that it never touches the suite's own hahaha release in the
 * same namespace; the hahaha this test starts watches only pods with its own label, so it never
 * acts on other tests' pods. Everything created here is deleted afterwards; hahaha-system itself
 * only if this test created it.
 *
 * ServiceMonitor and PrometheusRule: prometheus-operator's CRDs are not in the local cluster and
 * cannot be fetched here, so the test installs minimal CRDs of the same group, versions, kinds
 * and scope (schema: preserve unknown fields) when none exist. The server dry-run then proves
 * the objects are well-formed, namespaced and addressed to the right API; their contents are
 * checked against the chart's sources in chart.test.ts and against hahaha's scrape here.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertNamesExposed, dashboardExpressions, exposedNames, get, type RunningHahaha, ruleExpressions, startHahaha } from '../unit/chart-assets.ts';
import { ALL_OPTIONAL_ON, CLUSTER_RULES, find, HELM_MISSING, type K8sObject, missing, render, renderText } from './chart-helm.ts';
import { BUILT, eventually, KUBECONFIG, kubectlRun as kubectl, metricValue, tokenKubeconfig } from './harness.ts';

const KUBECTL = `${BUILT.K8S_BIN}/kubectl`;
const NS = 'hahaha-system';
const RELEASE = 'rbac-e2e';
const ID = `${process.pid}`;
const FIELD_MANAGER = 'hahaha-rbac-e2e';

const skip =
  HELM_MISSING() ??
  missing(KUBECTL, 'kubectl', 'run cluster/scripts/build.sh k8s') ??
  missing(KUBECONFIG, "the local cluster's kubeconfig", 'start it with cluster/scripts/up.sh (or set HAHAHA_KUBECONFIG)');

/** Whether the object exists; one still being deleted (an earlier run's) is waited for first. */
async function exists(args: string[]): Promise<boolean> {
  const out = (await kubectl(['get', ...args, '--ignore-not-found', '-o', 'jsonpath={.metadata.name} {.metadata.deletionTimestamp}'])).stdout.trim();
  if (out === '') return false;
  if (!out.includes(' ')) return true;
  await kubectl(['wait', '--for=delete', ...args, '--timeout=90s']);
  return false;
}

const list = (items: object[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

interface Access {
  verb: string;
  resource: string;
  group?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

function describeAccess(a: Access): string {
  const res = `${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.group ? `.${a.group}` : ''}`;
  return `${a.verb} ${res}${a.name ? ` ${a.name}` : ''} in ${a.namespace || 'all namespaces'}`;
}

describe('least privilege of the chart on the local cluster', { skip }, () => {
  let objects: K8sObject[] = [];
  let applied: K8sObject[] = [];
  let sa = '';
  let leaseName = '';
  let user = '';
  const created: string[][] = []; // kubectl delete arguments, run in reverse order
  const tmp = mkdtempSync(join(tmpdir(), 'hahaha-rbac-e2e-'));

  /** SubjectAccessReviews for the chart's ServiceAccount, with the groups its tokens carry. */
  async function review(accesses: Access[]): Promise<boolean[]> {
    const reviews = accesses.map((a) => ({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${NS}`, 'system:authenticated'],
        resourceAttributes: {
          verb: a.verb,
          resource: a.resource,
          group: a.group ?? '',
          ...(a.subresource && { subresource: a.subresource }),
          ...(a.namespace && { namespace: a.namespace }),
          ...(a.name && { name: a.name }),
        },
      },
    }));
    // kubectl prints one line per review, in order.
    const out = await kubectl(['create', '-f', '-', '-o', 'jsonpath={.status.allowed}{"\\n"}'], { input: list(reviews) });
    const lines = out.stdout.split('\n').slice(0, -1);
    assert.equal(lines.length, reviews.length, out.stdout);
    return lines.map((l) => l === 'true');
  }

  /** A kubeconfig holding only a fresh token of a ServiceAccount (the chart's by default). */
  const saKubeconfig = (account = sa) => tokenKubeconfig(NS, account, tmp, '20m');

  before(async () => {
    if (!(await exists(['namespace', NS]))) {
      await kubectl(['create', 'namespace', NS]);
      created.push(['namespace', NS]);
    }
    objects = await render(RELEASE, NS);
    // The local node runs commands, not images: the Deployment's pods could not start. The
    // Deployment and the PodDisruptionBudget are checked by the server dry-run below instead.
    // So is the MutatingWebhookConfiguration: registered for real, it would send every Naisjob
    // pod of the tests running beside this one to a Service without endpoints.
    const notApplied = new Set(['Deployment', 'PodDisruptionBudget', 'MutatingWebhookConfiguration']);
    applied = objects.filter((o) => !notApplied.has(o.kind));
    await kubectl(['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '-f', '-'], { input: list(applied) });
    for (const o of applied) created.push([o.kind.toLowerCase(), o.metadata.name, ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : [])]);
    sa = find(objects, 'ServiceAccount').metadata.name;
    leaseName = find(objects, 'Role').rules.find((r: any) => r.resourceNames)!.resourceNames[0];
    user = `system:serviceaccount:${NS}:${sa}`;
    created.push(['lease', leaseName, '-n', NS]);
  });

  after(async () => {
    for (const args of created.reverse()) {
      await kubectl(['delete', ...args, '--ignore-not-found', '--wait=false']).catch((err: unknown) => console.error(String(err)));
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('allows every verb hahaha needs', async () => {
    const needed: Access[] = [
      ...['get', 'list', 'watch'].flatMap((verb) => [
        { verb, resource: 'pods' },
        { verb, resource: 'pods', namespace: 'team-a' },
      ]),
      ...['exec', 'portforward'].flatMap((subresource) =>
        ['get', 'create'].map((verb) => ({ verb, resource: 'pods', subresource, namespace: 'team-a', name: 'job-x' })),
      ),
      ...['', 'events.k8s.io'].flatMap((group) => ['create', 'patch'].map((verb) => ({ verb, resource: 'events', group, namespace: 'team-a' }))),
      { verb: 'create', resource: 'leases', group: 'coordination.k8s.io', namespace: NS },
      { verb: 'get', resource: 'leases', group: 'coordination.k8s.io', namespace: NS, name: leaseName },
      { verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace: NS, name: leaseName },
    ];
    const allowed = await review(needed);
    assert.deepEqual(needed.filter((_, i) => !allowed[i]).map(describeAccess), [], 'needed but denied');
  });

  it('denies secrets, configmaps, pod writes, nodes, other leases and lease list/watch/delete', async () => {
    const lease = { resource: 'leases', group: 'coordination.k8s.io' };
    const denied: Access[] = [
      ...['get', 'list', 'watch'].flatMap((verb) => [
        { verb, resource: 'secrets' },
        { verb, resource: 'secrets', namespace: NS },
        { verb, resource: 'configmaps', namespace: 'team-a' },
        { verb, resource: 'nodes' },
      ]),
      ...['create', 'delete', 'deletecollection', 'patch', 'update'].map((verb) => ({ verb, resource: 'pods', namespace: 'team-a' })),
      { verb: 'patch', resource: 'pods', subresource: 'ephemeralcontainers', namespace: 'team-a' },
      { verb: 'create', resource: 'pods', subresource: 'attach', namespace: 'team-a' },
      { verb: 'create', resource: 'pods', subresource: 'eviction', namespace: 'team-a' },
      { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'team-a' },
      { verb: 'get', resource: 'nodes', subresource: 'proxy' },
      { verb: 'update', resource: 'nodes', subresource: 'status' },
      { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: NS, name: sa },
      { verb: 'list', resource: 'events', namespace: 'team-a' },
      { verb: 'delete', resource: 'events', namespace: 'team-a' },
      { verb: 'list', resource: 'jobs', group: 'batch' },
      { verb: 'delete', resource: 'jobs', group: 'batch', namespace: 'team-a' },
      ...['kube-system', 'default', 'team-a'].flatMap((namespace) =>
        ['get', 'create', 'update'].map((verb) => ({ verb, ...lease, namespace, name: verb === 'create' ? undefined : leaseName })),
      ),
      ...['list', 'watch', 'delete', 'patch'].map((verb) => ({
        verb,
        ...lease,
        namespace: NS,
        ...(verb !== 'list' && verb !== 'watch' && { name: leaseName }),
      })),
      { verb: 'get', ...lease, namespace: NS, name: 'hahaha-someone-else' },
      { verb: 'update', ...lease, namespace: NS, name: 'kube-scheduler' },
      { verb: 'bind', resource: 'clusterroles', group: 'rbac.authorization.k8s.io' },
      { verb: 'escalate', resource: 'roles', group: 'rbac.authorization.k8s.io', namespace: NS },
      { verb: 'impersonate', resource: 'serviceaccounts', namespace: NS },
    ];
    const allowed = await review(denied);
    assert.deepEqual(denied.filter((_, i) => allowed[i]).map(describeAccess), [], 'granted but not needed');
  });

  it("gives the ServiceAccount's token no rule beyond the chart's and every account's (SelfSubjectRulesReview)", async () => {
    // What every ServiceAccount gets from Kubernetes' default bindings (system:basic-user,
    // ClusterTrustBundle discovery, ...): the rules of a fresh ServiceAccount bound to nothing.
    const baseline = `rbac-e2e-baseline-${ID}`;
    await kubectl(['create', 'serviceaccount', baseline, '-n', NS]);
    created.push(['serviceaccount', baseline, '-n', NS]);
    const rulesIn = async (namespace: string, kubeconfig: string) => {
      const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace } };
      const out = JSON.parse((await kubectl(['create', '--validate=false', '-f', '-', '-o', 'json'], { input: JSON.stringify(review), kubeconfig })).stdout);
      assert.equal(out.status.incomplete, false, `rules review incomplete: ${out.status.evaluationError}`);
      const flat: string[] = [];
      for (const r of out.status.resourceRules as any[]) {
        for (const g of r.apiGroups ?? [''])
          for (const res of r.resources ?? [])
            for (const v of r.verbs ?? []) for (const n of r.resourceNames ?? ['']) flat.push([g === '' ? 'core' : g, res, v, n].join('|').replace(/\|$/, ''));
      }
      return new Set(flat);
    };
    const chartSa = await saKubeconfig();
    const baselineSa = await saKubeconfig(baseline);
    const beyondBaseline = async (namespace: string) => {
      const defaults = await rulesIn(namespace, baselineSa);
      return [...(await rulesIn(namespace, chartSa))].filter((r) => !defaults.has(r)).sort();
    };
    const cluster = [...CLUSTER_RULES];
    assert.deepEqual(await beyondBaseline('team-a'), cluster);
    assert.deepEqual(
      await beyondBaseline(NS),
      [...cluster, 'coordination.k8s.io|leases|create', `coordination.k8s.io|leases|get|${leaseName}`, `coordination.k8s.io|leases|update|${leaseName}`].sort(),
    );
  });

  it("runs hahaha with only the ServiceAccount's token: watch, lease, exec, port-forward, events, metrics", async (t) => {
    const kubeconfig = await saKubeconfig();
    const label = 'hahaha.e2e/rbac';
    const podNs = `rbac-e2e-pods-${ID}`;
    await kubectl(['create', 'namespace', podNs]);
    created.push(['namespace', podNs]);
    const instance = `rbac-e2e-${ID}`;
    let hahaha: RunningHahaha | undefined = await startHahaha({
      KUBECONFIG: kubeconfig,
      // Cluster-wide, but only this test's pods: the suite's own hahaha handles all others.
      WATCH_SELECTOR: `${label}=${ID}`,
      POD_NAMESPACE: NS,
      INSTANCE_NAME: instance,
      LEADER_ELECT: 'true',
      LEASE_NAME: leaseName,
      RETRY_BASE_SECONDS: '1',
    });
    t.after(async () => {
      await hahaha?.stop();
    });
    const { port } = hahaha;

    await eventually('hahaha ready (first pod list with the token)', async () => (await get(port, '/readyz')).status === 200, 30_000);
    await eventually('hahaha leading', async () => metricValue((await get(port, '/metrics')).text, 'hahaha_leader') === 1, 30_000);
    const lease = JSON.parse((await kubectl(['get', 'lease', leaseName, '-n', NS, '-o', 'json'])).stdout);
    assert.ok(lease.spec.holderIdentity.startsWith(`${instance}_`), `the holder ${lease.spec.holderIdentity} is ${instance} and a UUID`);

    const podName = 'rbac-job';
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName, namespace: podNs, labels: { app: podName, [label]: ID } },
      spec: {
        restartPolicy: 'Never',
        terminationGracePeriodSeconds: 5,
        containers: [
          { name: podName, image: 'example.invalid/main:e2e', command: ['sh', '-c', 'sleep 2'] },
          // exec /bin/kill -s INT 1: pods/exec
          { name: 'vks-sidecar', image: 'example.invalid/vks:e2e', command: ['fake-sidecar', 'vks'] },
          // POST :3500/v1.0/shutdown: pods/portforward
          { name: 'daprd', image: 'example.invalid/daprd:e2e', command: ['fake-sidecar', 'dapr'] },
        ],
      },
    };
    await kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    await eventually(
      'the pod to succeed (both sidecars stopped)',
      async () => JSON.parse((await kubectl(['get', 'pod', podName, '-n', podNs, '-o', 'json'])).stdout).status?.phase === 'Succeeded',
      90_000,
      500,
    );

    // The pod's phase can turn Succeeded a moment before hahaha has recorded the last stop it
    // verified (it reads the finished pod once the pod leaves its watch): wait for the counts.
    const text = await eventually(
      'both shutdowns counted',
      async () => {
        const t = (await get(port, '/metrics')).text;
        const counted = ['vks-sidecar', 'daprd'].map((c) => metricValue(t, 'hahaha_sidecar_shutdowns', { container: c, namespace: podNs }));
        return counted.every((n) => n > 0) ? t : undefined;
      },
      10_000,
    );
    assert.equal(metricValue(text, 'hahaha_sidecar_shutdowns', { container: 'vks-sidecar', namespace: podNs }), 1);
    assert.equal(metricValue(text, 'hahaha_sidecar_shutdowns', { container: 'daprd', namespace: podNs }), 1);
    assert.equal(metricValue(text, 'hahaha_failed_sidecar_shutdowns'), 0);
    assert.equal(metricValue(text, 'hahaha_total_unsuccessful_event_posts'), 0);
    const events = JSON.parse((await kubectl(['get', 'events', '-n', podNs, '--field-selector', `involvedObject.name=${podName}`, '-o', 'json'])).stdout)
      .items as { reason: string; type: string; message: string; reportingComponent?: string }[];
    const ours = events.filter((e) => e.reportingComponent === 'hahaha');
    assert.ok(
      ours.some((e) => e.type === 'Normal' && e.reason === 'Killing' && e.message.includes('vks-sidecar')),
      JSON.stringify(ours),
    );
    assert.ok(
      ours.some((e) => e.type === 'Normal' && e.reason === 'Killing' && e.message.includes('daprd')),
      JSON.stringify(ours),
    );

    // The issue's check of the monitoring assets against a running hahaha, here with real samples.
    const exposed = exposedNames(text);
    assertNamesExposed(dashboardExpressions(), exposed);
    assertNamesExposed(ruleExpressions(), exposed);

    const forbidden = hahaha.logs.filter((l) => /forbidden|\b403\b/i.test(l));
    assert.deepEqual(forbidden, [], 'hahaha logged authorization errors');

    assert.equal(await hahaha.stop(), 0, 'hahaha exits 0 on SIGTERM');
    hahaha = undefined;
    const released = JSON.parse((await kubectl(['get', 'lease', leaseName, '-n', NS, '-o', 'json'])).stdout);
    assert.equal(released.spec.holderIdentity, '', 'the lease is released on SIGTERM');
  });

  it('accepts every template, all optional resources on, in a server-side dry-run', async () => {
    const crds: [string, string, string][] = [
      ['servicemonitors', 'ServiceMonitor', 'servicemonitor'],
      ['prometheusrules', 'PrometheusRule', 'prometheusrule'],
    ];
    for (const [plural, kind, singular] of crds) {
      const name = `${plural}.monitoring.coreos.com`;
      if (await exists(['crd', name])) continue;
      const crd = {
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name, labels: { 'hahaha.e2e/minimal-crd': 'true' } },
        spec: {
          group: 'monitoring.coreos.com',
          scope: 'Namespaced',
          names: { plural, singular, kind, listKind: `${kind}List` },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } },
            },
          ],
        },
      };
      await kubectl(['create', '-f', '-'], { input: JSON.stringify(crd) });
      created.unshift(['crd', name]); // deleted last
      await kubectl(['wait', '--for=condition=Established', `crd/${name}`, '--timeout=30s']);
    }
    const text = await renderText(RELEASE, NS, ALL_OPTIONAL_ON);
    const kinds = (await render(RELEASE, NS, ALL_OPTIONAL_ON)).map((o) => o.kind);
    for (const k of ['Deployment', 'PodDisruptionBudget', 'ServiceMonitor', 'PrometheusRule', 'NetworkPolicy']) assert.ok(kinds.includes(k), k);
    const out = await eventually(
      'the dry-run (CRDs just established)',
      async () => kubectl(['apply', '--server-side', `--field-manager=${FIELD_MANAGER}`, '--dry-run=server', '-f', '-'], { input: text }),
      30_000,
      1000,
    );
    const lines = out.stdout.trim().split('\n');
    assert.equal(lines.length, kinds.length, out.stdout);
    assert.ok(
      lines.every((l) => l.endsWith('(server dry run)')),
      out.stdout,
    );
    assert.doesNotMatch(out.stderr, /warning/i);
  });

  it("runs the Deployment's pod under Pod Security restricted (enforced, no warnings)", async () => {
    const ns = `rbac-e2e-pss-${ID}`;
    await kubectl(['create', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: ns,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
            'pod-security.kubernetes.io/warn': 'restricted',
            'pod-security.kubernetes.io/warn-version': 'latest',
          },
        },
      }),
    });
    created.push(['namespace', ns]);
    // The pod names the chart's ServiceAccount; one of that name must exist in this namespace.
    await kubectl(['create', 'serviceaccount', sa, '-n', ns]);
    const template = find(objects, 'Deployment').spec.template;
    const podOf = (spec: any) =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hahaha-pss', namespace: ns, labels: template.metadata.labels }, spec });

    const out = await kubectl(['create', '--dry-run=server', '-f', '-'], { input: podOf(template.spec) });
    assert.match(out.stdout, /created \(server dry run\)/);
    assert.doesNotMatch(out.stderr, /warning/i, out.stderr);

    // The control: this namespace does enforce, so the check above is not vacuous.
    const loose = structuredClone(template.spec);
    loose.containers[0].securityContext = { ...loose.containers[0].securityContext, allowPrivilegeEscalation: true };
    await assert.rejects(kubectl(['create', '--dry-run=server', '-f', '-'], { input: podOf(loose) }), /violates PodSecurity "restricted/);
  });
});
