/**
 * Reconcile with fakes of the kube-facing interfaces: which attempts run, in what order, what
 * events and metrics come out. The fakes stop a "container" by upserting a terminated pod into
 * the cache, the way the watch would deliver it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { stopEventName } from '../../src/domain/handover.ts';
import { isMalformed, NATIVE_SIDECARS_ANNOTATION, type PodView, parsePod, podKey } from '../../src/domain/pod-view.ts';
import { ApiError } from '../../src/kube/kube-client.ts';
import { PodCache } from '../../src/pod-cache.ts';
import type { EventSink, ExecCall, ExecResult, Executor, HttpCall, HttpReply, PodEvent, PodReader, PodRef, PortForwarder } from '../../src/ports.ts';
import { exitClass, mayBeFailedBySidecar, Reconciler } from '../../src/reconcile/reconciler.ts';
import { ReportLag, reportLagMs } from '../../src/reconcile/report-lag.ts';
import { EventRecorder } from '../../src/record/event-recorder.ts';
import { Metrics } from '../../src/record/metrics.ts';
import { createRegistry } from '../../src/strategies/registry.ts';
import { cannotHaveStopped, causeOf } from '../../src/strategies/strategy.ts';
import {
  annotated,
  linkerdShutdown,
  type Mod,
  nativeSidecar,
  ownedByJob,
  PARSE,
  phase,
  rawPod,
  running,
  runningSince,
  T0,
  terminated,
  withApp,
} from './pod-fixtures.ts';

type Behaviour =
  | 'stop'
  | 'stop-130'
  | 'refuse'
  | 'api-lost'
  | 'api-down'
  | 'cut-off'
  | 'hang'
  | 'accept-only'
  | 'slow-exit'
  | 'refuse-late'
  | 'http-500'
  | 'http-404'
  | 'forbidden'
  | 'rbac-warming'
  | 'not-ready'
  | 'missing'
  | 'killed-137'
  | 'late-timeout'
  | 'no-sandbox';

class World {
  readonly cache = new PodCache();
  readonly calls: string[] = [];
  readonly events: PodEvent[] = [];
  readonly repeats: { name: string; count: number }[] = [];
  readonly metrics = new Metrics({ defaultMetrics: false });
  readonly behaviour = new Map<string, Behaviour>();
  failEventPosts = false;
  /** Fixed event names already taken on the fake API (a previous leader's posts). */
  readonly takenNames = new Set<string>();
  raw: Record<string, any>;
  private rv = 1;
  readonly reconciler: Reconciler;

  /** Ephemeral containers the fake API was asked to add: `image target command`. */
  readonly ephemerals: string[] = [];

  constructor(...mods: Mod[]) {
    // As the shipped catalog expects them: linkerd's shutdown endpoint on, cloud-sql-proxy started
    // with --quitquitquit (tests that want otherwise override it).
    this.raw = rawPod('job-1', withApp('job'), linkerdShutdown, terminated('job', 0, T0), ...mods);
    const csql = this.raw.spec.containers.find((c: { name: string }) => c.name === 'cloudsql-proxy');
    if (csql !== undefined && csql.args === undefined) csql.args = ['--quitquitquit'];
    this.publish();
    const self = this;
    const portForwarder: PortForwarder = {
      async request(_pod: PodRef, call: HttpCall): Promise<HttpReply> {
        return self.act(`http ${call.method} :${call.port}${call.path}`, `:${call.port}`, call.timeoutMs, call.signal);
      },
    };
    const executor: Executor = {
      async exec(_pod: PodRef, call: ExecCall): Promise<ExecResult> {
        const r = await self.act(`exec ${call.container} ${call.command.join(' ')}`, `${call.container}:exec`, call.timeoutMs, call.signal);
        if (r.status === 127 || r.status === 137) return { exitCode: r.status, stdout: '', stderr: r.body };
        return { exitCode: r.status === 200 ? 0 : 1, stdout: '', stderr: r.status === 200 ? '' : 'no such process' };
      },
    };
    const sink: EventSink = {
      async create(event) {
        if (self.failEventPosts) throw Object.assign(new Error('events is forbidden'), { status: 403 });
        if (event.name !== undefined && self.takenNames.has(event.name)) return { name: event.name, existed: true };
        if (event.name !== undefined) self.takenNames.add(event.name);
        self.events.push(event);
        return { name: `ev-${self.events.length}` };
      },
      async repeat(_ns, name, count) {
        self.repeats.push({ name, count });
      },
    };
    const log = pino({ level: 'silent' });
    this.makeReconciler = (ephemeralImage?: string, dryRun?: boolean, reader?: PodReader) =>
      new Reconciler({
        now: () => Date.now() + this.skewMs,
        outageMs: 400,
        ...(dryRun !== undefined && { dryRun }),
        ...(reader !== undefined && { reader }),
        store: this.cache,
        catalog: loadCatalog(DEFAULT_CATALOG_PATH),
        strategies: createRegistry({
          portForwarder,
          executor,
          ...(ephemeralImage !== undefined && {
            ephemeral: {
              image: ephemeralImage,
              runner: {
                start: async (_pod, spec) => {
                  self.ephemerals.push(`${spec.image} ${spec.targetContainerName} ${spec.command.join(' ')}`);
                  setTimeout(() => self.terminate(spec.targetContainerName, 0), 10);
                },
              },
            },
          }),
        }),
        events: new EventRecorder(sink, this.metrics, log),
        metrics: this.metrics,
        log,
        verifyTimeoutMs: this.verifyTimeoutMs,
      });
    this.reconciler = this.makeReconciler();
  }

  readonly makeReconciler: (ephemeralImage?: string, dryRun?: boolean, reader?: PodReader) => Reconciler;

  /** A reconciler that reads a pod that left the watch as the API has it now, and counts the reads. */
  countingReads(): { reconciler: Reconciler; reads: () => number } {
    let reads = 0;
    const reconciler = this.makeReconciler(undefined, undefined, {
      read: async () => {
        reads += 1;
        return this.current();
      },
    });
    return { reconciler, reads: () => reads };
  }
  /** Moves the reconciler's clock forward. */
  skewMs = 0;
  /** The verify window of reconcilers made from now on. */
  verifyTimeoutMs = 200;

  /** The pod as the API has it now. */
  current(): PodView {
    const p = parsePod(structuredClone(this.raw), PARSE);
    assert.ok(!isMalformed(p));
    return p as PodView;
  }

  get key(): string {
    return 'team/job-1';
  }

  /** Which container an HTTP port or exec belongs to, for the fakes. */
  private containerFor(target: string): string | undefined {
    const ports: Record<string, string> = {
      ':4191': 'linkerd-proxy',
      ':15020': 'istio-proxy',
      ':15000': 'istio-proxy',
      ':9091': 'cloudsql-proxy',
      ':24444': 'secure-logs-fluentd',
    };
    return ports[target] ?? target.split(':')[0];
  }

  private async act(call: string, target: string, timeoutMs: number, signal?: AbortSignal): Promise<HttpReply> {
    this.calls.push(call);
    const b = this.behaviour.get(call) ?? this.behaviour.get(target) ?? 'stop';
    const container = this.containerFor(target);
    switch (b) {
      case 'refuse':
        throw new Error('connection refused');
      case 'refuse-late':
        // Refused after a moment: the endpoint of a sidecar that is already going away.
        await sleep(150);
        throw new Error('connection refused');
      case 'api-lost':
        // The API server restarted mid-call (the kube adapters' wording).
        throw new Error('lost the connection to the API server (the WebSocket closed without a close frame)');
      case 'api-down':
        throw new Error('cannot reach the API server: connect ECONNREFUSED 10.0.0.1:443');
      case 'cut-off':
        throw new Error('exec stream closed without an exit status');
      case 'forbidden':
        throw new Error('API server refused the upgrade: HTTP 403: pods "job-1" is forbidden');
      case 'rbac-warming':
        // As a kube-apiserver answers right after its start, before its RBAC caches hold the
        // roles (the soak), and as the client reports it.
        throw new ApiError(
          403,
          JSON.stringify({
            kind: 'Status',
            message:
              'pods "job-1" is forbidden: User "system:serviceaccount:hahaha-system:hahaha" cannot get resource "pods/portforward" in API group "" in the namespace "team": RBAC: [clusterrole.rbac.authorization.k8s.io "system:basic-user" not found, clusterrole.rbac.authorization.k8s.io "hahaha" not found, clusterrole.rbac.authorization.k8s.io "system:discovery" not found]',
          }),
          'API server refused the upgrade: ',
          'RBAC has not loaded the ClusterRoles every cluster has',
        );
      case 'not-ready':
        // A plain 403 (RBAC's bindings not loaded yet) while /readyz fails, as the client reports it.
        throw new ApiError(
          403,
          '{"kind":"Status","message":"pods \\"job-1\\" is forbidden: User \\"u\\" cannot get resource \\"pods/portforward\\""}',
          'API server refused the upgrade: ',
          '/readyz answered HTTP 500',
        );
      case 'missing':
        return { status: 127, body: 'nsenter: failed to execute /bin/kill: No such file or directory' };
      case 'killed-137':
        // The kill process dies with the PID namespace when PID 1 exits; the API shows the
        // container terminated a little later.
        setTimeout(() => container && this.terminate(container, 0), 120);
        return { status: 137, body: '' };
      case 'http-404':
        return { status: 404, body: 'not found' };
      case 'http-500':
        return { status: 500, body: 'nope' };
      case 'hang':
        await sleep(timeoutMs, undefined, signal ? { signal } : {}).catch(() => {});
        throw new Error(`timed out after ${timeoutMs / 1000}s`);
      case 'late-timeout':
        // The answer is later than the attempt's timeout (a loaded API server or kubelet), but
        // the ask landed: the sidecar exits a second later.
        setTimeout(() => container && this.terminate(container, 0), 1000);
        throw new Error(`timed out after ${timeoutMs / 1000}s`);
      case 'no-sandbox':
        // The kubelet's answer for a pod whose containers have all exited (containerd's wording).
        throw new Error('error forwarding port 4191 to pod abc, uid : sandbox container is not running');
      case 'accept-only':
        return { status: 200, body: '' };
      case 'slow-exit':
        // Accepted, and the sidecar exits after the verify window (200 ms) has passed.
        setTimeout(() => container && this.terminate(container, 0), 300);
        return { status: 200, body: 'ok' };
      case 'stop':
      case 'stop-130':
        setTimeout(() => container && this.terminate(container, b === 'stop' ? 0 : 130), 10);
        return { status: 200, body: 'ok' };
    }
  }

  /** Applies fixture modifiers to the pod and delivers it, as a watch update would. */
  update(...mods: Mod[]): void {
    for (const m of mods) m(this.raw);
    this.publish();
  }

  terminate(container: string, exitCode: number): void {
    terminated(container, exitCode, T0 + 2000)(this.raw);
    this.publish();
  }

  private publish(): void {
    this.rv += 1;
    this.raw.metadata.resourceVersion = String(this.rv);
    const p = parsePod(structuredClone(this.raw), PARSE);
    assert.ok(!isMalformed(p));
    if (!isMalformed(p)) this.cache.upsert(p);
    assert.equal(podKey(this.raw.metadata), this.key);
  }

  /** The Killing events posted, as `type message`. */
  killing(): string[] {
    return this.events.filter((e) => e.reason === 'Killing').map((e) => `${e.type} ${e.message}`);
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await this.metrics.registry.getSingleMetric(name)?.get();
    return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
  }
}

