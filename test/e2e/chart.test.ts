/**
 * The Helm chart, checked with the real helm (built by cluster/scripts/build.sh): lint, render
 * with every optional template on, the schema rejecting typos, least-privilege RBAC rules, a
 * Pod Security `restricted` pod, the catalog carried byte for byte, and the admission webhook's
 * objects (Service, MutatingWebhookConfiguration, TLS by helm or by cert-manager, selectors).
 * These need no cluster. The last block does: a server-side dry-run of the webhook's objects and
 * the Deployment, and a real `helm install` + `helm upgrade` + `helm uninstall` proving that the
 * chart-generated certificate and caBundle survive an upgrade. The other server-side checks
 * (RBAC, Pod Security admission) are in rbac.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { CHART, DASHBOARD, REPO, RULES } from '../unit/chart-assets.ts';
import {
  ALL_OPTIONAL_ON,
  CLUSTER_RULES,
  find,
  HELM_MISSING,
  helm,
  helmOnCluster,
  type K8sObject,
  missing,
  render,
  setJson,
  webhookObjects,
} from './chart-helm.ts';
import { BUILT, KUBECONFIG, kubectlRun } from './harness.ts';

const skip = HELM_MISSING();
const NS = 'hahaha-system';
const WEBHOOK_OFF = { webhook: { enabled: false } };

/** Rules as comparable strings: "group|resource|verb[|name]" (group "core" for ""), sorted. */
export function flattenRules(rules: any[]): string[] {
  const out: string[] = [];
  for (const r of rules) {
    for (const g of r.apiGroups ?? [''])
      for (const res of r.resources ?? [])
        for (const v of r.verbs ?? []) for (const n of r.resourceNames ?? ['']) out.push([g === '' ? 'core' : g, res, v, n].join('|').replace(/\|$/, ''));
  }
  return out.sort();
}

