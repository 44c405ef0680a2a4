/**
 * The native sidecar conversion, end to end: the suite's hahaha serves the admission webhook,
 * registered with the API server from the chart's MutatingWebhookConfiguration (url client
 * config, see scripts/hahaha-up.sh). Each case states the outcome with and without conversion
 * where the difference is the point, and asserts the Job's final condition.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  apply,
  BUILT,
  type ContainerSpec,
  containerState,
  eventually,
  getPod,
  HAHAHA,
  hahahaEvents,
  jobPod,
  killingEvents,
  kubectl,
  kubectlJson,
  main,
  metricsText,
  metricValue,
  naisjob,
  namespace,
  ownHahaha,
  RUN,
  sidecar,
  testNamespace,
  waitJobComplete,
} from './harness.ts';

const ANNOTATION = 'hahaha.nais.io/native-sidecars';
const CERTS = `${RUN}/webhook-certs`;

/** The real configmap-reload, as the secure-logs-configmap-reload sidecar. */
function configmapReload(): ContainerSpec {
  const dir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-native-cm-'));
  return {
    name: 'secure-logs-configmap-reload',
    command: ['configmap-reload', `--volume-dir=${dir}`, '--webhook-url=http://127.0.0.1:9999/-/reload', '--web.listen-address=127.0.0.1:9533'],
  };
}

/** Cloud SQL Auth Proxy v2 without --quitquitquit: signals are its only stop (130/143). */
function cloudSqlProxy(): ContainerSpec {
  if (existsSync(`${BUILT.CLOUD_SQL_PROXY_BIN ?? '/nonexistent'}/cloud-sql-proxy`)) {
    return {
      name: 'cloud-sql-proxy',
      command: ['cloud-sql-proxy', '--token=fake', '--sqladmin-api-endpoint=http://127.0.0.1:1', '--port', '5432', 'proj:region:inst'],
    };
  }
  return sidecar('cloud-sql-proxy', 'cloudsql');
}

