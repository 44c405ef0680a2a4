import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog, parseCatalog } from '../../src/config/catalog-file.ts';
import { type ConversionSkipCode, conversionPatch, type JsonPatchOp, planConversion, supportsNativeSidecars } from '../../src/domain/native-conversion.ts';
import { NATIVE_SIDECARS_ANNOTATION } from '../../src/domain/pod-view.ts';
import { annotated, container, type Mod, rawPod, restartPolicy, withApp, withoutLabels } from './pod-fixtures.ts';

const catalog = loadCatalog(DEFAULT_CATALOG_PATH);
const supported = { nativeSidecarsSupported: true };

/** A pod as an admission request carries it: no name yet, no status. */
function newPod(...mods: Mod[]): Record<string, any> {
  const p = rawPod('x', ...mods);
  delete p.status;
  delete p.metadata.uid;
  delete p.metadata.resourceVersion;
  p.metadata.name = undefined;
  p.metadata.generateName = 'job-';
  return p;
}
const withProbe =
  (name: string): Mod =>
  (p) => {
    const c = p.spec.containers.find((x: any) => x.name === name);
    c.readinessProbe = { httpGet: { path: '/ready', port: 9090 } };
    c.ports = [{ containerPort: 9090, name: 'admin' }];
    c.volumeMounts = [{ name: 'cfg', mountPath: '/etc/cfg' }];
  };
const initContainer =
  (name: string, policy?: string): Mod =>
  (p) => {
    p.spec.initContainers = [...(p.spec.initContainers ?? []), { name, image: `example/${name}:1`, ...(policy && { restartPolicy: policy }) }];
  };
const ownRestartPolicy =
  (name: string, policy: string): Mod =>
  (p) => {
    p.spec.containers.find((x: any) => x.name === name).restartPolicy = policy;
  };
const sharedPid: Mod = (p) => {
  p.spec.shareProcessNamespace = true;
};

/** A minimal RFC 6902 applier for add/remove/test, enough to check the patch's effect. */
function applyPatch(doc: any, ops: readonly JsonPatchOp[]): any {
  const out = structuredClone(doc);
  for (const op of ops) {
    const segs = op.path
      .split('/')
      .slice(1)
      .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = segs.pop() as string;
    const parent = segs.reduce((o, s) => o[s], out);
    if (op.op === 'test') assert.deepEqual(parent[last], op.value, `test ${op.path}`);
    else if (op.op === 'remove') Array.isArray(parent) ? parent.splice(Number(last), 1) : delete parent[last];
    else if (Array.isArray(parent)) last === '-' ? parent.push(op.value) : parent.splice(Number(last), 0, op.value);
    else parent[last] = op.value;
  }
  return out;
}

interface Case {
  readonly name: string;
  readonly pod: Record<string, any>;
  readonly supported?: boolean;
  /** Expected converted containers, or the skip code. */
  readonly convert?: readonly string[];
  readonly skip?: ConversionSkipCode;
  readonly annotation?: string;
  readonly kept?: readonly string[];
}

