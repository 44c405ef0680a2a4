import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import {
  type Decision,
  decide,
  effectiveRestartPolicy,
  findMainContainers,
  isBeingDeleted,
  isNativeSidecar,
  usesNativeSidecars,
} from '../../src/domain/decide.ts';
import { parsePod } from '../../src/domain/pod-view.ts';
import {
  annotated,
  args,
  CATALOG_SIDECARS,
  container,
  deleting,
  nativeSidecar,
  phase,
  pod,
  rawPod,
  restartPolicy,
  running,
  T0,
  terminated,
  waiting,
  withApp,
  withoutLabels,
} from './pod-fixtures.ts';

const catalog = loadCatalog(DEFAULT_CATALOG_PATH);

interface Case {
  readonly name: string;
  readonly pod: ReturnType<typeof pod>;
  readonly decision: Decision['decision'];
  readonly code?: string;
  readonly targets?: readonly string[];
  readonly unsupported?: readonly string[];
  readonly reason?: RegExp;
}

const cases: Case[] = [
  {
    name: 'reaps the sidecar once the main container exited 0 (restartPolicy Never)',
    pod: pod('a', withApp('job'), terminated('job', 0), running('linkerd-proxy')),
    decision: 'reap',
    targets: ['linkerd-proxy'],
    unsupported: [],
  },
  {
    name: 'reaps after a failed main container too when restartPolicy is Never',
    pod: pod('a', withApp('job'), terminated('job', 1), running('linkerd-proxy')),
    decision: 'reap',
    targets: ['linkerd-proxy'],
  },
  {
    name: 'waits while the main container runs',
    pod: pod('a', withApp('job'), running('job'), running('linkerd-proxy')),
    decision: 'wait',
    code: 'main-running',
  },
  {
    name: 'waits while the main container has no status yet',
    pod: pod('a', withApp('job'), container('job'), running('linkerd-proxy')),
    decision: 'wait',
    code: 'main-running',
  },
  {
    name: 'waits while the main container is waiting to start',
    pod: pod('a', withApp('job'), waiting('job'), running('linkerd-proxy')),
    decision: 'wait',
    code: 'main-running',
  },
  {
    name: 'OnFailure: waits after a failed main container, which will be restarted',
    pod: pod('a', restartPolicy('OnFailure'), withApp('job'), terminated('job', 2), running('linkerd-proxy')),
    decision: 'wait',
    code: 'main-will-restart',
    reason: /exited with code 2 and will be restarted/,
  },
  {
    name: 'OnFailure: reaps once the main container succeeded',
    pod: pod('a', restartPolicy('OnFailure'), withApp('job'), terminated('job', 0, T0, 1), running('linkerd-proxy')),
    decision: 'reap',
    targets: ['linkerd-proxy'],
  },
  {
    name: 'ignores a pod being deleted',
    pod: pod('a', deleting, withApp('job'), terminated('job', 0), running('linkerd-proxy')),
    decision: 'ignore',
    code: 'being-deleted',
  },
  {
    name: 'ignores a pod that already Succeeded',
    pod: pod('a', phase('Succeeded'), withApp('job'), terminated('job', 0), terminated('linkerd-proxy', 0)),
    decision: 'ignore',
    code: 'finished',
  },
  {
    name: 'ignores a pod that already Failed',
    pod: pod('a', phase('Failed'), withApp('job'), terminated('job', 1), terminated('linkerd-proxy', 137)),
    decision: 'ignore',
    code: 'finished',
  },
  {
    name: 'ignores a pod without an app label or annotation',
    pod: pod('a', withoutLabels, terminated('job', 0), running('linkerd-proxy')),
    decision: 'ignore',
    code: 'no-main-container',
    reason: /no app label/,
  },
  {
    name: 'ignores a pod whose app label names no container',
    pod: pod('a', withApp('other'), terminated('job', 0), running('linkerd-proxy')),
    decision: 'ignore',
    code: 'no-main-container',
    reason: /no container named other/,
  },
  {
    name: 'ignores restartPolicy Always pods (not batch)',
    pod: pod('a', restartPolicy('Always'), withApp('job'), terminated('job', 0), running('linkerd-proxy')),
    decision: 'ignore',
    code: 'restart-always',
  },
  {
    name: 'the annotation overrides the app label',
    pod: pod('a', withApp('job'), annotated('hahaha.nais.io/main-containers', 'worker'), running('job'), terminated('worker', 0), running('linkerd-proxy')),
    decision: 'reap',
    targets: ['linkerd-proxy'],
    unsupported: ['job'],
  },
  {
    name: 'several main containers: waits until all of them terminated',
    pod: pod('a', annotated('hahaha.nais.io/main-containers', 'a, b'), terminated('a', 0), running('b'), running('linkerd-proxy')),
    decision: 'wait',
    code: 'main-running',
    reason: /main container b/,
  },
  {
    name: 'several main containers: reaps when all terminated',
    pod: pod('a', annotated('hahaha.nais.io/main-containers', 'a,b'), terminated('a', 0), terminated('b', 0), running('vks-sidecar')),
    decision: 'reap',
    targets: ['vks-sidecar'],
  },
  {
    name: 'an annotation naming a missing container is reported',
    pod: pod('a', annotated('hahaha.nais.io/main-containers', 'ghost'), terminated('job', 0), running('linkerd-proxy')),
    decision: 'ignore',
    code: 'no-main-container',
    reason: /ghost/,
  },
  {
    name: 'never targets native sidecars (init containers with restartPolicy Always)',
    pod: pod('a', withApp('job'), nativeSidecar('istio-proxy'), terminated('job', 0)),
    decision: 'ignore',
    code: 'nothing-to-reap',
    reason: /native sidecars are stopped by the kubelet/,
  },
  {
    name: 'regular sidecars are reaped while native ones are left alone',
    pod: pod('a', withApp('job'), nativeSidecar('istio-proxy'), terminated('job', 0), running('linkerd-proxy')),
    decision: 'reap',
    targets: ['linkerd-proxy'],
  },
  {
    name: 'already terminated sidecars are not targets',
    pod: pod('a', withApp('job'), terminated('job', 0), terminated('linkerd-proxy', 0), running('vks-sidecar')),
    decision: 'reap',
    targets: ['vks-sidecar'],
  },
  {
    name: 'nothing to do when every container terminated but the phase lags',
    pod: pod('a', withApp('job'), terminated('job', 0), terminated('linkerd-proxy', 0)),
    decision: 'ignore',
    code: 'nothing-to-reap',
  },
  {
    name: 'unknown sidecars are reported unsupported, known ones still reaped',
    pod: pod('a', withApp('job'), terminated('job', 0), running('my-agent'), running('secure-logs-fluentd')),
    decision: 'reap',
    targets: ['secure-logs-fluentd'],
    unsupported: ['my-agent'],
  },
  {
    name: 'a sidecar that never started is still a target',
    pod: pod('a', withApp('job'), terminated('job', 0), waiting('cloudsql-proxy', 'ImagePullBackOff')),
    decision: 'reap',
    targets: ['cloudsql-proxy'],
  },
  {
    name: 'every default sidecar is supported',
    pod: pod('a', withApp('job'), terminated('job', 0), ...CATALOG_SIDECARS.map(running)),
    decision: 'reap',
    targets: CATALOG_SIDECARS,
    unsupported: [],
  },
];