/** Polls the Job until it is Complete or Failed; returns which. */
async function jobOutcome(ns: string, job: string, timeoutMs = 90_000): Promise<'Complete' | 'Failed'> {
  return eventually(
    `job ${ns}/${job} to finish`,
    async () => {
      const j = await kubectlJson(['get', 'job', job, '-n', ns]);
      const c = (j.status?.conditions ?? []).find((x: any) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True');
      return c?.type;
    },
    timeoutMs,
  );
}

function initContainer(pod: any, name: string): any {
  return (pod.spec.initContainers ?? []).find((c: any) => c.name === name);
}

function initState(pod: any, name: string): any {
  return (pod.status?.initContainerStatuses ?? []).find((s: any) => s.name === name)?.state;
}

/** Asserts that `names` were converted: native init containers, annotated, no longer regular. */
function assertConverted(pod: any, names: string[]): void {
  assert.equal(pod.metadata.annotations?.[ANNOTATION], names.join(','), 'the annotation names the converted sidecars');
  for (const name of names) {
    assert.equal(initContainer(pod, name)?.restartPolicy, 'Always', `${name} is a native sidecar`);
    assert.ok(!pod.spec.containers.some((c: any) => c.name === name), `${name} left spec.containers`);
  }
}

describe('native sidecar conversion at admission', { concurrency: true }, () => {
  const ns = testNamespace('e2e-native');

  it('the real configmap-reload: converted, the Job completes; reaped instead (opted out), it fails', async () => {
    await apply([
      naisjob(ns.name, 'cm-native', { nativeConversion: true, containers: [main('cm-native', 'sleep 2'), configmapReload()] }),
      naisjob(ns.name, 'cm-reaped', { containers: [main('cm-reaped', 'sleep 2'), configmapReload()] }),
    ]);
    const pod = await jobPod(ns.name, 'cm-native');
    assertConverted(pod, ['secure-logs-configmap-reload']);
    assert.equal(await jobOutcome(ns.name, 'cm-native'), 'Complete');
    const final = await getPod(ns.name, pod.metadata.name);
    assert.equal(final.status.phase, 'Succeeded');
    // Stopped by the kubelet (the node) with SIGTERM: configmap-reload exits 2, which no longer matters.
    assert.equal(initState(final, 'secure-logs-configmap-reload')?.terminated?.exitCode, 2);
    const events = await hahahaEvents(ns.name, pod.metadata.name);
    assert.deepEqual(
      events.map((e) => `${e.type} ${e.reason}`),
      ['Normal NativeSidecars'],
      'one NativeSidecars event and no Killing: nothing was reaped',
    );
    assert.match(events[0]?.message ?? '', /^Converted sidecar secure-logs-configmap-reload to native sidecar at admission/);
    const described = await kubectl(['describe', 'pod', pod.metadata.name, '-n', ns.name]);
    assert.match(described, /Normal\s+NativeSidecars\s+.*Converted sidecar secure-logs-configmap-reload/);

    // The same pod without the conversion: hahaha's stop (killall) makes it exit 2 and the Job fails.
    const reaped = await jobPod(ns.name, 'cm-reaped');
    assert.equal(reaped.metadata.annotations?.[ANNOTATION], 'false');
    assert.ok(reaped.spec.containers.some((c: any) => c.name === 'secure-logs-configmap-reload'));
    assert.equal(await jobOutcome(ns.name, 'cm-reaped'), 'Failed');
  });

  it('a sidecar that ignores every signal: converted, SIGKILLed after the grace period, the Job completes', async () => {
    const job = 'deaf';
    // As PID 1 without handlers, sleep ignores SIGINT and SIGTERM: hahaha's `kill -s INT 1` would
    // never stop it. Only a SIGKILL from outside its PID namespace does, as a runtime sends it.
    await apply(naisjob(ns.name, job, { nativeConversion: true, containers: [main(job, 'sleep 1'), { name: 'vks-sidecar', command: ['sleep', '100000'] }] }));
    const pod = await jobPod(ns.name, job);
    assertConverted(pod, ['vks-sidecar']);
    assert.equal(await jobOutcome(ns.name, job), 'Complete');
    const final = await getPod(ns.name, pod.metadata.name);
    const mainEnd = Date.parse(containerState(final, job).terminated.finishedAt);
    const sidecar = initState(final, 'vks-sidecar')?.terminated;
    assert.equal(sidecar?.exitCode, 137, 'killed by SIGKILL');
    const waited = (Date.parse(sidecar.finishedAt) - mainEnd) / 1000;
    assert.ok(waited >= 4 && waited <= 8, `SIGKILL came ${waited}s after the main container ended (grace period 5s)`);
  });

  it('cloud-sql-proxy without --quitquitquit: converted, the Job completes (reaped, it would exit 130)', async () => {
    const job = 'csql';
    await apply(naisjob(ns.name, job, { nativeConversion: true, containers: [main(job, 'sleep 2'), cloudSqlProxy()] }));
    const pod = await jobPod(ns.name, job);
    assertConverted(pod, ['cloud-sql-proxy']);
    assert.equal(await jobOutcome(ns.name, job), 'Complete');
    const final = await getPod(ns.name, pod.metadata.name);
    assert.equal(initState(final, 'cloud-sql-proxy')?.terminated?.exitCode, 143, 'SIGTERM from the kubelet: 143, not deciding the phase');
    assert.equal(final.status.phase, 'Succeeded');
  });

  it('OnFailure: converted; the main container fails once, is restarted beside the running sidecar, the Job completes', async () => {
    const job = 'onfailure';
    const marker = join(tmpdir(), `hahaha-e2e-native-onfailure-${randomUUID()}`);
    // The second run lasts 5 s: the window in which the test must see the sidecar still running.
    const script = `if [ -e ${marker} ]; then sleep 5; exit 0; fi; touch ${marker}; sleep 1; exit 1`;
    try {
      await apply(
        naisjob(ns.name, job, {
          nativeConversion: true,
          restartPolicy: 'OnFailure',
          backoffLimit: 3,
          containers: [main(job, script), sidecar('cloud-sql-proxy', 'cloudsql')],
        }),
      );
      const pod = await jobPod(ns.name, job);
      assertConverted(pod, ['cloud-sql-proxy']);
      const restarted = await eventually('the main container restarted', async () => {
        const p = await getPod(ns.name, pod.metadata.name);
        const s = (p.status?.containerStatuses ?? []).find((c: any) => c.name === job);
        return s?.restartCount >= 1 ? p : undefined;
      });
      assert.ok(initState(restarted, 'cloud-sql-proxy')?.running, 'the sidecar keeps running across the retry');
      assert.equal(await jobOutcome(ns.name, job), 'Complete');
      const final = await getPod(ns.name, pod.metadata.name);
      const s = (final.status.initContainerStatuses ?? []).find((c: any) => c.name === 'cloud-sql-proxy');
      assert.equal(s.restartCount, 0, 'the sidecar was never restarted');
    } finally {
      rmSync(marker, { force: true });
    }
  });

  it('opted out by the pod annotation: not converted, reaped as before', async () => {
    const job = 'optout';
    await apply(naisjob(ns.name, job, { containers: [main(job, 'sleep 1'), sidecar('vks-sidecar', 'vks')] }));
    const pod = await jobPod(ns.name, job);
    assert.equal(pod.spec.initContainers, undefined);
    await waitJobComplete(ns.name, job);
    const events = await killingEvents(ns.name, pod.metadata.name);
    assert.ok(
      events.some((e) => e.type === 'Normal' && e.reason === 'Killing' && /vks-sidecar/.test(e.message)),
      JSON.stringify(events),
    );
  });

  it('reinvocation: a sidecar injected by a later webhook is converted too', async (t) => {
    const job = 'reinvoked';
    const id = randomUUID().slice(0, 8);
    // A tiny injector that adds secure-logs-fluentd, registered after hahaha's webhook (webhooks run
    // in name order), so that the API server calls hahaha's again (reinvocationPolicy IfNeeded).
    const calls: string[] = [];
    const injector = https.createServer({ cert: readFileSync(`${CERTS}/tls.crt`), key: readFileSync(`${CERTS}/tls.key`) }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const review = JSON.parse(body);
        const pod = review.request.object;
        const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c: any) => c.name);
        calls.push(all.join(','));
        const patch = all.includes('secure-logs-fluentd')
          ? []
          : [
              {
                op: 'add',
                path: '/spec/containers/-',
                value: { name: 'secure-logs-fluentd', image: 'example.invalid/fluentd:e2e', command: ['fake-sidecar', 'fluentd'] },
              },
            ];
        const response = {
          uid: review.request.uid,
          allowed: true,
          ...(patch.length > 0 && { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }),
        };
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
      });
    });
    await new Promise<void>((r) => injector.listen(0, '127.0.0.1', () => r()));
    const port = (injector.address() as { port: number }).port;
    const name = `zz-e2e-injector-${id}`;
    t.after(async () => {
      await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
      injector.close();
    });
    await apply({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name },
      webhooks: [
        {
          name: 'inject.e2e.hahaha.nais.io',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
          reinvocationPolicy: 'Never',
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          objectSelector: { matchLabels: { 'e2e-inject': id } },
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } },
          clientConfig: { url: `https://127.0.0.1:${port}/inject`, caBundle: readFileSync(`${RUN}/pki/ca.crt`).toString('base64') },
        },
      ],
    });
    await apply(
      naisjob(ns.name, job, { nativeConversion: true, labels: { 'e2e-inject': id }, containers: [main(job, 'sleep 2'), sidecar('vks-sidecar', 'vks')] }),
    );
    const pod = await jobPod(ns.name, job);
    assert.ok(calls.length >= 1, 'the injector was called');
    assertConverted(pod, ['vks-sidecar', 'secure-logs-fluentd']);
    assert.equal(await jobOutcome(ns.name, job), 'Complete');
  });
});