/**
 * linkerd-proxy with LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=0s: no drain after its 200 (unset, the
 * catalog assumes the proxy's 2m default), for tests of the verify window itself.
 */
const noDrain: Mod = (p) => {
  const c = p.spec.containers.find((x: { name: string }) => x.name === 'linkerd-proxy');
  c.env = [...(c.env ?? []), { name: 'LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD', value: '0s' }];
};

/** The pod is done after one ask, reported as the stop: one Normal Killing event, no Warning. */
function stoppedByOneAsk(w: World, result: unknown, call: string): void {
  assert.deepEqual(result, { kind: 'done' });
  assert.deepEqual(w.calls, [call]);
  assert.deepEqual(
    w.events.filter((e) => e.reason === 'Killing').map((e) => e.type),
    ['Normal'],
  );
}

describe('reconcile', () => {
  it('shuts a sidecar down, verifies it, posts a Normal Killing event and counts it', async () => {
    const w = new World(running('linkerd-proxy'));
    const result = await w.reconciler.reconcile(w.key);
    assert.deepEqual(result, { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    assert.equal(w.events.length, 1);
    assert.equal(w.events[0]?.type, 'Normal');
    assert.equal(w.events[0]?.reason, 'Killing');
    assert.match(w.events[0]?.message ?? '', /^Shut down container linkerd-proxy \(http POST :4191\/shutdown, exit code 0\)$/);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'linkerd-proxy', job_name: 'job', namespace: 'team' }), 1);
    const latency = await w.metrics.registry.getSingleMetric('hahaha_sidecar_shutdown_latency_seconds')?.get();
    const sum = latency?.values.find((v) => (v as { metricName?: string }).metricName === 'hahaha_sidecar_shutdown_latency_seconds_sum');
    // The fixture's main container exited long ago (T0): the kubelet's time starts the clock.
    assert.ok((sum?.value ?? 0) > (Date.now() - T0) / 1000 - 5, `latency ${sum?.value}`);
  });

  it('is idempotent: a second reconcile of a reaped pod does nothing', async () => {
    const w = new World(running('linkerd-proxy'));
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    assert.equal(w.calls.length, 1);
    assert.equal(w.events.length, 1);
  });

  for (const [behaviour, error] of [
    ['api-lost', 'lost the connection to the API server'],
    ['api-down', 'cannot reach the API server: connect ECONNREFUSED'],
    ['rbac-warming', 'API server refused the upgrade: HTTP 403: .*"system:basic-user" not found.*\\(the API server is not ready yet: RBAC'],
    ['not-ready', 'API server refused the upgrade: HTTP 403: .* \\(the API server is not ready yet: /readyz answered HTTP 500\\)'],
  ] as const) {
    it(`does not fall back to the next attempt when the API server fails (${behaviour}): the pod is retried the same way, and no Warning says the sidecar failed`, async () => {
      const w = new World(running('cloudsql-proxy'));
      w.behaviour.set(':9091', behaviour);
      w.behaviour.set('cloudsql-proxy:exec', 'stop-130');
      const first = await w.reconciler.reconcile(w.key);
      assert.equal(first.kind, 'retry');
      assert.deepEqual(w.calls, ['http POST :9091/quitquitquit'], 'no kill -s INT 1 (exit 130 would fail the Job)');
      assert.equal(w.events.length, 0, 'an API server restart is not a failed shutdown');
      assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);

      w.behaviour.delete(':9091');
      assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
      assert.deepEqual(w.calls, ['http POST :9091/quitquitquit', 'http POST :9091/quitquitquit']);
      assert.deepEqual(
        w.events.map((e) => e.message),
        ['Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)'],
      );
    });

    it(`reports an API server failure (${behaviour}) that persists past the grace as a failed shutdown, with its hint`, async () => {
      const w = new World(running('cloudsql-proxy'));
      w.behaviour.set(':9091', behaviour);
      assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
      assert.equal(w.events.length, 0);
      w.skewMs = 31_000;
      assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
      assert.equal(w.events.length, 1);
      assert.match(w.events[0]?.message ?? '', new RegExp(`http POST :9091/quitquitquit: ${error}.*hint: the API server failed, not the sidecar`));
      assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns', { container: 'cloudsql-proxy' }), 1);
    });
  }

  it('an ask the API server could not carry (not connected, upgrade refused with 5xx or by RBAC still loading) is not waited on as if it had landed', async () => {
    for (const text of [
      'cannot reach the API server: connect ECONNREFUSED 10.0.0.1:443',
      'cannot reach the API server: getaddrinfo ENOTFOUND api.example',
      'API server refused the upgrade: HTTP 503: the server is shutting down',
      // Just started: RBAC has not loaded its caches (the client asked /readyz, or the reason
      // lists roles every cluster has as not found).
      new ApiError(403, 'pods "p" is forbidden', 'API server refused the upgrade: ', '/readyz answered HTTP 500').message,
      new ApiError(
        403,
        'pods "p" is forbidden: User "u" cannot create resource "pods/exec": RBAC: [clusterrole.rbac.authorization.k8s.io "system:public-info-viewer" not found]',
        'API server refused the upgrade: ',
        'RBAC has not loaded the ClusterRoles every cluster has',
      ).message,
    ]) {
      assert.equal(causeOf(new Error(text)), 'api-unreachable', text);
      assert.equal(cannotHaveStopped(causeOf(new Error(text))), true, text);
    }
    // RBAC's own answer (the client found /readyz answering 200), also when a binding names a
    // role that does not exist: forbidden.
    for (const text of [
      'API server refused the upgrade: HTTP 403: pods "p" is forbidden: User "u" cannot create resource "pods/exec" in API group "" in the namespace "team"',
      'API server refused the upgrade: HTTP 403: pods "p" is forbidden: User "u" cannot create resource "pods/exec": RBAC: [clusterrole.rbac.authorization.k8s.io "hahaha" not found]',
    ]) {
      assert.equal(causeOf(new Error(text)), 'forbidden', text);
    }
    for (const text of ['lost the connection to the API server (the WebSocket closed without a close frame)', 'cannot reach the API server: socket hang up']) {
      assert.equal(causeOf(new Error(text)), 'api-unavailable', text);
      assert.equal(cannotHaveStopped(causeOf(new Error(text))), false, text);
    }
  });

  it('an accepted ask whose exit the watch could not deliver (it was down) is verified once the watch is back: one ask, a Normal event', async () => {
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'accept-only');
    // The API server dies as the sidecar answers; its exit reaches the watch only after the
    // window (200 ms) has passed, when the watch is back.
    const run = w.reconciler.reconcile(w.key);
    w.cache.markStale('*');
    await sleep(300);
    w.cache.markCurrent('*');
    await sleep(50);
    w.terminate('linkerd-proxy', 0);
    assert.deepEqual(await run, { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    assert.deepEqual(
      w.events.map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)'],
    );
  });

  it('an accepted ask stays unverified, not failed, while the watch stays down: no next attempt, no Warning', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'accept-only');
    w.cache.markStale('*');
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit'], 'no kill -s INT 1: the first ask may have landed');
    assert.equal(w.events.length, 0);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
    // Back: the retry finds it stopped by that ask... or asks again the same way.
    w.cache.markCurrent('*');
    w.behaviour.delete(':9091');
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
  });

  it('an unverified ask that did stop the sidecar is reported as its stop by the retry, not as an exit of its own', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'accept-only');
    w.cache.markStale('*');
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    assert.equal(w.events.length, 0);
    // The proxy exited while the watch was down; the relist shows it terminated.
    w.terminate('cloudsql-proxy', 0);
    w.cache.markCurrent('*');
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit'], 'asked once');
    assert.deepEqual(w.killing(), ['Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)']);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'cloudsql-proxy' }), 1);
  });

  it('after an unverified ask, a retry waits for the watch and a window before asking again: not asked twice', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'accept-only');
    w.cache.markStale('*');
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    // The retry runs while the watch is still down: it asks nothing, and stays unverified.
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit']);
    // The next retry, as the watch comes back: the kubelet's report arrives within the window.
    const run = w.reconciler.reconcile(w.key);
    w.cache.markCurrent('*');
    await sleep(50);
    w.terminate('cloudsql-proxy', 0);
    assert.deepEqual(await run, { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit'], 'asked once');
    assert.deepEqual(w.killing(), ['Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)']);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'cloudsql-proxy' }), 1);
  });

  it('an unverified ask whose stop finished the pod is reported from the pod read after it left the watch', async () => {
    const w = new World(running('cloudsql-proxy'));
    const { reconciler, reads } = w.countingReads();
    w.behaviour.set(':9091', 'accept-only');
    w.cache.markStale('*');
    assert.equal((await reconciler.reconcile(w.key)).kind, 'retry');
    // The proxy exited, the pod succeeded, and the relist no longer has it.
    const before = w.current();
    terminated('cloudsql-proxy', 0, T0 + 2000)(w.raw);
    phase('Succeeded')(w.raw);
    w.cache.remove(w.key);
    w.cache.markCurrent('*');
    reconciler.left(before);
    await sleep(50);
    assert.equal(reads(), 1, 'one GET of the finished pod, shared with the count of how it ended');
    assert.deepEqual(w.killing(), ['Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)']);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'cloudsql-proxy' }), 1);
    // Gone for good: a later pod with the same containers owes nothing.
    reconciler.forget(before.uid);
    await sleep(20);
    assert.equal(w.events.filter((e) => e.reason === 'Killing').length, 1);
  });

  it('a watch that was up through the window is believed: an ignored ask is a failure at once', async () => {
    const w = new World(running('linkerd-proxy'), noDrain);
    w.behaviour.set(':4191', 'accept-only');
    w.cache.markStale('*');
    w.cache.markCurrent('*');
    await sleep(5);
    const started = Date.now();
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    assert.ok(Date.now() - started < 400, 'no wait for the watch');
    assert.match(w.events[0]?.message ?? '', /did not terminate within 0.2s/);
  });

  it('falls back to the next attempt when the first is refused (cloudsql: HTTP, then exec)', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'refuse');
    w.behaviour.set('cloudsql-proxy:exec', 'stop-130');
    const result = await w.reconciler.reconcile(w.key);
    assert.deepEqual(result, { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit', 'exec cloudsql-proxy /bin/kill -s INT 1']);
    assert.match(
      w.events.find((e) => e.type === 'Warning' && e.message.startsWith('Shut down'))?.message ?? '',
      /exec \/bin\/kill -s INT 1, exit code 130; a non-zero exit code fails the pod/,
    );
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'cloudsql-proxy' }), 1, "HAHAHA's counter is kept as it was");
    assert.equal(await w.metric('hahaha_stopped_sidecar_exits_total', { container: 'cloudsql-proxy', exit_class: 'signal' }), 1);
    assert.equal(await w.metric('hahaha_stopped_sidecar_exits_total', { exit_class: 'zero' }), 0);
  });

  it('counts a pod it saw running that then failed only because of a sidecar, once', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'refuse');
    w.behaviour.set('cloudsql-proxy:exec', 'stop-130');
    await w.reconciler.reconcile(w.key);
    w.update(phase('Failed'));
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    assert.equal(await w.metric('hahaha_pods_failed_by_sidecars_total', { namespace: 'team', job_name: 'job' }), 1);
  });

  it('does not count pods that were already finished when first seen, nor pods whose main container failed', async () => {
    const history = new World(terminated('cloudsql-proxy', 130), phase('Failed'));
    await history.reconciler.reconcile(history.key);
    assert.equal(await history.metric('hahaha_pods_failed_by_sidecars_total'), 0);
    const mainFailed = new World(running('vks-sidecar'));
    await mainFailed.reconciler.reconcile(mainFailed.key);
    mainFailed.update(terminated('job', 1), phase('Failed'));
    await mainFailed.reconciler.reconcile(mainFailed.key);
    assert.equal(await mainFailed.metric('hahaha_pods_failed_by_sidecars_total'), 0);
  });

  it('posts one NativeSidecars event for a pod the webhook converted, and reaps nothing', async () => {
    const w = new World(nativeSidecar('vks-sidecar'), nativeSidecar('daprd'), annotated(NATIVE_SIDECARS_ANNOTATION, 'vks-sidecar,daprd'));
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    assert.deepEqual(w.calls, []);
    assert.deepEqual(
      w.events.map((e) => `${e.type} ${e.reason} ${e.message}`),
      [
        "Normal NativeSidecars Converted sidecars vks-sidecar, daprd to native sidecars at admission: the kubelet stops them after the main container, and their exit codes do not decide the pod's phase",
      ],
    );
    // A restarted process or a new leader (a new reconciler, same API) does not say it again.
    await w.makeReconciler().reconcile(w.key);
    assert.equal(w.events.length, 1);
  });

  it('mayBeFailedBySidecar: only a regular sidecar not seen exiting 0 can fail a pod whose main containers exited 0', () => {
    const cases: [string, Mod[], boolean][] = [
      ['a running regular sidecar', [running('linkerd-proxy')], true],
      ['a regular sidecar that exited non-zero', [terminated('cloudsql-proxy', 130)], true],
      ['a regular sidecar that exited 0 (it stays so)', [terminated('linkerd-proxy', 0)], false],
      ['sidecars made native at admission', [nativeSidecar('vks-sidecar'), nativeSidecar('daprd')], false],
      ['no sidecar at all', [], false],
      ['no main container to judge by', [running('linkerd-proxy'), withApp('gone')], false],
    ];
    for (const [name, mods, expected] of cases) {
      const pod = parsePod(rawPod('job-1', withApp('job'), terminated('job', 0, T0), ...mods), PARSE);
      assert.ok(!isMalformed(pod), name);
      assert.equal(mayBeFailedBySidecar(pod), expected, name);
    }
  });

  it('a converted pod that finished is not read from the API: no sidecar of it can have failed it', async () => {
    const w = new World(nativeSidecar('vks-sidecar'), annotated(NATIVE_SIDECARS_ANNOTATION, 'vks-sidecar'));
    const converted = w.countingReads();
    await converted.reconciler.reconcile(w.key);
    const before = w.current();
    phase('Succeeded')(w.raw);
    w.cache.remove(w.key);
    converted.reconciler.left(before);
    await sleep(20);
    assert.equal(converted.reads(), 0);
    // A pod that left with a regular sidecar still running is read once, and counted.
    const v = new World(running('job'), running('cloudsql-proxy'));
    const regular = v.countingReads();
    await regular.reconciler.reconcile(v.key);
    const seen = v.current();
    v.update(terminated('job', 0, T0), terminated('cloudsql-proxy', 1, T0 + 2000), phase('Failed'));
    v.cache.remove(v.key);
    regular.reconciler.left(seen);
    await sleep(20);
    assert.equal(regular.reads(), 1);
    assert.equal(await v.metric('hahaha_pods_failed_by_sidecars_total', { namespace: 'team', job_name: 'job' }), 1);
  });

  it('permanent failures (404, missing binary, forbidden the second time) are reported once and not retried with backoff', async () => {
    const w = new World(running('linkerd-proxy'), running('vks-sidecar'), running('daprd'));
    w.behaviour.set(':4191', 'http-404');
    w.behaviour.set('vks-sidecar:exec', 'missing');
    w.behaviour.set(':3500', 'forbidden');
    const first = await w.reconciler.reconcile(w.key);
    // A first 403 may be an API server that has just restarted: asked again with backoff.
    assert.equal(first.kind, 'retry');
    const warnings = w.events
      .filter((e) => e.type === 'Warning')
      .map((e) => e.message)
      .sort();
    assert.equal(warnings.length, 3);
    assert.match(
      warnings[0] ?? '',
      /daprd: http POST :3500\/v1.0\/shutdown: API server refused the upgrade: HTTP 403.*\(hint: hahaha's ServiceAccount may not use pods\/portforward/,
    );
    assert.match(warnings[1] ?? '', /linkerd-proxy: http POST :4191\/shutdown: HTTP 404.*\(hint: linkerd's shutdown endpoint is off by default/);
    assert.match(
      warnings[2] ?? '',
      /vks-sidecar: exec \/bin\/kill -s INT 1: command exited with code 127.*\(hint: \/bin\/kill is not in the image \(distroless\?\)/,
    );
    // The second 403 confirms it: permanent, its Warning repeated once.
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'permanent');
    assert.equal(w.events.length, 3);
    assert.equal(w.repeats.length, 1);
    // The slow recheck finds the same: no new Warning, no new count.
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'permanent');
    assert.equal(w.events.length, 3);
    assert.equal(w.repeats.length, 1);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 4);
  });

  it('a refused connection goes on to the next attempt at once, without the settle wait', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'refuse');
    const started = Date.now();
    await w.reconciler.reconcile(w.key);
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit', 'exec cloudsql-proxy /bin/kill -s INT 1']);
    assert.ok(Date.now() - started < 300, `took ${Date.now() - started} ms`);
  });

  it('a stop found after an ask that cannot have landed is credited to the earlier accepted ask that was slower than the window', async () => {
    const w = new World(running('istio-proxy'));
    w.behaviour.set(':15020', 'slow-exit');
    w.behaviour.set(':15000', 'refuse-late');
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :15020/quitquitquit', 'http POST :15000/quitquitquit']);
    assert.deepEqual(
      w.events.map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container istio-proxy (http POST :15020/quitquitquit, exit code 0)'],
    );
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'istio-proxy' }), 1);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
  });

  it('a sidecar configured to linger once asked (cloud-sql-proxy --min-sigterm-delay) is waited for: asked once, no SIGINT', async () => {
    const lingering: Mod = (p) => {
      const c = p.spec.containers.find((x: { name: string }) => x.name === 'cloudsql-proxy');
      c.args = ['--quitquitquit', '--min-sigterm-delay=0.3s'];
    };
    const w = new World(running('cloudsql-proxy'), lingering);
    w.behaviour.set(':9091', 'slow-exit');
    w.behaviour.set('cloudsql-proxy:exec', 'stop-130');
    // The first window (200 ms) passes with the proxy still running: its exit is awaited without
    // a worker, until its window and delay are over (500 ms), and the run ends.
    const first = await w.reconciler.reconcile(w.key);
    assert.equal(first.kind, 'later');
    assert.ok(first.kind === 'later' && first.afterMs > 200 && first.afterMs <= 400, JSON.stringify(first));
    assert.equal(w.events.length, 0);
    // The watch update of its exit runs the pod again.
    await sleep(150);
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit']);
    assert.deepEqual(
      w.events.map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)'],
    );
  });

  it('a linkerd proxy with a shutdown grace period (LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD) is waited for that long after its 200: asked once, one Normal', async () => {
    const graced: Mod = (p) => {
      const c = p.spec.containers.find((x: { name: string }) => x.name === 'linkerd-proxy');
      c.env = [{ name: 'LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD', value: '300ms' }];
    };
    const w = new World(running('linkerd-proxy'), graced);
    // The 200 comes at once; the exit after the 200 ms window, within the grace period.
    w.behaviour.set(':4191', 'slow-exit');
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'later');
    await sleep(150);
    stoppedByOneAsk(w, await w.reconciler.reconcile(w.key), 'http POST :4191/shutdown');
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
  });

  it("a linkerd proxy without LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD drains up to the proxy's 2m default: no Warning, no worker held, its exit is the ask's stop", async () => {
    // Measured with linkerd2-proxy: without its identity it answers 200 and closes its admin port
    // at once, then exits only when its grace period (2 minutes unless set) is over.
    const w = new World(ownedByJob('job'), running('linkerd-proxy'));
    w.behaviour.set(':4191', 'accept-only');
    const started = Date.now();
    const first = await w.reconciler.reconcile(w.key);
    assert.ok(Date.now() - started < 1000, 'the run ends after the first window');
    assert.equal(first.kind, 'later');
    assert.ok(first.kind === 'later' && first.afterMs > 119_000 && first.afterMs <= 120_300, JSON.stringify(first));
    assert.equal(w.events.length, 0);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
    // Any run before the drain is over asks nothing.
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'later');
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    // It exits: the watch update runs the pod again, and the stop is the ask's.
    w.terminate('linkerd-proxy', 0);
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    assert.deepEqual(w.killing(), ['Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)']);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'linkerd-proxy' }), 1);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
    // The Job's event, once, when the stop is known.
    assert.deepEqual(
      w.events.filter((e) => e.regarding !== undefined).map((e) => `${e.type} ${e.reason} ${e.message.replace(/in \d+\.\d s/, 'in N s')}`),
      ['Normal SidecarsShutDown Shut down 1 sidecar of pod job-1 in N s (linkerd-proxy)'],
    );
  });

  it('an unverified ask to a sidecar that drains first: once the watch is back and it still runs, its drain is awaited, not asked again', async () => {
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'accept-only');
    w.cache.markStale('*');
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    w.cache.markCurrent('*');
    const started = Date.now();
    const next = await w.reconciler.reconcile(w.key);
    assert.equal(next.kind, 'later');
    assert.ok(Date.now() - started < 1000, 'one usual window, not the whole drain, in the worker');
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    assert.equal(w.events.length, 0);
    w.terminate('linkerd-proxy', 0);
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown'], 'asked once');
    assert.deepEqual(w.killing(), ['Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)']);
  });

  it('a cut-off answer from a sidecar that drains first is awaited like an accepted one; past its drain, the Warning says so', async () => {
    const w = new World(running('cloudsql-proxy'), (p) => {
      const c = p.spec.containers.find((x: { name: string }) => x.name === 'cloudsql-proxy');
      c.args = ['--quitquitquit', '--min-sigterm-delay=100ms'];
    });
    w.behaviour.set(':9091', 'cut-off');
    w.behaviour.set('cloudsql-proxy:exec', 'stop');
    const first = await w.reconciler.reconcile(w.key);
    assert.equal(first.kind, 'later');
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit']);
    await sleep(first.kind === 'later' ? first.afterMs : 0);
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit', 'exec cloudsql-proxy /bin/kill -s INT 1']);
    assert.match(
      w.killing().join('\n'),
      /^Warning Unsuccessfully shut down container cloudsql-proxy: http POST :9091\/quitquitquit: answered, cut off \(exec stream closed without an exit status\) but the container did not terminate within 0\.3s .*\(then stopped by exec \/bin\/kill -s INT 1\)/,
    );
  });

  it('a draining sidecar whose exit finished the pod is reported from the pod read after it left the watch', async () => {
    const w = new World(running('linkerd-proxy'));
    const { reconciler, reads } = w.countingReads();
    w.behaviour.set(':4191', 'accept-only');
    assert.equal((await reconciler.reconcile(w.key)).kind, 'later');
    // The proxy exited, the pod succeeded and left the watch (status.phase=Running).
    const before = w.current();
    terminated('linkerd-proxy', 0, T0 + 2000)(w.raw);
    phase('Succeeded')(w.raw);
    w.cache.remove(w.key);
    reconciler.left(before);
    await sleep(50);
    assert.equal(reads(), 1);
    assert.deepEqual(w.killing(), ['Normal Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)']);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'linkerd-proxy' }), 1);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
    // Its latency by the kubelet's clock: the main container ended at T0, the proxy 2 s later.
    const h = (await w.metrics.registry.getSingleMetric('hahaha_sidecar_shutdown_latency_seconds')?.get())?.values ?? [];
    const sum = h.find((v) => (v as { metricName?: string }).metricName === 'hahaha_sidecar_shutdown_latency_seconds_sum')?.value;
    assert.equal(sum, 2);
  });

  it('a lingering sidecar that outstays its delay is reported with the whole wait', async () => {
    const w = new World(running('linkerd-proxy'), running('cloudsql-proxy'), (p) => {
      const c = p.spec.containers.find((x: { name: string }) => x.name === 'cloudsql-proxy');
      c.args = ['--quitquitquit', '--min-sigterm-delay=100ms'];
    });
    w.behaviour.set(':9091', 'accept-only');
    w.behaviour.set('cloudsql-proxy:exec', 'accept-only');
    const first = await w.reconciler.reconcile(w.key);
    assert.equal(first.kind, 'later');
    assert.deepEqual(w.calls.sort(), ['http POST :4191/shutdown', 'http POST :9091/quitquitquit']);
    // Before its delay is over, a run asks nothing.
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'later');
    assert.equal(w.calls.length, 2);
    // Once it is over (the recheck), the ask is ignored and the next attempt runs at once; the
    // delay applies to the signal as well, so that is awaited the same way.
    await sleep(first.kind === 'later' ? first.afterMs : 0);
    const second = await w.reconciler.reconcile(w.key);
    assert.equal(second.kind, 'later');
    assert.deepEqual(w.calls.slice(2), ['exec cloudsql-proxy /bin/kill -s INT 1']);
    assert.deepEqual(
      w.events.filter((e) => e.type === 'Warning'),
      [],
      'no Warning while an attempt is awaited',
    );
    await sleep(second.kind === 'later' ? second.afterMs : 0);
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'retry');
    assert.equal(w.calls.length, 3, 'nothing asked twice');
    assert.match(
      w.events.find((e) => e.type === 'Warning')?.message ?? '',
      /http POST :9091\/quitquitquit: accepted \(HTTP 200\) but the container did not terminate within 0.3s \(0.2s, plus its --min-sigterm-delay=100ms\); exec \/bin\/kill -s INT 1: accepted \(exit code 0\) but the container did not terminate within 0.3s/,
    );
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns', { container: 'cloudsql-proxy' }), 1);
  });

  it('a sidecar found stopped after the only ask was refused exited on its own: no Killing event, not counted as a stop', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'refuse-late');
    setTimeout(() => w.terminate('cloudsql-proxy', 0), 50);
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit']);
    assert.deepEqual(
      w.events.filter((e) => e.reason === 'Killing'),
      [],
    );
    assert.equal(await w.metric('hahaha_sidecar_shutdowns'), 0);
  });

  it('a sidecar that started a moment ago and refuses is asked again the same way until it listens, not signalled', async () => {
    const w = new World(runningSince('cloudsql-proxy', Date.now()));
    w.behaviour.set(':9091', 'refuse');
    setTimeout(() => w.behaviour.delete(':9091'), 600);
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.ok(w.calls.length >= 2, w.calls.join(', '));
    assert.ok(
      w.calls.every((c) => c === 'http POST :9091/quitquitquit'),
      w.calls.join(', '),
    );
    assert.deepEqual(
      w.events.map((e) => `${e.type} ${e.message}`),
      ['Normal Shut down container cloudsql-proxy (http POST :9091/quitquitquit, exit code 0)'],
    );
  });

  it('a sidecar still refusing once it has had time to start goes on to the next attempt', async () => {
    const w = new World(runningSince('cloudsql-proxy', Date.now() - 9_000));
    w.behaviour.set(':9091', 'refuse');
    w.behaviour.set('cloudsql-proxy:exec', 'stop-130');
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.equal(w.calls.at(-1), 'exec cloudsql-proxy /bin/kill -s INT 1');
    assert.ok(w.calls.length >= 2 && w.calls.length <= 8 && w.calls[0] === 'http POST :9091/quitquitquit', w.calls.join(', '));
  });

  it("names a stop's event after the pod, container and restart count, so that no replica posts it twice", async () => {
    const w = new World(running('linkerd-proxy'));
    await w.reconciler.reconcile(w.key);
    assert.equal(w.events.length, 1);
    assert.equal(w.events[0]?.name, stopEventName(w.current(), 'linkerd-proxy', 0));
  });

  describe('after a hand-over', () => {
    /** The window reaches back to the fixtures' clock (T0): the stop happened "just before" now. */
    const handover = (w: World) => w.reconciler.beginHandover(Date.now(), Date.now() - T0 + 60_000, 200);

    it('reports a sidecar the previous leader stopped without reporting it, once, before acting on the rest', async () => {
      const w = new World(terminated('linkerd-proxy', 0, T0 + 1500), running('secure-logs-fluentd'));
      handover(w);
      assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
      await w.reconciler.reconcile(w.key);
      const killing = w.events.map((e) => `${e.type} ${e.message}`);
      assert.deepEqual(killing, [
        'Normal Shut down container linkerd-proxy (exit code 0; stopped around a hahaha leader change, reported by the next leader)',
        'Normal Shut down container secure-logs-fluentd (http GET :24444/api/processes.killWorkers, exit code 0)',
      ]);
      assert.equal(w.events[0]?.name, stopEventName(w.current(), 'linkerd-proxy', 0));
      assert.deepEqual(w.calls, ['http GET :24444/api/processes.killWorkers'], 'the stopped sidecar is not asked again');
      assert.equal(await w.metric('hahaha_handover_reported_stops_total'), 1);
      assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'linkerd-proxy' }), 1);
    });

    it('posts nothing and counts nothing when the previous leader did post it', async () => {
      const w = new World(terminated('linkerd-proxy', 0, T0 + 1500), phase('Succeeded'));
      w.takenNames.add(stopEventName(w.current(), 'linkerd-proxy', 0));
      handover(w);
      await w.reconciler.reportHandover(w.current());
      assert.equal(w.events.length, 0);
      assert.equal(await w.metric('hahaha_handover_reported_stops_total'), 0);
      assert.equal(await w.metric('hahaha_sidecar_shutdowns'), 0);
    });

    it('reports a finished pod passed to it, with a Warning for a non-zero exit', async () => {
      const w = new World(terminated('cloudsql-proxy', 130, T0 + 1500), phase('Failed'));
      handover(w);
      await w.reconciler.reportHandover(w.current());
      await w.reconciler.reportHandover(w.current());
      assert.deepEqual(
        w.events.map((e) => `${e.type} ${e.message}`),
        ['Warning Shut down container cloudsql-proxy (exit code 130; stopped around a hahaha leader change, reported by the next leader)'],
      );
    });

    it('without a hand-over, a sidecar found terminated exited on its own: no event', async () => {
      const w = new World(terminated('linkerd-proxy', 0, T0 + 1500), phase('Succeeded'));
      await w.reconciler.reportHandover(w.current());
      const running = new World(terminated('linkerd-proxy', 0, T0 + 1500), runningSince('secure-logs-fluentd', T0));
      await running.reconciler.reconcile(running.key);
      assert.equal(w.events.length, 0);
      assert.deepEqual(
        running.events.map((e) => e.message),
        ['Shut down container secure-logs-fluentd (http GET :24444/api/processes.killWorkers, exit code 0)'],
      );
    });
  });

  it('a signal the sidecar ignores is a transient failure with its own hint', async () => {
    const w = new World(running('vks-sidecar'));
    w.behaviour.set('vks-sidecar:exec', 'accept-only');
    const result = await w.reconciler.reconcile(w.key);
    assert.equal(result.kind, 'retry');
    assert.match(w.events[0]?.message ?? '', /\(hint: the sidecar accepted the signal but kept running: it ignores it/);
  });

  it('an exec killed with 137 while the sidecar stops is a success: asked once, no second attempt', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'refuse');
    w.behaviour.set('cloudsql-proxy:exec', 'killed-137');
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :9091/quitquitquit', 'exec cloudsql-proxy /bin/kill -s INT 1']);
    assert.match(w.events.find((e) => e.message.startsWith('Shut down'))?.message ?? '', /exec \/bin\/kill -s INT 1, exit code 0/);
  });

  it('a command missing from a distroless image runs in an ephemeral container when enabled', async () => {
    const w = new World(running('vks-sidecar'));
    w.behaviour.set('vks-sidecar:exec', 'missing');
    const reconciler = w.makeReconciler('busybox@sha256:abc');
    assert.deepEqual(await reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.ephemerals, ['busybox@sha256:abc vks-sidecar /bin/kill -s INT 1']);
    assert.match(
      w.events.find((e) => e.message.startsWith('Shut down'))?.message ?? '',
      /^Shut down container vks-sidecar \(exec \/bin\/kill -s INT 1 in ephemeral container hahaha-signal-[0-9a-f]{6} \(busybox@sha256:abc\), the image has no \/bin\/kill, exit code 0\)$/,
    );
  });

  it("posts one event on the pod's Job with the outcome of the reap", async () => {
    const ok = new World(ownedByJob('job'), running('linkerd-proxy'), running('vks-sidecar'));
    await ok.reconciler.reconcile(ok.key);
    const onJob = ok.events.filter((e) => e.regarding !== undefined);
    assert.equal(onJob.length, 1);
    assert.deepEqual(onJob[0]?.regarding, { apiVersion: 'batch/v1', kind: 'Job', name: 'job', uid: 'uid-job' });
    assert.equal(onJob[0]?.type, 'Normal');
    assert.equal(onJob[0]?.reason, 'SidecarsShutDown');
    assert.match(onJob[0]?.message ?? '', /^Shut down 2 sidecars of pod job-1 in \d+\.\d s \(linkerd-proxy, vks-sidecar\)$/);

    const bad = new World(ownedByJob('job'), running('linkerd-proxy'), running('my-agent'));
    bad.behaviour.set(':4191', 'http-404');
    await bad.reconciler.reconcile(bad.key);
    const failed = bad.events.filter((e) => e.regarding !== undefined);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.type, 'Warning');
    assert.equal(failed[0]?.reason, 'SidecarShutdownFailed');
    assert.match(
      failed[0]?.message ?? '',
      /^Could not stop sidecars of pod job-1: linkerd-proxy: http POST :4191\/shutdown: HTTP 404.* \| my-agent: unsupported sidecar/,
    );
  });

  it('no Job event for a pod without a Job', async () => {
    const w = new World(running('linkerd-proxy'));
    await w.reconciler.reconcile(w.key);
    assert.equal(w.events.filter((e) => e.regarding !== undefined).length, 0);
  });

  it('dry run: says what it would do, once per pod, and never execs or port-forwards', async () => {
    const w = new World(running('cloudsql-proxy'), running('linkerd-proxy'));
    const dry = w.makeReconciler(undefined, true);
    assert.deepEqual(await dry.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(await dry.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, []);
    assert.deepEqual(w.events.map((e) => `${e.type} ${e.message}`).sort(), [
      'Normal Would shut down container cloudsql-proxy (http POST :9091/quitquitquit, then exec /bin/kill -s INT 1); dry run, nothing was done',
      'Normal Would shut down container linkerd-proxy (http POST :4191/shutdown); dry run, nothing was done',
    ]);
    assert.equal(await w.metric('hahaha_dry_run_would_stop_total'), 2);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns'), 0);
  });

  it('a sidecar no attempt applies to: one Warning naming what is missing, no call, no backoff retry', async () => {
    const w = new World(running('linkerd-proxy'), (p) => {
      p.metadata.annotations = {};
    });
    assert.equal((await w.reconciler.reconcile(w.key)).kind, 'permanent');
    assert.deepEqual(w.calls, []);
    assert.match(
      w.events.find((e) => e.reason === 'Killing')?.message ?? '',
      /^Unsuccessfully shut down container linkerd-proxy: http POST :4191\/shutdown does not apply: the pod has no annotation config.linkerd.io\/proxy-admin-shutdown: enabled \(hint: linkerd's shutdown endpoint is off by default/,
    );
  });

  it('preflight: one Warning at pod start for sidecars that will hang or fail the Job, none for fine pods', async () => {
    const w = new World(running('job'), running('secure-logs-configmap-reload'), running('my-agent'), running('vks-sidecar'));
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    await sleep(10); // once-per-pod events are posted in the background
    const pre = w.events.filter((e) => e.reason === 'SidecarPreflight');
    assert.equal(pre.length, 1);
    assert.equal(pre[0]?.type, 'Warning');
    assert.match(
      pre[0]?.message ?? '',
      /^Sidecar secure-logs-configmap-reload will fail the Job: exec \/bin\/killall configmap-reload stops it with exit code 2, which fails the pod \(fix: .*native sidecar.*\) \| Sidecar my-agent will hang the Job: no catalog entry matches my-agent/,
    );
    assert.equal(await w.metric('hahaha_preflight_warnings_total', { outcome: 'fails-pod' }), 1);
    assert.equal(await w.metric('hahaha_preflight_warnings_total', { outcome: 'hangs' }), 1);
    assert.deepEqual(w.calls, [], 'nothing is stopped while the main container runs');
    // A restarted process or a new leader does not say or count it again.
    await w.makeReconciler().reconcile(w.key);
    await sleep(10);
    assert.equal(w.events.filter((e) => e.reason === 'SidecarPreflight').length, 1);
    assert.equal(await w.metric('hahaha_preflight_warnings_total', { outcome: 'hangs' }), 1);

    // First seen after its main container ended (a restart, a failover): the reap's events say it all.
    const late = new World(running('my-agent'));
    await late.reconciler.reconcile(late.key);
    assert.deepEqual(
      late.events.filter((e) => e.reason === 'SidecarPreflight'),
      [],
    );

    const fine = new World(running('job'), running('linkerd-proxy'), running('cloudsql-proxy'));
    await fine.reconciler.reconcile(fine.key);
    assert.deepEqual(
      fine.events.filter((e) => e.reason === 'SidecarPreflight'),
      [],
    );
  });

  it('measures the shutdown latency even when the stop finishes the pod and the watch drops it at once', async () => {
    // The main container ended just now: hahaha's own observation starts the clock.
    const w = new World(running('linkerd-proxy'), terminated('job', 0, Date.now()));
    const terminate = w.terminate.bind(w);
    w.terminate = (container: string, exitCode: number) => {
      terminate(container, exitCode);
      // The pod became Succeeded: it leaves the watch (status.phase=Running) and is forgotten.
      w.reconciler.forget('uid-job-1');
    };
    await w.reconciler.reconcile(w.key);
    const h = (await w.metrics.registry.getSingleMetric('hahaha_sidecar_shutdown_latency_seconds')?.get())?.values ?? [];
    const sum = h.find((v) => (v as { metricName?: string }).metricName === 'hahaha_sidecar_shutdown_latency_seconds_sum')?.value ?? 0;
    assert.ok(sum >= 0.005 && sum < 1, `latency ${sum} s: measured from when hahaha saw the main container end`);
  });

  it('a pod that leaves the watch as its sidecars stop is read from the API once, for every stop waiting on it and for its count', async () => {
    const w = new World(running('linkerd-proxy'), running('istio-proxy'), running('secure-logs-fluentd'));
    let reads = 0;
    const reconciler = w.makeReconciler(undefined, undefined, {
      read: async () => {
        reads += 1;
        await sleep(20);
        return w.current();
      },
    });
    const sidecars = new Set(['linkerd-proxy', 'istio-proxy', 'secure-logs-fluentd']);
    const terminate = w.terminate.bind(w);
    w.terminate = (container: string, exitCode: number) => {
      sidecars.delete(container);
      if (sidecars.size > 0) {
        terminate(container, exitCode);
        return;
      }
      // The last stop finishes the pod: it leaves the watch with its previous state.
      const before = w.current();
      terminated(container, exitCode, T0 + 2000)(w.raw);
      phase('Succeeded')(w.raw);
      w.cache.remove(w.key);
      reconciler.left(before);
    };
    const result = await reconciler.reconcile(w.key);
    assert.deepEqual(result, { kind: 'done' });
    assert.equal(w.events.filter((e) => e.reason === 'Killing').length, 3);
    await sleep(50);
    assert.equal(reads, 1, 'one GET of the finished pod');
  });

  it('an interrupted reap (shutdown, lost lease) posts no Warning: the next run verifies and reports', async () => {
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'accept-only');
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    const result = await w.reconciler.reconcile(w.key, abort.signal);
    assert.equal(result.kind, 'retry');
    assert.deepEqual(
      w.events.filter((e) => e.type === 'Warning'),
      [],
    );
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns'), 0);
  });

  it('a pod that left the watch while the API server does not answer is read again within the verify window', async () => {
    const w = new World(running('linkerd-proxy'));
    let reads = 0;
    const reconciler = w.makeReconciler(undefined, undefined, {
      read: async () => {
        reads += 1;
        if (reads <= 1) throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
        return w.current();
      },
    });
    w.terminate = (container: string, exitCode: number) => {
      terminated(container, exitCode, T0 + 2000)(w.raw);
      phase('Succeeded')(w.raw);
      w.cache.remove(w.key);
    };
    assert.deepEqual(await reconciler.reconcile(w.key), { kind: 'done' });
    assert.ok(reads >= 2, `${reads} reads`);
    assert.match(w.events[0]?.message ?? '', /^Shut down container linkerd-proxy \(http POST :4191\/shutdown, exit code 0\)$/);
  });

  it('exitClass: 0 is zero, 1-128 error, above 128 signal', () => {
    assert.deepEqual([0, 1, 2, 128, 130, 137, 143].map(exitClass), ['zero', 'error', 'error', 'error', 'signal', 'signal', 'signal']);
  });

  it('a hanging endpoint times out and the next attempt runs (istio: 15020, then 15000)', async () => {
    const w = new World(running('istio-proxy'));
    w.behaviour.set(':15020', 'hang');
    const started = Date.now();
    await w.reconciler.reconcile(w.key);
    assert.deepEqual(w.calls, ['http POST :15020/quitquitquit', 'http POST :15000/quitquitquit']);
    assert.ok(Date.now() - started >= 5000 - 50, 'the attempt ran for its timeout');
    assert.deepEqual(w.events.map((e) => e.type).sort(), ['Normal', 'Warning']);
    assert.match(
      w.events.find((e) => e.type === 'Warning')?.message ?? '',
      /^Unsuccessfully shut down container istio-proxy: http POST :15020\/quitquitquit: timed out after 5s \(then stopped by http POST :15000\/quitquitquit\)$/,
    );
  });

  it('an ask that timed out may have landed: given as long again as its timeout, not asked again', async () => {
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'late-timeout');
    const result = await w.reconciler.reconcile(w.key);
    assert.deepEqual(result, { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown'], 'asked once');
    const killing = w.events.filter((e) => e.reason === 'Killing');
    assert.deepEqual(
      killing.map((e) => e.type),
      ['Normal'],
    );
    assert.match(killing[0]?.message ?? '', /^Shut down container linkerd-proxy \(http POST :4191\/shutdown/);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns', { container: 'linkerd-proxy' }), 0);
    assert.equal(await w.metric('hahaha_sidecar_shutdowns', { container: 'linkerd-proxy' }), 1);
  });

  it('a retry the kubelet refuses because the sandbox is not running finds the sidecar stopped: no failed shutdown', async () => {
    const w = new World(running('linkerd-proxy'));
    w.verifyTimeoutMs = 3000;
    w.behaviour.set(':4191', 'no-sandbox');
    // The pod finished while the API did not show it yet (a loaded kubelet); it does within the window.
    setTimeout(() => w.terminate('linkerd-proxy', 0), 1000);
    const result = await w.makeReconciler().reconcile(w.key);
    assert.deepEqual(result, { kind: 'done' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns', { container: 'linkerd-proxy' }), 0);
    assert.equal(w.events.filter((e) => e.type === 'Warning').length, 0, JSON.stringify(w.events));
  });

  it("reportLagMs: the main container exit's reporting delay less the second finishedAt is rounded to, at most the window; none when seen late", () => {
    const at = T0 + 100_000;
    assert.deepEqual(
      [at - 3500, at - 500, at - 30_000, at - 70_000, at + 2000, undefined].map((finished) => reportLagMs(at, finished, 10_000)),
      [2500, 0, 10_000, 0, 0, 0],
    );
  });

  it("ReportLag: each pod allows for the largest lag of the last minute on its node, its own or another pod's", () => {
    let now = T0;
    const lag = new ReportLag(10_000, () => now);
    assert.equal(lag.observe('node-a', now, now - 4000), 3000);
    now += 20_000;
    assert.equal(lag.observe('node-a', now, now - 1500), 3000, 'a smaller own lag: the larger one of 20 s ago');
    assert.equal(lag.observe('node-a', now, undefined), 3000);
    now += 50_000;
    assert.equal(lag.current('node-a'), 0, 'forgotten a minute after it was seen');
    assert.equal(lag.observe('node-a', now - 90_000, now - 95_000), 4000, 'a retry of a pod first seen 90 s ago: its own lag');
    assert.equal(lag.current('node-a'), 0, 'which is not recorded again');
    assert.equal(lag.observe('node-a', now, now - 30_000), 10_000, 'at most the cap');
  });

  it("ReportLag: a slow or skewed node's lag is its own pods' only", () => {
    let now = T0;
    const lag = new ReportLag(10_000, () => now);
    assert.equal(lag.observe('slow', now, now - 6000), 5000);
    assert.equal(lag.current('slow'), 5000);
    assert.equal(lag.current('fast'), 0, 'another node');
    assert.equal(lag.current(undefined), 0, 'a pod not bound to a node');
    assert.equal(lag.observe('fast', now, now - 2000), 1000, "the fast node's own lag, not the slow one's");
    assert.equal(lag.observe(undefined, now, now - 3000), 2000);
    assert.equal(lag.current(undefined), 2000);
    // A node whose clock runs ahead of hahaha's shows no lag; one 20 s behind, a lag at most the cap.
    assert.equal(lag.observe('ahead', now, now + 5000), 0);
    assert.equal(lag.observe('behind', now, now - 20_000), 10_000);
    assert.equal(lag.nodes, 4, 'a lag of 0 is not remembered');
    now += 61_000;
    assert.equal(lag.observe('fast', now, now - 2500), 1500);
    assert.equal(lag.nodes, 1, 'nodes without a lag in the last minute are forgotten');
  });

  it('a pod that leaves the watch while its verify allows for a grown lag is read once, not waited for in a loop', async () => {
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'accept-only');
    const { reconciler, reads } = w.countingReads();
    let waits = 0;
    const waitFor = w.cache.waitFor.bind(w.cache);
    w.cache.waitFor = (...args) => {
      waits += 1;
      return waitFor(...args);
    };
    setTimeout(() => reconciler.reportLag.observe(w.current().nodeName, Date.now(), Date.now() - 3000), 50);
    // Deleted from the watch (the API still shows it running, as it may for a moment).
    setTimeout(() => w.cache.remove(w.key), 100);
    await reconciler.reconcile(w.key);
    assert.ok(waits <= 3, `${waits} waits`);
    assert.ok(reads() <= 2, `${reads()} reads`);
  });

  it("a delay that spans a watch outage is the outage's, not the kubelet's: not recorded as its lag", async () => {
    const w = new World(terminated('job', 0, Date.now() - 3000), running('linkerd-proxy'));
    // The watch was down after the main container ended (an API server restart).
    w.cache.markStale('pods');
    w.cache.markCurrent('pods');
    w.reconciler.noteUpdate(w.current());
    assert.equal(w.reconciler.reportLag.current('node-a'), 0);
    const seen = new World(terminated('job', 0, Date.now() - 3000), running('linkerd-proxy'));
    seen.reconciler.noteUpdate(seen.current());
    assert.equal(seen.reconciler.reportLag.current('node-a'), 200, 'the same delay without an outage: 2-3 s, at most the 200 ms cap');
    // Measured once per pod, as the watch delivers it: a reconcile later (hahaha's queue, a
    // leader change) adds nothing, nor does a pod whose main container still runs.
    const stillRunning = new World(running('job'), running('linkerd-proxy'));
    stillRunning.reconciler.noteUpdate(stillRunning.current());
    assert.equal(stillRunning.reconciler.reportLag.current('node-a'), 0);
  });

  it('a verify that is still waiting allows for a lag that grew meanwhile (a burst): no second ask', async () => {
    // hahaha saw this pod's main container late (T0 is days ago): it brings no lag of its own.
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'slow-exit');
    // While the ask is verified, another pod on its node shows the kubelet 2-3 s behind (200 ms at this cap).
    setTimeout(() => w.reconciler.reportLag.observe('node-a', Date.now(), Date.now() - 3000), 50);
    stoppedByOneAsk(w, await w.reconciler.reconcile(w.key), 'http POST :4191/shutdown');
  });

  it("a lag that grew on another node does not lengthen the pod's window", async () => {
    const w = new World(running('linkerd-proxy'), noDrain);
    w.behaviour.set(':4191', 'slow-exit');
    setTimeout(() => w.reconciler.reportLag.observe('node-b', Date.now(), Date.now() - 3000), 50);
    // The same as the test above but for the node: the exit shows after the 200 ms window.
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'retry', reason: '1 of 1 sidecar(s) did not stop' });
    assert.deepEqual(w.calls, ['http POST :4191/shutdown']);
    assert.match(w.killing().join('\n'), /^Warning .* did not terminate within 0\.2s /);
  });

  it('a kubelet that reported the main container late gets as long again to report a sidecar: no second ask', async () => {
    // The main container ended 2-3 s before hahaha sees it; the sidecar's exit shows 300 ms after
    // the ask, past the 200 ms window.
    const w = new World(terminated('job', 0, Date.now() - 2000), running('linkerd-proxy'));
    w.behaviour.set(':4191', 'slow-exit');
    // As the controller passes each watch update on.
    w.reconciler.noteUpdate(w.current());
    stoppedByOneAsk(w, await w.reconciler.reconcile(w.key), 'http POST :4191/shutdown');
  });

  it("a sidecar that ignores the ask is reported with the window it had, the kubelet's lag included", async () => {
    const w = new World(terminated('job', 0, Date.now() - 2000), running('linkerd-proxy'), noDrain);
    w.behaviour.set(':4191', 'accept-only');
    w.reconciler.noteUpdate(w.current());
    await w.reconciler.reconcile(w.key);
    assert.match(
      w.events[0]?.message ?? '',
      /accepted \(HTTP 200\) but the container did not terminate within 0\.4s \(0\.2s, plus 0\.2s the kubelet took to report main containers' exits\)/,
    );
  });

  it('an accepted request whose sidecar does not stop counts as failed after the verify deadline', async () => {
    const w = new World(running('linkerd-proxy'), noDrain);
    w.behaviour.set(':4191', 'accept-only');
    const result = await w.reconciler.reconcile(w.key);
    assert.equal(result.kind, 'retry');
    assert.equal(w.events[0]?.type, 'Warning');
    assert.match(
      w.events[0]?.message ?? '',
      /^Unsuccessfully shut down container linkerd-proxy: http POST :4191\/shutdown: accepted \(HTTP 200\) but the container did not terminate within 0.2s \(hint: .*proxy-admin-shutdown/,
    );
    assert.equal(await w.metric('hahaha_failed_sidecar_shutdowns', { container: 'linkerd-proxy' }), 1);
  });

  it('tries every sidecar even when one fails, and stops them concurrently', async () => {
    const w = new World(running('linkerd-proxy'), running('secure-logs-fluentd'), running('vks-sidecar'));
    w.behaviour.set(':4191', 'http-500');
    const result = await w.reconciler.reconcile(w.key);
    assert.equal(result.kind, 'retry');
    assert.equal(w.calls.length, 3);
    const types = w.events.map((e) => `${e.type}:${e.message.split(' ').slice(0, 6).join(' ')}`).sort();
    assert.deepEqual(types, [
      'Normal:Shut down container secure-logs-fluentd (http GET',
      'Normal:Shut down container vks-sidecar (exec /bin/kill',
      'Warning:Unsuccessfully shut down container linkerd-proxy: http',
    ]);
    assert.match(w.events.find((e) => e.type === 'Warning')?.message ?? '', /HTTP 500 "nope"/);
  });

  it('concurrent targets: total time is that of the slowest, not the sum', async () => {
    const w = new World(running('linkerd-proxy'), running('secure-logs-fluentd'));
    w.behaviour.set(':4191', 'hang');
    w.behaviour.set(':24444', 'hang');
    const started = Date.now();
    await w.reconciler.reconcile(w.key);
    const took = Date.now() - started;
    // Each hangs for its 5 s timeout, then is given as long again to be seen stopping: 10 s.
    assert.ok(took < 15_000, `took ${took} ms`);
  });

  it('unsupported sidecars: one Warning event and one count per pod, no retry', async () => {
    const w = new World(running('my-agent'), running('linkerd-proxy'));
    const r1 = await w.reconciler.reconcile(w.key);
    const r2 = await w.reconciler.reconcile(w.key);
    assert.deepEqual(r1, { kind: 'done' });
    assert.deepEqual(r2, { kind: 'done' });
    const warnings = w.events.filter((e) => e.type === 'Warning' && e.reason === 'Killing');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]?.message ?? '', /^Unsuccessfully shut down container my-agent: unsupported sidecar/);
    assert.equal(await w.metric('hahaha_unsupported_sidecars', { container: 'my-agent', job_name: 'job' }), 1);
    // A restarted process or a new leader does not post the Warning again.
    await w.makeReconciler().reconcile(w.key);
    assert.equal(w.events.filter((e) => e.type === 'Warning' && e.reason === 'Killing').length, 1);
  });

  it('a repeated failure is counted on the existing event, not re-posted', async () => {
    const w = new World(running('linkerd-proxy'));
    w.behaviour.set(':4191', 'refuse');
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    assert.equal(w.events.length, 1);
    assert.deepEqual(w.repeats, [
      { name: 'ev-1', count: 2 },
      { name: 'ev-1', count: 3 },
    ]);
  });

  it('failed event posts are counted and do not fail the reconcile', async () => {
    const w = new World(running('linkerd-proxy'));
    w.failEventPosts = true;
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.equal(await w.metric('hahaha_total_unsuccessful_event_posts'), 1);
  });

  it('waits without acting while the main container runs', async () => {
    const w = new World(running('linkerd-proxy'), running('job'));
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.deepEqual(w.calls, []);
  });

  it('counts a skipped pod once per reason', async () => {
    const w = new World(running('linkerd-proxy'), (p) => {
      p.metadata.labels = {};
    });
    await w.reconciler.reconcile(w.key);
    await w.reconciler.reconcile(w.key);
    assert.equal(await w.metric('hahaha_skipped_pods_total', { reason: 'no-main-container' }), 1);
    assert.deepEqual(w.calls, []);
  });

  it('a sidecar that stops while its reply is cut off counts as shut down by that attempt', async () => {
    const w = new World(running('vks-sidecar'));
    w.behaviour.set('vks-sidecar:exec', 'cut-off');
    const original = w.cache.waitFor.bind(w.cache);
    let first = true;
    w.cache.waitFor = (key, pred, ms, signal) => {
      if (first) {
        first = false;
        setTimeout(() => w.terminate('vks-sidecar', 0), 5);
      }
      return original(key, pred, ms, signal);
    };
    assert.deepEqual(await w.reconciler.reconcile(w.key), { kind: 'done' });
    assert.match(w.events[0]?.message ?? '', /^Shut down container vks-sidecar \(exec \/bin\/kill -s INT 1, exit code 0\)/);
  });

  it('records attempt durations by kind and outcome', async () => {
    const w = new World(running('cloudsql-proxy'));
    w.behaviour.set(':9091', 'refuse');
    await w.reconciler.reconcile(w.key);
    const m = await w.metrics.registry.getSingleMetric('hahaha_attempt_duration_seconds')?.get();
    const counts = (m?.values ?? []).filter((v) => (v as { metricName?: string }).metricName === 'hahaha_attempt_duration_seconds_count');
    assert.deepEqual(counts.map((v) => `${v.labels.kind}/${v.labels.outcome}=${v.value}`).sort(), ['exec/ok=1', 'http/error=1']);
  });
});
