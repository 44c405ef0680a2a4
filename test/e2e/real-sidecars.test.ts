/**
 * Stopping sidecars as they really are: the real Cloud SQL Auth Proxy v2.27.0 and v1.38.5,
 * configmap-reload v0.12.0 and istio's pilot-agent (1.31, with a look-alike Envoy: Envoy does not
 * build here) (built from the Go module proxy), in images the node runs as strictly
 * as the real ones (distroless-named images get a root with only their entrypoint: no shell, no
 * kill). Each row
 * asserts the sidecar's exit code and the Job's final condition, and is written to
 * $RUN/outcomes.json; `node scripts/outcome-table.mjs` turns that into the README's table.
 * The pods opt out of the native conversion: this is what the reaper does on its own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startHahaha } from '../unit/chart-assets.ts';
import { CLUSTER_RULES } from './chart-helm.ts';
import {
  apply,
  BUILT,
  type ContainerSpec,
  containerState,
  eventually,
  getPod,
  jobPod,
  type KubeEvent,
  kubectl,
  kubectlJson,
  main,
  naisjob,
  namespace,
  RUN,
  rbacInEffect,
  reportedEvents,
  testNamespace,
  tokenKubeconfig,
} from './harness.ts';
import { assertShutdownRequests } from './shutdown-requests.ts';

const CSQL_ARGS = ['--token=fake', '--sqladmin-api-endpoint=http://127.0.0.1:1', '--port', '5432', 'proj:region:inst'];
const CSQL_ALPINE = 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-alpine';
const CSQL_DISTROLESS = 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0';
const CMR_IMAGE = 'ghcr.io/jimmidyson/configmap-reload:v0.12.0';
/** The v1 proxy (binary cloud_sql_proxy, v1.38.5) as older injectors add it, without Google credentials. */
const CSQL_V1_ARGS = ['-instances=proj:region:inst=tcp:5432', '-token=fake', '-host=http://127.0.0.1:1/', '-skip_failed_instance_config'];
const CSQL_V1_ALPINE = 'gcr.io/cloudsql-docker/gce-proxy:1.38.5-alpine';
const CSQL_V1_DISTROLESS = 'gcr.io/cloudsql-docker/gce-proxy:1.38.5';
/** istio's proxyv2 image (Ubuntu-based: a shell, so the node's host profile) with pilot-agent 1.31. */
const ISTIO_IMAGE = 'docker.io/istio/proxyv2:1.31-dev';

interface Row {
  sidecar: string;
  image: string;
  flags: string;
  attempt: string;
  exitCode: number | string;
  job: string;
  seconds: number | string;
}
const rows: Row[] = [];
after(() => {
  const file = `${RUN}/outcomes.json`;
  let earlier: Row[] = [];
  try {
    earlier = JSON.parse(readFileSync(file, 'utf8')) as Row[];
  } catch {
    // first writer
  }
  writeFileSync(file, `${JSON.stringify([...earlier, ...rows], null, 2)}\n`);
});

