import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compactPod, internTable } from '../../src/domain/compact-pod.ts';
import { PodCache } from '../../src/pod-cache.ts';
import { args, container, ownedByJob, pod, running, terminated, withApp } from './pod-fixtures.ts';

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
});

describe('PodCache keeps repeated strings once', () => {
  it('stores an equal pod (compacted), and waiters get what is stored', () => {
    const p = pod('a', withApp('job'), container('job'), running('linkerd-proxy'), args('linkerd-proxy', '--x', '1'), ownedByJob('job'));
    assert.deepEqual(compactPod(p, internTable()), p);
    const cache = new PodCache();
    cache.upsert(p);
    assert.deepEqual(cache.get('team/a'), p);
  });
});