describe('decide', () => {
  for (const c of cases) {
    it(c.name, () => {
      const d = decide(c.pod, catalog);
      assert.equal(d.decision, c.decision, d.reason);
      if (c.code !== undefined) assert.equal('code' in d ? d.code : undefined, c.code);
      if (c.reason !== undefined) assert.match(d.reason, c.reason);
      if (c.targets !== undefined) {
        assert.equal(d.decision, 'reap');
        if (d.decision === 'reap')
          assert.deepEqual(
            d.targets.map((t) => t.container),
            c.targets,
          );
      }
      if (c.unsupported !== undefined && d.decision === 'reap') assert.deepEqual(d.unsupported, c.unsupported);
    });
  }

  it('reports when the last main container finished', () => {
    const d = decide(
      pod('a', annotated('hahaha.nais.io/main-containers', 'a,b'), terminated('a', 0, T0), terminated('b', 0, T0 + 5000), running('linkerd-proxy')),
      catalog,
    );
    assert.equal(d.decision, 'reap');
    if (d.decision === 'reap') assert.equal(d.mainFinishedAt, T0 + 5000);
  });

  it('lists attempts cleanest first (istio: pilot-agent, then Envoy admin)', () => {
    const d = decide(pod('a', withApp('job'), terminated('job', 0), running('istio-proxy')), catalog);
    assert.equal(d.decision, 'reap');
    if (d.decision !== 'reap') return;
    assert.deepEqual(
      d.targets[0]?.attempts.map((a) => (a.kind === 'http' ? a.port : a.command.join(' '))),
      [15020, 15000],
    );
  });

  it('cloudsql-proxy tries quitquitquit before kill -s INT 1', () => {
    const d = decide(pod('a', withApp('job'), terminated('job', 0), running('cloudsql-proxy'), args('cloudsql-proxy', '--quitquitquit')), catalog);
    assert.equal(d.decision, 'reap');
    if (d.decision !== 'reap') return;
    assert.deepEqual(
      d.targets[0]?.attempts.map((a) => a.kind),
      ['http', 'exec'],
    );
  });

  it('cloudsql-proxy without --quitquitquit: only the signal, and why the endpoint is skipped', () => {
    const d = decide(pod('a', withApp('job'), terminated('job', 0), running('cloudsql-proxy')), catalog);
    if (d.decision !== 'reap') return assert.fail(d.reason);
    assert.deepEqual(
      d.targets[0]?.attempts.map((a) => (a.kind === 'exec' ? a.command.join(' ') : a.kind)),
      ['/bin/kill -s INT 1'],
    );
    assert.deepEqual(
      d.targets[0]?.skipped.map((s) => s.why),
      [
        'cloudsql-proxy is not started with --quitquitquit (nor CSQL_PROXY_QUITQUITQUIT=true)',
        'cloudsql-proxy is not started with --exit-zero-on-sigterm (nor CSQL_PROXY_EXIT_ZERO_ON_SIGTERM=true)',
      ],
    );
  });

  it('linkerd without proxy-admin-shutdown: no attempt applies, and it says why', () => {
    const d = decide(pod('a', withApp('job'), terminated('job', 0), running('linkerd-proxy')), catalog);
    if (d.decision !== 'reap') return assert.fail(d.reason);
    assert.deepEqual(d.targets[0]?.attempts, []);
    assert.match(d.targets[0]?.skipped[0]?.why ?? '', /no annotation config.linkerd.io\/proxy-admin-shutdown: enabled/);
  });
});

