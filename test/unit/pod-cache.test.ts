import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compactPod, internTable } from '../../src/domain/compact-pod.ts';
import { MAIN_CONTAINERS_ANNOTATION } from '../../src/domain/pod-view.ts';
import { PodCache } from '../../src/pod-cache.ts';
import {
  annotated,
  args,
  container,
  deleting,
  linkerdShutdown,
  type Mod,
  nativeSidecar,
  onNode,
  ownedByJob,
  phase,
  pod,
  running,
  T0,
  terminated,
  uid,
  version,
  withApp,
} from './pod-fixtures.ts';

describe('pod cache', () => {
  it('waitFor resolves on the update that satisfies the predicate', async () => {
    const cache = new PodCache();
    cache.upsert(pod('a', withApp('job'), running('job')));
    const waiting = cache.waitFor('team/a', (p) => p.containerStatuses[0]?.state.kind === 'terminated', 1000);
    cache.upsert(pod('a', withApp('job'), terminated('job', 0)));
    const p = await waiting;
    assert.equal(p?.containerStatuses[0]?.state.kind, 'terminated');
  });
  it('waitFor resolves undefined on timeout, removal and abort', async () => {
    const cache = new PodCache();
    cache.upsert(pod('a', withApp('job'), running('job')));
    assert.equal(await cache.waitFor('team/a', () => false, 10), undefined);
    const removed = cache.waitFor('team/a', () => false, 1000);
    cache.remove('team/a');
    assert.equal(await removed, undefined);
    cache.upsert(pod('a', withApp('job'), running('job')));
    const ac = new AbortController();
    const aborted = cache.waitFor('team/a', () => false, 1000, ac.signal);
    ac.abort();
    assert.equal(await aborted, undefined);
  });
  it('knows when its watch was down: until every scope is back, and since when', async () => {
    let now = 1000;
    const cache = new PodCache(() => now);
    assert.equal(cache.disruptedSince(0), false);
    assert.equal(await cache.whenCurrent(0), true);
    cache.markStale('a');
    cache.markStale('b');
    assert.equal(cache.disruptedSince(5000), true, 'down now');
    assert.equal(await cache.whenCurrent(5), false, 'not back within the time');
    const back = cache.whenCurrent(1000);
    now = 2000;
    cache.markCurrent('a');
    assert.equal(cache.disruptedSince(1500), true, 'b is still down');
    now = 3000;
    cache.markCurrent('b');
    assert.equal(await back, true);
    assert.equal(cache.disruptedSince(3000), true, 'it was down until 3000');
    assert.equal(cache.disruptedSince(3001), false);
    cache.markCurrent('b');
    assert.equal(cache.disruptedSince(3001), false, 'a scope that was not down changes nothing');
    const ac = new AbortController();
    cache.markStale('a');
    const aborted = cache.whenCurrent(1000, ac.signal);
    ac.abort();
    assert.equal(await aborted, false);
  });
});

describe('PodCache tells whether an update shows anything new', () => {
  const base: Mod[] = [withApp('job'), running('job'), running('linkerd-proxy'), ownedByJob('job')];
  const cases: [string, Mod[], boolean][] = [
    ['only a new resourceVersion', [], false],
    [
      'conditions, readiness and IPs, which a view leaves out',
      [
        (p) => {
          p.status.conditions = [{ type: 'Ready', status: 'True' }];
          p.status.podIP = '10.0.0.7';
          for (const s of p.status.containerStatuses) s.ready = true;
        },
      ],
      false,
    ],
    [
      'a label a view leaves out',
      [
        (p) => {
          p.metadata.labels.team = 'x';
        },
      ],
      false,
    ],
    ['the main container terminated', [terminated('job', 0)], true],
    ['a sidecar restarted', [terminated('linkerd-proxy', 1, T0, 1)], true],
    ['the phase', [phase('Succeeded')], true],
    ['being deleted', [deleting], true],
    ['a kept label', [withApp('linkerd-proxy')], true],
    ['a kept annotation', [annotated(MAIN_CONTAINERS_ANNOTATION, 'job')], true],
    ['another pod under the same name', [uid('uid-b')], true],
    ['bound to another node', [onNode('node-b')], true],
  ];
  for (const [name, mods, expected] of cases) {
    it(`${name}: ${expected ? 'new' : 'nothing new'}`, () => {
      const cache = new PodCache();
      assert.equal(cache.upsert(pod('a', ...base)), true, 'a pod new to the cache is new');
      assert.equal(cache.upsert(pod('a', ...base, version('2'), ...mods)), expected);
    });
  }
  it('compares every field of a view but its name, namespace and resourceVersion (a field added to PodView must be added to sameView)', () => {
    const view = pod('a', ...base, deleting, annotated(MAIN_CONTAINERS_ANNOTATION, 'job'), nativeSidecar('vks-sidecar'));
    assert.deepEqual(Object.keys(view).sort(), [
      'annotations',
      'containerStatuses',
      'containers',
      'deletionTimestamp',
      'initContainers',
      'labels',
      'name',
      'namespace',
      'nodeName',
      'owner',
      'phase',
      'resourceVersion',
      'restartPolicy',
      'uid',
    ]);
  });
});