const cases: Case[] = [
  {
    name: 'converts a native entry (configmap-reload) of a Never pod',
    pod: newPod(withApp('job'), container('job'), container('secure-logs-configmap-reload')),
    convert: ['secure-logs-configmap-reload'],
  },
  {
    name: 'converts in an OnFailure pod',
    pod: newPod(withApp('job'), restartPolicy('OnFailure'), container('job'), container('cloudsql-proxy')),
    convert: ['cloudsql-proxy'],
  },
  {
    name: 'converts several in their relative order and leaves non-native entries (linkerd, istio) as they are',
    pod: newPod(
      withApp('job'),
      container('vks-sidecar'),
      container('linkerd-proxy'),
      container('job'),
      container('secure-logs-fluentd'),
      container('istio-proxy'),
      container('cloud-sql-proxy'),
    ),
    convert: ['vks-sidecar', 'secure-logs-fluentd', 'cloud-sql-proxy'],
  },
  {
    name: 'leaves unknown sidecars regular',
    pod: newPod(withApp('job'), container('job'), container('datadog-agent')),
    skip: 'nothing-to-convert',
  },
  {
    name: 'opt-out annotation on the pod',
    pod: newPod(withApp('job'), container('job'), container('vks-sidecar'), annotated(NATIVE_SIDECARS_ANNOTATION, 'false')),
    skip: 'opted-out',
  },
  {
    name: 'opt-out annotation is case-insensitive',
    pod: newPod(withApp('job'), container('job'), container('vks-sidecar'), annotated(NATIVE_SIDECARS_ANNOTATION, ' False ')),
    skip: 'opted-out',
  },
  {
    name: 'nothing on an API server older than 1.29',
    pod: newPod(withApp('job'), container('job'), container('vks-sidecar')),
    supported: false,
    skip: 'native-sidecars-unsupported',
  },
  {
    name: 'nothing for restartPolicy Always (not a batch pod)',
    pod: newPod(withApp('job'), restartPolicy('Always'), container('job'), container('vks-sidecar')),
    skip: 'restart-always',
  },
  {
    name: 'nothing when no main container can be found',
    pod: newPod(withoutLabels, container('job'), container('vks-sidecar')),
    skip: 'no-main-container',
  },
  {
    name: 'nothing when a native entry is named as a main container',
    pod: newPod(
      withApp('job'),
      container('job'),
      container('vks-sidecar'),
      container('cloud-sql-proxy'),
      annotated('hahaha.nais.io/main-containers', 'job,vks-sidecar'),
    ),
    skip: 'main-is-sidecar',
  },
  {
    name: 'nothing with a shared process namespace',
    pod: newPod(withApp('job'), container('job'), container('vks-sidecar'), sharedPid),
    skip: 'shared-process-namespace',
  },
  {
    name: 'keeps a container that has a restart policy of its own, converts the others',
    pod: newPod(withApp('job'), container('job'), container('vks-sidecar'), container('daprd'), ownRestartPolicy('daprd', 'Never')),
    convert: ['vks-sidecar'],
    kept: ['daprd'],
  },
  {
    name: 'reinvocation: converts a sidecar added after the first call and keeps the earlier names',
    pod: newPod(
      withApp('job'),
      initContainer('setup'),
      initContainer('vks-sidecar', 'Always'),
      container('job'),
      container('secure-logs-fluentd'),
      annotated(NATIVE_SIDECARS_ANNOTATION, 'vks-sidecar'),
    ),
    convert: ['secure-logs-fluentd'],
    annotation: 'vks-sidecar,secure-logs-fluentd',
  },
  {
    name: 'reinvocation with nothing new changes nothing',
    pod: newPod(withApp('job'), initContainer('vks-sidecar', 'Always'), container('job'), annotated(NATIVE_SIDECARS_ANNOTATION, 'vks-sidecar')),
    skip: 'nothing-to-convert',
  },
  {
    name: 'a malformed pod is left alone',
    pod: { metadata: {}, spec: { containers: 'nope' } },
    skip: 'malformed',
  },
];

describe('planConversion', () => {
  for (const c of cases) {
    it(c.name, () => {
      const plan = planConversion(c.pod, 'team', catalog, { nativeSidecarsSupported: c.supported ?? true });
      if (c.skip !== undefined) {
        assert.equal(plan.convert, false, JSON.stringify(plan));
        if (!plan.convert) assert.equal(plan.code, c.skip, plan.reason);
        assert.deepEqual(conversionPatch(c.pod, plan), []);
        return;
      }
      assert.ok(plan.convert, JSON.stringify(plan));
      assert.deepEqual(plan.containers, c.convert);
      assert.equal(plan.annotation, c.annotation ?? c.convert?.join(','));
      assert.deepEqual(
        plan.kept.map((k) => k.container),
        c.kept ?? [],
      );
    });
  }
});