describe('native sidecar conversion: namespace opt-out, a webhook that is down, metrics', () => {
  it('a namespace labelled out is not converted; a stopped webhook blocks no pod; both are reaped', async (t) => {
    const { ns, cleanup } = await namespace('e2e-native-down');
    t.after(cleanup);
    await kubectl(['label', 'namespace', ns, `${ANNOTATION}=false`]);

    // A second hahaha serving the webhook, with only the chart ServiceAccount's token. The webhook
    // converts only pods its watch selector selects. While it runs it could also reap them, but
    // the only pod it sees alive has nothing left to reap (its sidecar is native).
    const webhookPort = 20_000 + Math.floor(Math.random() * 20_000);
    const { hahaha: second, id } = await ownHahaha(t, 'e2e-down', {
      WEBHOOK_ENABLED: 'true',
      WEBHOOK_HOST: '127.0.0.1',
      WEBHOOK_PORT: String(webhookPort),
      WEBHOOK_CERT_DIR: CERTS,
    });
    const name = `e2e-down-${id}`;
    t.after(() => kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']));
    // The suite's configuration as the chart renders it, pointed at the second hahaha and this namespace.
    const suite = await kubectlJson(['get', 'mutatingwebhookconfiguration', '-l', 'app.kubernetes.io/instance=hahaha']);
    const config = structuredClone(suite.items[0]);
    assert.ok(config, 'the suite registered its webhook configuration');
    config.metadata = { name };
    for (const w of config.webhooks) {
      w.clientConfig = { url: `https://127.0.0.1:${webhookPort}/mutate-v1-pod`, caBundle: w.clientConfig.caBundle };
      w.namespaceSelector = { matchLabels: { 'kubernetes.io/metadata.name': ns } };
      w.objectSelector = { matchLabels: { 'e2e-down': id } };
    }
    await apply(config);

    // While it runs, the second webhook converts (proof that it was live) ...
    await apply(
      naisjob(ns, 'live', { nativeConversion: true, labels: { 'e2e-down': id }, containers: [main('live', 'sleep 1'), sidecar('vks-sidecar', 'vks')] }),
    );
    assertConverted(await jobPod(ns, 'live'), ['vks-sidecar']);
    // ... and the suite's, which the namespace label opts out, does not.
    await apply(naisjob(ns, 'labelled', { nativeConversion: true, containers: [main('labelled', 'sleep 1'), sidecar('vks-sidecar', 'vks')] }));
    const labelled = await jobPod(ns, 'labelled');
    assert.equal(labelled.spec.initContainers, undefined, 'not converted in an opted-out namespace');

    // Stopped: the API server cannot reach it; failurePolicy Ignore creates the pod unchanged.
    assert.equal(await second.stop(), 0);
    const started = Date.now();
    await apply(
      naisjob(ns, 'down', { nativeConversion: true, labels: { 'e2e-down': id }, containers: [main('down', 'sleep 1'), sidecar('vks-sidecar', 'vks')] }),
    );
    const down = await jobPod(ns, 'down');
    assert.ok(Date.now() - started < 15_000, 'pod creation was not held up');
    assert.equal(down.spec.initContainers, undefined);

    // The reaper handles both unconverted pods as before.
    for (const [job, pod] of [
      ['labelled', labelled],
      ['down', down],
    ] as const) {
      await waitJobComplete(ns, job);
      const events = await killingEvents(ns, pod.metadata.name);
      assert.ok(
        events.some((e) => e.reason === 'Killing' && /vks-sidecar/.test(e.message)),
        JSON.stringify(events),
      );
    }
    await waitJobComplete(ns, 'live');
  });

  it('counts conversions and webhook requests', async () => {
    const text = await metricsText();
    assert.ok(metricValue(text, 'hahaha_webhook_requests_total', { outcome: 'converted' }) >= 1, 'converted requests counted');
    assert.ok(metricValue(text, 'hahaha_native_sidecar_conversions_total', { container: 'secure-logs-configmap-reload' }) >= 1);
    assert.ok(metricValue(text, 'hahaha_webhook_requests_total', { outcome: 'unchanged' }) >= 1, 'opted-out pods counted as unchanged');
    assert.ok(HAHAHA.HAHAHA_WEBHOOK_URL, 'the suite runs with the webhook on');
  });
});