describe('PodCache keeps what repeats once', () => {
  const jobPod = (name: string, ...mods: Parameters<typeof pod>[1][]) =>
    pod(
      name,
      withApp(name),
      args(name, 'run', name),
      running(name),
      args('linkerd-proxy', 'proxy', '--x'),
      running('linkerd-proxy'),
      nativeSidecar('istio-proxy'),
      linkerdShutdown,
      ownedByJob(name),
      ...mods,
    );

  it('stores an equal pod (compacted), and waiters get what is stored', () => {
    const p = pod('a', withApp('job'), container('job'), running('linkerd-proxy'), args('linkerd-proxy', '--x', '1'), ownedByJob('job'));
    assert.deepEqual(compactPod(p, internTable()), p);
    const cache = new PodCache();
    cache.upsert(p);
    assert.deepEqual(cache.get('team/a'), p);
  });

  it("shares a sidecar's spec, its argv and the annotations across pods, and keeps each main container's spec per pod", () => {
    const cache = new PodCache();
    const a = jobPod('a');
    const b = jobPod('b');
    cache.upsert(a);
    cache.upsert(b);
    const [ka, kb] = [cache.get('team/a'), cache.get('team/b')];
    assert.deepEqual(ka, a);
    assert.deepEqual(kb, b);
    assert.equal(ka?.containers[1], kb?.containers[1]);
    assert.equal(ka?.initContainers[0], kb?.initContainers[0]);
    assert.equal(ka?.annotations, kb?.annotations);
    assert.notEqual(ka?.containers[0], kb?.containers[0]);
    // both containers of a pod started in the same second: one state object
    assert.equal(ka?.containerStatuses[0]?.state, ka?.containerStatuses[1]?.state);
  });

  it('keeps, across an update, the parts the update did not change', () => {
    const cache = new PodCache();
    cache.upsert(jobPod('a'));
    const before = cache.get('team/a');
    const now = jobPod('a', version('2'), terminated('a', 0));
    cache.upsert(now);
    const after = cache.get('team/a');
    assert.deepEqual(after, now);
    assert.equal(after?.containers, before?.containers);
    assert.equal(after?.labels, before?.labels);
    assert.equal(after?.owner, before?.owner);
    assert.equal(after?.containerStatuses[1], before?.containerStatuses[1]);
    assert.notEqual(after?.containerStatuses[0], before?.containerStatuses[0]);
  });

  it('a table part: an equal one kept before, else the new one; everything forgotten once full', () => {
    const intern = internTable(2);
    const first = intern.part({ argv: ['a', 'b'] });
    assert.equal(intern.part({ argv: ['a', 'b'] }), first);
    const other = { argv: ['a', 'c'] };
    assert.equal(intern.part(other), other);
    const third = { argv: ['x'] };
    assert.equal(intern.part(third), third, 'the table was full: it starts over with this one');
    assert.notEqual(intern.part({ argv: ['a', 'b'] }), first);
  });

  it('lists the keys of one namespace, or of all', () => {
    const cache = new PodCache();
    for (const p of [pod('a', container('a')), pod('b', container('b'))]) cache.upsert(p);
    cache.upsert({ ...pod('c', container('c')), namespace: 'other' });
    assert.deepEqual(cache.keysIn('team'), ['team/a', 'team/b']);
    assert.deepEqual(cache.keysIn(undefined), ['team/a', 'team/b', 'other/c']);
    assert.deepEqual(cache.keysIn('none'), []);
  });
});