describe('conversionPatch', () => {
  it('moves the sidecars to the end of initContainers with restartPolicy Always, unchanged otherwise', () => {
    const raw = newPod(
      withApp('job'),
      initContainer('setup'),
      container('vks-sidecar'),
      container('job'),
      container('secure-logs-fluentd'),
      withProbe('secure-logs-fluentd'),
      annotated('other', 'kept'),
    );
    const plan = planConversion(raw, 'team', catalog, supported);
    const patched = applyPatch(raw, conversionPatch(raw, plan));
    assert.deepEqual(
      patched.spec.containers.map((c: any) => c.name),
      ['job'],
    );
    assert.deepEqual(
      patched.spec.initContainers.map((c: any) => [c.name, c.restartPolicy]),
      [
        ['setup', undefined],
        ['vks-sidecar', 'Always'],
        ['secure-logs-fluentd', 'Always'],
      ],
    );
    const fluentd = patched.spec.initContainers[2];
    const before = raw.spec.containers.find((c: any) => c.name === 'secure-logs-fluentd');
    assert.deepEqual({ ...fluentd, restartPolicy: undefined }, { ...before, restartPolicy: undefined });
    assert.deepEqual(patched.metadata.annotations, { other: 'kept', [NATIVE_SIDECARS_ANNOTATION]: 'vks-sidecar,secure-logs-fluentd' });
  });

  it('creates initContainers and annotations when the pod has none', () => {
    const raw = newPod(withApp('job'), container('job'), container('daprd'));
    const ops = conversionPatch(raw, planConversion(raw, 'team', catalog, supported));
    assert.deepEqual(
      ops.map((o) => `${o.op} ${o.path}`),
      ['test /spec/containers/1/name', 'remove /spec/containers/1', 'add /spec/initContainers', 'add /metadata/annotations'],
    );
    const patched = applyPatch(raw, ops);
    assert.equal(patched.spec.initContainers[0].name, 'daprd');
    assert.equal(patched.metadata.annotations[NATIVE_SIDECARS_ANNOTATION], 'daprd');
  });

  it('removes from the highest index down, each guarded by a test of its name', () => {
    const raw = newPod(withApp('job'), container('vks-sidecar'), container('daprd'), container('job'));
    const ops = conversionPatch(raw, planConversion(raw, 'team', catalog, supported));
    assert.deepEqual(ops.slice(0, 4), [
      { op: 'test', path: '/spec/containers/1/name', value: 'daprd' },
      { op: 'remove', path: '/spec/containers/1' },
      { op: 'test', path: '/spec/containers/0/name', value: 'vks-sidecar' },
      { op: 'remove', path: '/spec/containers/0' },
    ]);
  });

  it('escapes the annotation key as a JSON pointer', () => {
    const raw = newPod(withApp('job'), container('job'), container('daprd'), annotated('a', 'b'));
    const ops = conversionPatch(raw, planConversion(raw, 'team', catalog, supported));
    assert.equal(ops.at(-1)?.path, '/metadata/annotations/hahaha.nais.io~1native-sidecars');
  });
});

describe('catalog native flag', () => {
  it('defaults to false and is refused when not a boolean', () => {
    const c = parseCatalog({ sidecars: [{ name: 'a', containers: ['a'], attempts: [{ exec: { command: ['x'] } }] }] }, 'f.yaml');
    assert.equal(c.entries[0]?.native, false);
    assert.throws(
      () => parseCatalog({ sidecars: [{ name: 'a', containers: ['a'], native: 'yes', attempts: [{ exec: { command: ['x'] } }] }] }, 'f.yaml'),
      /entry "a", field native/,
    );
  });

  it('the shipped catalog converts the safe entries and leaves linkerd and istio to their own native modes', () => {
    const native = catalog.entries
      .filter((e) => e.native)
      .map((e) => e.name)
      .sort();
    assert.deepEqual(native, [
      'cloud-sql-proxy',
      'cloud-sql-proxy-v1',
      'dapr',
      'secure-logs-configmap-reload',
      'secure-logs-fluentd',
      'vault-agent',
      'vks-sidecar',
    ]);
  });
});

describe('supportsNativeSidecars', () => {
  for (const [major, minor, want] of [
    ['1', '29', true],
    ['1', '37', true],
    ['1', '30+', true],
    ['1', '28', false],
    ['1', '28+', false],
    ['2', '0', true],
    ['', '', false],
  ] as const) {
    it(`${major}.${minor} → ${want}`, () => assert.equal(supportsNativeSidecars(major, minor), want));
  }
});