describe('predicates', () => {
  it('isBeingDeleted', () => {
    assert.equal(isBeingDeleted(pod('a', deleting, withApp('job'), running('job'))), true);
    assert.equal(isBeingDeleted(pod('a', withApp('job'), running('job'))), false);
  });
  it('isNativeSidecar / usesNativeSidecars', () => {
    assert.equal(isNativeSidecar({ name: 'x', image: '', restartPolicy: 'Always' }), true);
    assert.equal(isNativeSidecar({ name: 'x', image: '' }), false);
    assert.equal(usesNativeSidecars(pod('a', withApp('job'), running('job'), nativeSidecar('n'))), true);
  });
  it('findMainContainers dedupes and trims the annotation', () => {
    assert.deepEqual(findMainContainers(pod('a', annotated('hahaha.nais.io/main-containers', ' a , a,b '), running('a'), running('b'))), ['a', 'b']);
  });
  it('effectiveRestartPolicy prefers the container-level policy', () => {
    const p = parsePod(
      rawPod('a', withApp('job'), running('job'), (raw) => {
        raw.spec.restartPolicy = 'OnFailure';
        raw.spec.containers[0].restartPolicy = 'Never';
      }),
    );
    assert.ok(!('malformed' in p));
    if (!('malformed' in p)) assert.equal(effectiveRestartPolicy(p, 'job'), 'Never');
  });
});

describe('parsePod', () => {
  it('rejects malformed pods with a reason', () => {
    const bad: [unknown, RegExp][] = [
      [42, /not a JSON object/],
      [{ kind: 'Service', metadata: { name: 'x' }, spec: {} }, /kind is Service/],
      [{ metadata: {}, spec: { containers: [] } }, /metadata.name/],
      [{ metadata: { name: 'x' } }, /spec is missing/],
      [{ metadata: { name: 'x' }, spec: { containers: [] } }, /spec.containers is empty/],
      [{ metadata: { name: 'x' }, spec: { containers: [{ image: 'y' }] } }, /spec.containers\[0\] has no name/],
    ];
    for (const [raw, reason] of bad) {
      const p = parsePod(raw);
      assert.ok('malformed' in p, JSON.stringify(raw));
      if ('malformed' in p) assert.match(p.reason, reason);
    }
  });
  it('keeps only the labels and annotations deciding needs', () => {
    const p = pod('a', withApp('job'), running('job'), annotated('big', 'x'.repeat(10_000)), annotated('hahaha.nais.io/main-containers', 'job'));
    assert.deepEqual(Object.keys(p.annotations), ['hahaha.nais.io/main-containers']);
    assert.deepEqual(Object.keys(p.labels).sort(), ['app', 'nais.io/naisjob']);
  });
  it("keeps only the literal environment variables the catalog reads, and the sidecar's condition still holds", () => {
    const withEnv =
      (name: string, env: Record<string, string>) =>
      (p: Record<string, any>): void => {
        const c = p.spec.containers.find((x: { name: string }) => x.name === name);
        c.env = [
          ...Object.entries(env).map(([k, value]) => ({ name: k, value })),
          { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
        ];
      };
    const appEnv = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`NAIS_VAR_${i}`, `value-${i}`]));
    const p = pod(
      'a',
      withApp('job'),
      terminated('job', 0),
      running('cloudsql-proxy'),
      withEnv('job', { ...appEnv, CSQL_PROXY_QUITQUITQUIT: 'true' }),
      withEnv('cloudsql-proxy', { ...appEnv, CSQL_PROXY_QUITQUITQUIT: 'true' }),
    );
    assert.deepEqual(
      p.containers.map((c) => c.env),
      [{ CSQL_PROXY_QUITQUITQUIT: 'true' }, { CSQL_PROXY_QUITQUITQUIT: 'true' }],
    );
    const d = decide(p, catalog);
    assert.equal(d.decision, 'reap');
    if (d.decision === 'reap')
      assert.deepEqual(
        d.targets[0]?.attempts.map((a) => a.kind),
        ['http', 'exec'],
      );
    // without the catalog's reads (as the webhook parses), every literal variable is kept
    const all = parsePod(rawPod('a', withApp('job'), container('job'), withEnv('job', appEnv)));
    assert.equal('malformed' in all ? 0 : Object.keys(all.containers[0]?.env ?? {}).length, 30);
  });
});