/** Waits for the Job's final condition, or `hangsAfterMs` of still running. */
async function finish(ns: string, job: string, hangsAfterMs?: number): Promise<{ job: string; at?: number }> {
  const deadline = hangsAfterMs === undefined ? undefined : Date.now() + hangsAfterMs;
  return eventually(
    `job ${ns}/${job} to finish`,
    async () => {
      const j = await kubectlJson(['get', 'job', job, '-n', ns]);
      const c = (j.status?.conditions ?? []).find((x: any) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True');
      if (c !== undefined) return { job: c.type as string, at: Date.parse(c.lastTransitionTime) };
      if (deadline !== undefined && Date.now() > deadline) return { job: 'Running (hangs)' };
      return undefined;
    },
    120_000,
    500,
  );
}

/** Runs one Job, waits for its end, asserts, and records the row. */
async function outcome(
  ns: string,
  job: string,
  sc: ContainerSpec & { image: string },
  expect: {
    attempt: RegExp | string;
    exitCode?: number;
    job: string;
    flags: string;
    hangsAfterMs?: number;
    noShutdownAnnotations?: boolean;
    /** Let the webhook convert it: the kubelet (the node) stops it, hahaha posts no Killing event. */
    native?: boolean;
  },
): Promise<{ events: { type: string; reason: string; message: string }[]; pod: string }> {
  const j = naisjob(ns, job, {
    containers: [main(job, 'sleep 2'), sc],
    ...(expect.noShutdownAnnotations === true && { shutdownAnnotations: false }),
    ...(expect.native === true && { nativeConversion: true }),
  });
  if (sc.name === 'secure-logs-configmap-reload') withConfigVolume(j);
  await apply(j);
  const pod = await jobPod(ns, job);
  await eventually('the main container to end', async () => containerState(await getPod(ns, pod.metadata.name), job)?.terminated);
  const end = await finish(ns, job, expect.hangsAfterMs);
  const final = await getPod(ns, pod.metadata.name);
  const mainEnd = Date.parse(containerState(final, job).terminated.finishedAt);
  const native = (final.status.initContainerStatuses ?? []).find((x: any) => x.name === sc.name)?.state;
  const exit = (native ?? containerState(final, sc.name))?.terminated?.exitCode;
  // The Job's condition may come before hahaha's event of the stop that finished it.
  const reason = expect.native === true ? 'NativeSidecars' : 'Killing';
  const events = await reportedEvents(ns, pod.metadata.name, (list) => list.some((e) => e.reason === reason));
  const stop = events.find((e) => e.reason === reason);
  const unstoppable = stop?.type === 'Warning' && stop.message.startsWith('Unsuccessfully');
  const attempt =
    expect.native === true
      ? 'native sidecar: SIGTERM from the kubelet'
      : stop === undefined
        ? '(none)'
        : unstoppable
          ? `none applies (${/does not apply: ([^;(]+)/.exec(stop.message)?.[1]?.trim() ?? 'see event'})`
          : (/\((exec [^,]+|http [^,]+)/.exec(stop.message)?.[1] ?? stop.message);
  rows.push({
    sidecar: `${sc.name}${sc.command[0] === 'fake-sidecar' ? ' (look-alike)' : ''}`,
    image: sc.image,
    flags: expect.flags,
    attempt,
    exitCode: exit ?? 'running',
    job: end.job,
    seconds: end.at === undefined ? '-' : Math.max(0, (end.at - mainEnd) / 1000),
  });
  assert.equal(end.job, expect.job, JSON.stringify(events));
  if (expect.exitCode !== undefined) assert.equal(exit, expect.exitCode, "the sidecar's exit code");
  if (typeof expect.attempt === 'string') assert.ok(stop?.message.includes(expect.attempt), JSON.stringify(events));
  else assert.match(stop?.message ?? '', expect.attempt);
  if (end.job.startsWith('Running')) await kubectl(['delete', 'job', job, '-n', ns, '--wait=false']);
  return { events, pod: pod.metadata.name };
}

const csql = (image: string, ...flags: string[]) => ({ name: 'cloud-sql-proxy', image, command: ['cloud-sql-proxy', ...CSQL_ARGS, ...flags] });
const csqlV1 = (image: string) => ({ name: 'cloudsql-proxy', image, command: ['cloud_sql_proxy', ...CSQL_V1_ARGS] });

describe('real sidecar programs, stopped by the reaper', { concurrency: true }, () => {
  const ns = testNamespace('e2e-real');

  it('cloud-sql-proxy --quitquitquit: POST :9091/quitquitquit, exit 0, Complete', async () => {
    await outcome(ns.name, 'csql-qqq', csql(CSQL_ALPINE, '--quitquitquit'), {
      flags: '--quitquitquit',
      attempt: 'http POST :9091/quitquitquit, exit code 0',
      exitCode: 0,
      job: 'Complete',
    });
  });

  it('cloud-sql-proxy --quitquitquit --admin-port 9092: the endpoint on 9092, exit 0, Complete', async () => {
    await outcome(ns.name, 'csql-port', csql(CSQL_DISTROLESS, '--quitquitquit', '--admin-port', '9092'), {
      flags: '--quitquitquit --admin-port 9092',
      attempt: 'http POST :9092/quitquitquit, exit code 0',
      exitCode: 0,
      job: 'Complete',
    });
  });

  it('cloud-sql-proxy --quitquitquit --min-sigterm-delay=12s (alpine image): waited for past the 10 s window, asked once, exit 0, Complete', async () => {
    // It answers 200 at once and exits 12 s later. Before exitDelayFrom, hahaha called the ask
    // ignored after its 10 s window and sent kill -s INT 1 (measured: a Warning "did not terminate
    // within 10s" and the stop credited to the signal, which the proxy, already shutting down,
    // absorbed: exit 0).
    const { events } = await outcome(ns.name, 'csql-linger', csql(CSQL_ALPINE, '--quitquitquit', '--min-sigterm-delay=12s'), {
      flags: '--quitquitquit --min-sigterm-delay=12s',
      attempt: 'http POST :9091/quitquitquit, exit code 0',
      exitCode: 0,
      job: 'Complete',
    });
    assert.deepEqual(
      events.filter((e) => e.reason === 'Killing').map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container cloud-sql-proxy (http POST :9091/quitquitquit, exit code 0)'],
    );
  });

  it('cloud-sql-proxy without flags (alpine image): kill -s INT 1, exit 130, Failed', async () => {
    await outcome(ns.name, 'csql-int', csql(CSQL_ALPINE), { flags: '(none)', attempt: 'exec /bin/kill -s INT 1, exit code 130', exitCode: 130, job: 'Failed' });
  });

  it('cloud-sql-proxy --exit-zero-on-sigterm (alpine image): kill -s TERM 1, exit 0, Complete', async () => {
    await outcome(ns.name, 'csql-term', csql(CSQL_ALPINE, '--exit-zero-on-sigterm'), {
      flags: '--exit-zero-on-sigterm',
      attempt: 'exec /bin/kill -s TERM 1, exit code 0',
      exitCode: 0,
      job: 'Complete',
    });
  });

  it('cloud-sql-proxy without flags in its distroless image: nothing applies, a Warning says why, the Job hangs', async () => {
    const { pod } = await outcome(ns.name, 'csql-none', csql(CSQL_DISTROLESS), {
      flags: '(none)',
      attempt: /does not apply: .*not started with --quitquitquit.*does not apply: image gcr.io\/cloud-sql-connectors\/cloud-sql-proxy:2.27.0 is distroless/,
      job: 'Running (hangs)',
      hangsAfterMs: 8000,
    });
    const preflight = (e: KubeEvent) => e.reason === 'SidecarPreflight' && /will hang the Job/.test(e.message);
    const events = await reportedEvents(ns.name, pod, (list) => list.some(preflight));
    assert.ok(events.some(preflight), `predicted at pod start: ${JSON.stringify(events)}`);
  });

  it('cloud-sql-proxy v1 (gce-proxy, alpine image): its own entry, kill -s TERM 1, exit 0, Complete; predicted so at pod start', async () => {
    const { events } = await outcome(ns.name, 'csql1-term', csqlV1(CSQL_V1_ALPINE), {
      flags: 'v1 (none)',
      attempt: 'exec /bin/kill -s TERM 1, exit code 0',
      exitCode: 0,
      job: 'Complete',
    });
    assert.ok(!events.some((e) => e.reason === 'SidecarPreflight'), 'no warning at pod start: it will complete');
  });

  it('cloud-sql-proxy v1 in its distroless image: nothing applies, a Warning says why, the Job hangs', async () => {
    await outcome(ns.name, 'csql1-none', csqlV1(CSQL_V1_DISTROLESS), {
      flags: 'v1 (none)',
      attempt: /does not apply: image gcr.io\/cloudsql-docker\/gce-proxy:1.38.5 is distroless/,
      job: 'Running (hangs)',
      hangsAfterMs: 6000,
    });
  });

  it('istio-proxy, the real pilot-agent (Envoy a look-alike): POST :15020/quitquitquit, asked once, Envoy killed, exit 0, Complete', async () => {
    // pilot-agent starts without istiod when told to trust the system CAs (it retries the CA in
    // the background), writes Envoy's config under its working directory and starts `envoy` from
    // PATH: fake-sidecar by that name, serving Envoy's admin port 15000.
    const dir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-istio-'));
    try {
      const sc = {
        name: 'istio-proxy',
        image: ISTIO_IMAGE,
        command: ['pilot-agent', 'proxy', 'sidecar', '--templateFile', join(BUILT.PILOT_AGENT_BIN as string, '..', 'share', 'envoy_bootstrap_tmpl.json')],
        env: { PROXY_CONFIG: '{"binaryPath":"envoy"}', CA_ROOT_CA: 'SYSTEM', XDS_ROOT_CA: 'SYSTEM' },
        workingDir: dir,
      };
      await outcome(ns.name, 'istio-real', sc, {
        flags: 'pilot-agent 1.31 (Envoy a look-alike)',
        attempt: 'http POST :15020/quitquitquit, exit code 0',
        exitCode: 0,
        job: 'Complete',
      });
      const pod = await jobPod(ns.name, 'istio-real');
      const log = await kubectl(['logs', '-n', ns.name, pod.metadata.name, '-c', 'istio-proxy']);
      assert.equal((log.match(/handling \/quitquitquit, notifying pilot-agent to exit/g) ?? []).length, 1, log);
      // Its Envoy was killed by pilot-agent, never asked: hahaha did not go on to :15000.
      await assertShutdownRequests(ns.name, pod.metadata.name, 'istio-proxy', []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a linkerd proxy (distroless) without proxy-admin-shutdown: a Warning names the annotation, no exec is tried', async () => {
    const { events } = await outcome(
      ns.name,
      'l5d-off',
      { name: 'linkerd-proxy', image: 'cr.l5d.io/linkerd/proxy:edge-25.11.1', command: ['fake-sidecar', 'linkerd', '--shutdown-disabled'] },
      {
        flags: '(no annotation)',
        attempt: /no annotation config.linkerd.io\/proxy-admin-shutdown: enabled/,
        job: 'Running (hangs)',
        hangsAfterMs: 6000,
        noShutdownAnnotations: true,
      },
    );
    assert.ok(!events.some((e) => /exec \//.test(e.message)), 'no exec attempt that cannot work');
  });

  it('configmap-reload in its distroless image: killall cannot run there, a Warning says so, the Job hangs', async () => {
    await outcome(ns.name, 'cmr-off', cmr(), {
      flags: '(ephemeral off)',
      attempt: /is distroless \(no \/bin\/killall\)/,
      job: 'Running (hangs)',
      hangsAfterMs: 6000,
    });
  });
});

/** configmap-reload watches /config, an emptyDir (a distroless root has no host directories). */
function withConfigVolume(job: ReturnType<typeof naisjob>): void {
  const spec = job.spec.template.spec as any;
  spec.volumes = [{ name: 'config', emptyDir: {} }];
  for (const c of spec.containers) if (c.name === 'secure-logs-configmap-reload') c.volumeMounts = [{ name: 'config', mountPath: '/config' }];
}

/** The real configmap-reload in its distroless-named image, watching an emptyDir. */
function cmr(): ContainerSpec & { image: string } {
  return {
    name: 'secure-logs-configmap-reload',
    image: CMR_IMAGE,
    command: ['configmap-reload', '--volume-dir=/config', '--webhook-url=http://127.0.0.1:9999/-/reload', '--web.listen-address=127.0.0.1:9533'],
  };
}

describe('the same programs made native sidecars by the webhook', { concurrency: true }, () => {
  const ns = testNamespace('e2e-real-native');

  it('cloud-sql-proxy without flags in its distroless image: stopped by the kubelet, exit 143 does not count, Complete', async () => {
    await outcome(ns.name, 'csql-native', csql(CSQL_DISTROLESS), {
      flags: '(none), converted',
      attempt: /^Converted sidecar cloud-sql-proxy/,
      exitCode: 143,
      job: 'Complete',
      native: true,
    });
  });

  it('cloud-sql-proxy v1 in its distroless image: stopped by the kubelet, exit 0, Complete', async () => {
    await outcome(ns.name, 'csql1-native', csqlV1(CSQL_V1_DISTROLESS), {
      flags: 'v1 (none), converted',
      attempt: /^Converted sidecar cloudsql-proxy/,
      exitCode: 0,
      job: 'Complete',
      native: true,
    });
  });

  it('configmap-reload in its distroless image: stopped by the kubelet, exit 2 does not count, Complete', async () => {
    await outcome(ns.name, 'cmr-native', cmr(), {
      flags: 'converted',
      attempt: /^Converted sidecar secure-logs-configmap-reload/,
      exitCode: 2,
      job: 'Complete',
      native: true,
    });
  });
});

describe('ephemeral-container signals (ephemeralSignal enabled)', () => {
  it('configmap-reload in its distroless image: killall runs in an ephemeral container and stops it (exit 2: Failed)', async (t) => {
    const { ns, cleanup } = await namespace('e2e-ephemeral');
    const id = randomUUID().slice(0, 8);
    const role = `e2e-ephemeral-${id}`;
    const dir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-ephemeral-'));
    t.after(async () => {
      await kubectl(['delete', 'clusterrole,clusterrolebinding', role, '--ignore-not-found']);
      rmSync(dir, { recursive: true, force: true });
      await cleanup();
    });
    // The chart's ClusterRole with ephemeralSignal.enabled: its rules plus patch on pods/ephemeralcontainers.
    const rules = [...CLUSTER_RULES, 'core|pods/ephemeralcontainers|patch'].map((r) => {
      const [group, resource, verb] = r.split('|');
      return { apiGroups: [group === 'core' ? '' : group], resources: [resource], verbs: [verb] };
    });
    await apply([
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'reaper', namespace: ns } },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: role }, rules },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: role },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: 'reaper', namespace: ns }],
      },
    ]);
    const kubeconfig = await tokenKubeconfig(ns, 'reaper', dir);
    await rbacInEffect(kubeconfig, 'patch', 'pods/ephemeralcontainers');
    const hahaha = await startHahaha({
      KUBECONFIG: kubeconfig,
      LEADER_ELECT: 'false',
      WATCH_SELECTOR: `e2e-ephemeral=${id}`,
      EPHEMERAL_SIGNAL_IMAGE: 'docker.io/library/busybox:1.37.0@sha256:bdf57e528e45e4433820e045b29b4597825a1c9e38353532d90a01445013f82e',
    });
    t.after(() => hahaha.stop());
    const job = naisjob(ns, 'cmr-eph', { labels: { 'e2e-ephemeral': id, 'nais.io/naisjob': 'false' }, containers: [main('cmr-eph', 'sleep 2'), cmr()] });
    withConfigVolume(job);
    await apply(job);
    const pod = await jobPod(ns, 'cmr-eph');
    await eventually('the main container to end', async () => containerState(await getPod(ns, pod.metadata.name), 'cmr-eph')?.terminated);
    const end = await finish(ns, 'cmr-eph');
    const final = await getPod(ns, pod.metadata.name);
    const mainEnd = Date.parse(containerState(final, 'cmr-eph').terminated.finishedAt);
    const eph = (final.spec.ephemeralContainers ?? [])[0];
    assert.ok(eph, 'an ephemeral container was added');
    assert.equal(eph.targetContainerName, 'secure-logs-configmap-reload');
    assert.deepEqual(eph.command, ['/bin/killall', 'configmap-reload']);
    const exit = containerState(final, 'secure-logs-configmap-reload')?.terminated?.exitCode;
    assert.equal(exit, 2, 'configmap-reload exits 2 on any signal');
    assert.equal(end.job, 'Failed', 'as measured: only a native sidecar completes');
    const ephemeral = (e: KubeEvent) => /in ephemeral container hahaha-signal-[0-9a-f]{6}/.test(e.message);
    const events = await reportedEvents(ns, pod.metadata.name, (list) => list.some(ephemeral));
    assert.ok(events.some(ephemeral), JSON.stringify(events));
    rows.push({
      sidecar: 'secure-logs-configmap-reload',
      image: CMR_IMAGE,
      flags: '(ephemeral on)',
      attempt: 'exec /bin/killall configmap-reload in an ephemeral container',
      exitCode: exit,
      job: end.job,
      seconds: end.at === undefined ? '-' : Math.max(0, ((end.at as number) - mainEnd) / 1000),
    });
  });
});