describe('helm chart', { skip }, () => {
  it('passes helm lint --strict, with defaults and with every optional template on', async () => {
    await helm(['lint', '--strict', CHART]);
    const sets = Object.entries(ALL_OPTIONAL_ON).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
    await helm(['lint', '--strict', CHART, ...sets]);
  });

  it('renders the core objects and the webhook by default, and only the core objects with the webhook off', async () => {
    const core = [
      'ClusterRole/hahaha',
      'ClusterRoleBinding/hahaha',
      'ConfigMap/hahaha-catalog',
      'Deployment/hahaha',
      'PodDisruptionBudget/hahaha',
      'Role/hahaha-leader-election',
      'RoleBinding/hahaha-leader-election',
      'Service/hahaha-metrics',
      'ServiceAccount/hahaha',
    ];
    const names = (objs: K8sObject[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(names(await render('hahaha', NS)), [...core, ...webhookObjects('hahaha')].sort());
    assert.deepEqual(names(await render('hahaha', NS, WEBHOOK_OFF)), core);
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
    assert.deepEqual(np.spec.ingress, [{ ports: [{ port: 'metrics', protocol: 'TCP' }] }, { ports: [{ port: 'webhook', protocol: 'TCP' }] }]);
    const npOff = find(await render('hahaha', NS, { ...ALL_OPTIONAL_ON, ...WEBHOOK_OFF }), 'NetworkPolicy');
    assert.deepEqual(npOff.spec.ingress, [{ ports: [{ port: 'metrics', protocol: 'TCP' }] }]);
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
    for (const set of [
      'logLevl=debug',
      'serviceMonitor.enabeld=true',
      'leaderElection.leaseDuration=15',
      'securityContext.readOnlyRootFilesytem=false',
      'resources.requests.cpus=1',
      'webhook.enabeld=false',
      'webhook.failurePolicy=Fail',
      'webhook.certManager.issuerRef.nmae=x',
      'webhook.objectSelector.matchLabel.a=b',
    ]) {
      await assert.rejects(helm(['template', 'hahaha', CHART, '--set', set]), /additional properties .* not allowed/, set);
    }
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'logLevel=verbose']), /logLevel|enum|must be one of/);
    await assert.rejects(helm(['template', 'hahaha', CHART, '--set', 'replicaCount=0']), /replicaCount|minimum/);
    for (const set of ['webhook.timeoutSeconds=0', 'webhook.timeoutSeconds=11', 'webhook.port=0', 'webhook.certificate.validityDays=0']) {
      await assert.rejects(helm(['template', 'hahaha', CHART, '--set', set]), /timeoutSeconds|port|validityDays|minimum|maximum/, set);
    }
    await assert.rejects(
      helm(['template', 'hahaha', CHART, '--set-json', 'webhook.objectSelector={"matchExpressions":[{"key":"a","operator":"Maybe"}]}']),
      /operator|enum|must be one of/,
    );
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

  it('adds patch on pods/ephemeralcontainers, and the image, only with ephemeralSignal.enabled', async () => {
    const objects = await render('hahaha', NS, { ephemeralSignal: { enabled: true } });
    assert.deepEqual(flattenRules(find(objects, 'ClusterRole').rules), [...CLUSTER_RULES, 'core|pods/ephemeralcontainers|patch'].sort());
    const env = Object.fromEntries((find(objects, 'Deployment').spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value]));
    assert.match(env.EPHEMERAL_SIGNAL_IMAGE, /^docker\.io\/library\/busybox:[\d.]+@sha256:[0-9a-f]{64}$/);
    const off = find(await render('hahaha', NS), 'Deployment').spec.template.spec.containers[0].env as any[];
    assert.ok(!off.some((e) => e.name === 'EPHEMERAL_SIGNAL_IMAGE'));
    await assert.rejects(render('hahaha', NS, { ephemeralSignal: { enabled: true, image: 'busybox:latest' } }), /does not match pattern/);
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
    assert.equal(env.DRY_RUN, 'false');
    const dry = find(await render('hahaha', NS, { dryRun: true }), 'Deployment');
    assert.ok((dry.spec.template.spec.containers[0].env as any[]).some((e) => e.name === 'DRY_RUN' && e.value === 'true'));
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

/** The env of the Deployment's container as name → value. */
function envOf(objects: K8sObject[]): Record<string, string | undefined> {
  return Object.fromEntries((find(objects, 'Deployment').spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value]));
}

const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

describe('helm chart: the admission webhook', { skip }, () => {
  it('registers a webhook that can only help: Ignore on failure, no side effects, pods CREATE only, reinvoked after other injectors', async () => {
    const objects = await render('hahaha', NS, { webhook: { timeoutSeconds: 5 } });
    const mwc = find(objects, 'MutatingWebhookConfiguration');
    assert.equal(mwc.metadata.name, 'hahaha');
    assert.equal(mwc.metadata.namespace, undefined, 'cluster-scoped');
    assert.equal(mwc.webhooks.length, 1);
    const { clientConfig, namespaceSelector, objectSelector, ...webhook } = mwc.webhooks[0];
    assert.deepEqual(webhook, {
      name: 'native-sidecars.hahaha.nais.io',
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      matchPolicy: 'Equivalent',
      reinvocationPolicy: 'IfNeeded',
      timeoutSeconds: 5,
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
    });
    assert.deepEqual(clientConfig.service, { name: 'hahaha-webhook', namespace: NS, path: '/mutate-v1-pod', port: 443 });
    assert.equal(clientConfig.url, undefined);
    assert.deepEqual(objectSelector, { matchLabels: { 'nais.io/naisjob': 'true' } }, 'the watch selector');
    assert.deepEqual(namespaceSelector, {
      matchExpressions: [
        { key: 'hahaha.nais.io/native-sidecars', operator: 'NotIn', values: ['false'] },
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
      ],
    });
    assert.equal(mwc.metadata.annotations, undefined, 'no cert-manager annotation');
    assert.equal(find(await render('hahaha', NS), 'MutatingWebhookConfiguration').webhooks[0].timeoutSeconds, 3, 'default timeout');
  });

  it("serves it through a Service on 443 to the pods' webhook port, with the certificate mounted read-only", async () => {
    const objects = await render('hahaha', NS, { webhook: { port: 10443 } });
    const svc = find(objects, 'Service', '-webhook');
    assert.equal(svc.metadata.name, 'hahaha-webhook');
    assert.deepEqual(svc.spec.ports, [{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
    const dep = find(objects, 'Deployment');
    assert.deepEqual(svc.spec.selector, dep.spec.selector.matchLabels, 'selects the hahaha pods');
    const c = dep.spec.template.spec.containers[0];
    assert.deepEqual(
      c.ports.find((p: any) => p.name === 'webhook'),
      { name: 'webhook', containerPort: 10443, protocol: 'TCP' },
    );
    const env = envOf(objects);
    assert.equal(env.WEBHOOK_ENABLED, 'true');
    assert.equal(env.WEBHOOK_PORT, '10443');
    const certDir = '/tmp/k8s-webhook-server/serving-certs';
    assert.equal(env.WEBHOOK_CERT_DIR, certDir);
    assert.deepEqual(
      c.volumeMounts.find((m: any) => m.mountPath === certDir),
      { name: 'webhook-tls', mountPath: certDir, readOnly: true },
    );
    assert.deepEqual(
      dep.spec.template.spec.volumes.find((v: any) => v.name === 'webhook-tls'),
      { name: 'webhook-tls', secret: { secretName: 'hahaha-webhook-tls' } },
    );
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  });

  it('without cert-manager, carries a helm-generated CA and a certificate for the Service in a TLS Secret, and that CA as caBundle', async () => {
    const objects = await render('hahaha', NS);
    const secret = find(objects, 'Secret');
    assert.equal(secret.metadata.name, 'hahaha-webhook-tls');
    assert.equal(secret.type, 'kubernetes.io/tls');
    assert.deepEqual(Object.keys(secret.data).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    const ca = new X509Certificate(pem(secret.data['ca.crt']));
    const cert = new X509Certificate(pem(secret.data['tls.crt']));
    assert.ok(ca.ca, 'ca.crt is a CA');
    assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'tls.crt is signed by ca.crt');
    const dns = ['hahaha-webhook', `hahaha-webhook.${NS}`, `hahaha-webhook.${NS}.svc`, `hahaha-webhook.${NS}.svc.cluster.local`];
    for (const name of dns) assert.ok(cert.checkHost(name), `tls.crt is valid for ${name} (${cert.subjectAltName})`);
    assert.match(pem(secret.data['tls.key']), /PRIVATE KEY/);
    const years = (Date.parse(cert.validTo) - Date.now()) / (365 * 86_400_000);
    assert.ok(years > 9.9 && years < 10.1, `valid for 10 years (validTo ${cert.validTo})`);
    assert.ok(Date.parse(secret.metadata.annotations?.['hahaha.nais.io/webhook-cert-not-after'] ?? '') > Date.now(), 'the Secret records when it expires');
    assert.equal(find(objects, 'MutatingWebhookConfiguration').webhooks[0].clientConfig.caBundle, secret.data['ca.crt']);
    // helm template cannot look the Secret up: each render is a new CA (why GitOps needs cert-manager).
    const again = find(await render('hahaha', NS), 'Secret');
    assert.notEqual(again.data['ca.crt'], secret.data['ca.crt']);
  });

  it('with cert-manager, has a Certificate write that Secret and cert-manager inject the CA, with its own selfSigned Issuer or the one given', async () => {
    const objects = await render('hahaha', NS, { webhook: { certManager: { enabled: true } } });
    assert.ok(!objects.some((o) => o.kind === 'Secret'), 'no chart-made Secret');
    const mwc = find(objects, 'MutatingWebhookConfiguration');
    assert.equal(mwc.webhooks[0].clientConfig.caBundle, undefined);
    assert.deepEqual(mwc.metadata.annotations, { 'cert-manager.io/inject-ca-from': `${NS}/hahaha-webhook` });
    const issuer = find(objects, 'Issuer');
    assert.equal(issuer.apiVersion, 'cert-manager.io/v1');
    assert.deepEqual(issuer.spec, { selfSigned: {} });
    const certificate = find(objects, 'Certificate');
    assert.equal(certificate.apiVersion, 'cert-manager.io/v1');
    assert.deepEqual([certificate.metadata.name, certificate.metadata.namespace], ['hahaha-webhook', NS]);
    assert.equal(certificate.spec.secretName, 'hahaha-webhook-tls', 'the Secret the pods mount');
    assert.deepEqual(certificate.spec.dnsNames, [
      'hahaha-webhook',
      `hahaha-webhook.${NS}`,
      `hahaha-webhook.${NS}.svc`,
      `hahaha-webhook.${NS}.svc.cluster.local`,
    ]);
    assert.deepEqual(certificate.spec.issuerRef, { name: issuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' });
    assert.equal(envOf(objects).WEBHOOK_ENABLED, 'true');

    const given = await render('hahaha', NS, { webhook: { certManager: { enabled: true, issuerRef: { name: 'corp-ca', kind: 'ClusterIssuer' } } } });
    assert.ok(!given.some((o) => o.kind === 'Issuer'), "no Issuer of the chart's own");
    assert.deepEqual(find(given, 'Certificate').spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    await assert.rejects(
      helm(['template', 'hahaha', CHART, '--set-json', 'webhook.certManager.issuerRef={"kind":"ClusterIssuer"}']),
      /name/,
      'an issuerRef needs a name',
    );
  });

  it('with webhook.enabled=false, renders no webhook object and tells hahaha so', async () => {
    const objects = await render('hahaha', NS, { webhook: { enabled: false, certManager: { enabled: true } } });
    for (const kind of ['MutatingWebhookConfiguration', 'Secret', 'Certificate', 'Issuer']) assert.ok(!objects.some((o) => o.kind === kind), kind);
    assert.deepEqual(
      objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name),
      ['hahaha-metrics'],
    );
    const env = envOf(objects);
    assert.equal(env.WEBHOOK_ENABLED, 'false');
    assert.equal(env.WEBHOOK_PORT, undefined);
    const pod = find(objects, 'Deployment').spec.template.spec;
    assert.deepEqual(
      pod.containers[0].ports.map((p: any) => p.name),
      ['metrics'],
    );
    assert.ok(!pod.volumes.some((v: any) => v.name === 'webhook-tls'));
  });

  it('derives the objectSelector from the equality-based forms of watch.selector', async () => {
    const cases: [string, unknown][] = [
      ['nais.io/naisjob=true', { matchLabels: { 'nais.io/naisjob': 'true' } }],
      ['team==a', { matchLabels: { team: 'a' } }],
      [
        ' a=1 , b==2,c!=3, example.com/d ,!e',
        {
          matchLabels: { a: '1', b: '2' },
          matchExpressions: [
            { key: 'c', operator: 'NotIn', values: ['3'] },
            { key: 'example.com/d', operator: 'Exists' },
            { key: 'e', operator: 'DoesNotExist' },
          ],
        },
      ],
      ['x=', { matchLabels: { x: '' } }],
    ];
    for (const [selector, expected] of cases) {
      const mwc = find(await render('hahaha', NS, { watch: { selector } }), 'MutatingWebhookConfiguration');
      assert.deepEqual(mwc.webhooks[0].objectSelector, expected, selector);
    }
  });

  it('refuses a set-based watch.selector unless webhook.objectSelector is given, and then uses that as is', async () => {
    for (const selector of ['env in (prod,dev)', 'env notin (dev)', 'a=1,env in (prod)', 'a=b=c', 'a=1,', 'x>1']) {
      await assert.rejects(
        helm(['template', 'hahaha', CHART, '--set-json', `watch.selector=${JSON.stringify(selector)}`]),
        /cannot be turned into the webhook's objectSelector .*set webhook.objectSelector/,
        selector,
      );
    }
    const objectSelector = { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] };
    const objects = await render('hahaha', NS, { watch: { selector: 'env in (prod,dev)' }, webhook: { objectSelector } });
    assert.deepEqual(find(objects, 'MutatingWebhookConfiguration').webhooks[0].objectSelector, objectSelector);
    assert.equal(envOf(objects).WATCH_SELECTOR, 'env in (prod,dev)');
    const off = await render('hahaha', NS, { watch: { selector: 'env in (prod,dev)' }, ...WEBHOOK_OFF });
    assert.ok(!off.some((o) => o.kind === 'MutatingWebhookConfiguration'), 'no objectSelector needed with the webhook off');
  });

  it('limits the namespaceSelector to watch.namespaces when set, and takes a given one instead of the default', async () => {
    const scoped = find(await render('hahaha', NS, { watch: { namespaces: ['team-a', 'team-b'] } }), 'MutatingWebhookConfiguration');
    assert.deepEqual(scoped.webhooks[0].namespaceSelector.matchExpressions, [
      { key: 'hahaha.nais.io/native-sidecars', operator: 'NotIn', values: ['false'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NS] },
      { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a', 'team-b'] },
    ]);
    const inKubeSystem = find(await render('hahaha', 'kube-system'), 'MutatingWebhookConfiguration');
    assert.deepEqual(inKubeSystem.webhooks[0].namespaceSelector.matchExpressions[1].values, ['kube-system']);
    const namespaceSelector = { matchLabels: { 'native-sidecars': 'yes' } };
    const given = find(await render('hahaha', NS, { webhook: { namespaceSelector } }), 'MutatingWebhookConfiguration');
    assert.deepEqual(given.webhooks[0].namespaceSelector, namespaceSelector);
  });

  it('grants no extra permission for the webhook', async () => {
    for (const values of [{}, WEBHOOK_OFF, { webhook: { certManager: { enabled: true } } }]) {
      const objects = await render('hahaha', NS, values);
      assert.deepEqual(flattenRules(find(objects, 'ClusterRole').rules), CLUSTER_RULES, JSON.stringify(values));
      assert.equal(find(objects, 'Role').rules.length, 2, JSON.stringify(values));
    }
  });
});

const KUBECTL = `${BUILT.K8S_BIN}/kubectl`;
const clusterSkip =
  skip ??
  missing(KUBECTL, 'kubectl', 'run cluster/scripts/build.sh k8s') ??
  missing(KUBECONFIG, "the local cluster's kubeconfig", 'start it with cluster/scripts/up.sh (or set HAHAHA_KUBECONFIG)');

/**
 * A release in a throwaway namespace whose webhook can affect no other test: its objectSelector
 * is a label no other pod carries, and its pods are never scheduled (a nodeSelector no node has),
 * so nothing of it runs; its objects are real, though, down to the cluster-scoped ones.
 */
describe('helm chart: the webhook on the local cluster', { skip: clusterSkip }, () => {
  const id = randomBytes(4).toString('hex');
  const ns = `chart-e2e-${id}`;
  const release = `chart-e2e-${id}`;
  const fullname = `${release}-hahaha`; // the release name does not contain the chart's
  const values = {
    watch: { selector: `hahaha-chart-test/${id}=x` },
    nodeSelector: { [`hahaha-chart-test/${id}`]: 'no-such-node' },
  };
  const kubectl = (args: string[], input?: string) => kubectlRun(args, input === undefined ? {} : { input });
  let installed = false;

  before(async () => {
    await kubectl(['create', 'namespace', ns]);
  });

  after(async () => {
    if (installed) await helmOnCluster(['uninstall', release, '--namespace', ns, '--wait=false']).catch((err: unknown) => console.error(String(err)));
    // In case the install got half-way: the cluster-scoped objects must never outlive the test.
    for (const [kind, name] of [
      ['mutatingwebhookconfiguration', fullname],
      ['clusterrolebinding', fullname],
      ['clusterrole', fullname],
    ] as const) {
      await kubectl(['delete', kind, name, '--ignore-not-found', '--wait=false']).catch((err: unknown) => console.error(String(err)));
    }
    await kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']).catch((err: unknown) => console.error(String(err)));
  });

  it('the API server accepts the webhook objects and the Deployment (server-side dry-run)', async () => {
    const variants: Record<string, unknown>[] = [
      values,
      { ...values, watch: { selector: `a=1,b==2,c!=3,hahaha-chart-test/${id},!e`, namespaces: ['team-a'] }, webhook: { timeoutSeconds: 10, port: 10443 } },
    ];
    for (const v of variants) {
      const objects = await render(release, ns, v);
      const wanted = objects.filter((o) => ['MutatingWebhookConfiguration', 'Service', 'Secret', 'Deployment'].includes(o.kind));
      assert.deepEqual(wanted.map((o) => o.kind).sort(), ['Deployment', 'MutatingWebhookConfiguration', 'Secret', 'Service', 'Service']);
      const out = await kubectl(
        ['apply', '--server-side', '--field-manager=hahaha-chart-e2e', '--dry-run=server', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: wanted }),
      );
      const lines = out.stdout.trim().split('\n');
      assert.equal(lines.length, wanted.length, out.stdout);
      assert.ok(
        lines.every((l) => l.endsWith('(server dry run)')),
        out.stdout,
      );
      assert.doesNotMatch(out.stderr, /warning/i, out.stderr);
    }
  });

  it('keeps the generated certificate and caBundle across helm upgrade, and renews them near expiry', async () => {
    const sets = setJson(values);
    await helmOnCluster(['install', release, CHART, '--namespace', ns, ...sets]);
    installed = true;
    const read = async () => {
      const secret = JSON.parse((await kubectl(['get', 'secret', `${fullname}-webhook-tls`, '-n', ns, '-o', 'json'])).stdout);
      const mwc = JSON.parse((await kubectl(['get', 'mutatingwebhookconfiguration', fullname, '-o', 'json'])).stdout);
      return {
        secret,
        mwc,
        crt: secret.data['tls.crt'] as string,
        ca: secret.data['ca.crt'] as string,
        caBundle: mwc.webhooks[0].clientConfig.caBundle as string,
      };
    };
    const first = await read();
    assert.equal(first.caBundle, first.ca, "the MWC trusts the Secret's CA");
    assert.deepEqual(first.mwc.webhooks[0].objectSelector, { matchLabels: { [`hahaha-chart-test/${id}`]: 'x' } });
    assert.equal(first.mwc.webhooks[0].failurePolicy, 'Ignore');

    // A real change (logLevel), so that helm does apply the templates again.
    await helmOnCluster(['upgrade', release, CHART, '--namespace', ns, ...sets, '--set', 'logLevel=debug']);
    const second = await read();
    assert.equal(second.crt, first.crt, 'tls.crt unchanged by the upgrade');
    assert.equal(second.secret.data['tls.key'], first.secret.data['tls.key'], 'tls.key unchanged by the upgrade');
    assert.equal(second.caBundle, first.caBundle, 'caBundle unchanged by the upgrade');
    const dep = JSON.parse((await kubectl(['get', 'deployment', fullname, '-n', ns, '-o', 'json'])).stdout);
    assert.ok(
      (dep.spec.template.spec.containers[0].env as any[]).some((e) => e.name === 'LOG_LEVEL' && e.value === 'debug'),
      'the upgrade was applied',
    );

    // A certificate inside its renewal window (here: 1 day left) is replaced by the next upgrade.
    const soon = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await kubectl(['annotate', 'secret', `${fullname}-webhook-tls`, '-n', ns, '--overwrite', `hahaha.nais.io/webhook-cert-not-after=${soon}`]);
    // kubectl now owns that annotation; helm's server-side apply takes it back.
    await helmOnCluster(['upgrade', release, CHART, '--namespace', ns, ...sets, '--set', 'logLevel=debug', '--force-conflicts']);
    const third = await read();
    assert.notEqual(third.crt, first.crt, 'tls.crt renewed');
    assert.notEqual(third.ca, first.ca, 'CA renewed');
    assert.equal(third.caBundle, third.ca, 'the MWC trusts the new CA');
    assert.ok(Date.parse(third.secret.metadata.annotations['hahaha.nais.io/webhook-cert-not-after']) > Date.now() + 365 * 86_400_000);
  });

  it('helm uninstall removes the MutatingWebhookConfiguration', async () => {
    if (!installed) return;
    await helmOnCluster(['uninstall', release, '--namespace', ns, '--wait']);
    installed = false;
    const left = (await kubectl(['get', 'mutatingwebhookconfiguration', fullname, '--ignore-not-found', '-o', 'name'])).stdout.trim();
    assert.equal(left, '');
  });
});
