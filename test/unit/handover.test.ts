import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { mayHaveUnreportedStops, stopEventName, unreportedStops } from '../../src/domain/handover.ts';
import { container, nativeSidecar, phase, pod, running, T0, terminated, withApp } from './pod-fixtures.ts';

const catalog = loadCatalog(DEFAULT_CATALOG_PATH);
const window = { from: T0 - 30_000, to: T0 + 30_000 };

describe('hand-over: stops a previous leader did not report', () => {
  it('finds catalog sidecars that terminated after the main container, within the window', () => {
    const p = pod(
      'job-1',
      withApp('job'),
      terminated('job', 0, T0),
      terminated('linkerd-proxy', 0, T0 + 1000),
      terminated('cloudsql-proxy', 130, T0 + 2000, 1),
      phase('Failed'),
    );
    assert.deepEqual(unreportedStops(p, catalog, window), [
      { container: 'linkerd-proxy', exitCode: 0, restartCount: 0 },
      { container: 'cloudsql-proxy', exitCode: 130, restartCount: 1 },
    ]);
  });

  it('leaves out sidecars still running, unknown containers, ones that ended before the main container, and ends outside the window', () => {
    const p = pod(
      'job-1',
      withApp('job'),
      terminated('job', 0, T0),
      running('istio-proxy'),
      terminated('my-agent', 0, T0 + 1000),
      terminated('vks-sidecar', 0, T0 - 1000),
      terminated('linkerd-proxy', 0, T0 + 31_000),
    );
    assert.deepEqual(unreportedStops(p, catalog, window), []);
  });

  it('finds nothing while a main container runs, or in a pod without one', () => {
    assert.deepEqual(unreportedStops(pod('job-1', withApp('job'), running('job'), terminated('linkerd-proxy', 0, T0)), catalog, window), []);
    assert.deepEqual(unreportedStops(pod('job-1', terminated('linkerd-proxy', 0, T0)), catalog, window), []);
  });

  it('only a pod with a regular catalog sidecar may have stops to report, whatever its state', () => {
    const cases: [string, boolean, ReturnType<typeof pod>][] = [
      ['a catalog sidecar, running', true, pod('job-1', withApp('job'), terminated('job', 0, T0), running('linkerd-proxy'))],
      ['a catalog sidecar, not started yet', true, pod('job-1', withApp('job'), running('job'), container('cloudsql-proxy'))],
      ['only sidecars made native', false, pod('job-1', withApp('job'), terminated('job', 0, T0), nativeSidecar('vks-sidecar'))],
      ['only a container the catalog does not know', false, pod('job-1', withApp('job'), terminated('job', 0, T0), running('my-agent'))],
      ['no sidecar', false, pod('job-1', withApp('job'), terminated('job', 0, T0))],
      ['no main container to judge by', false, pod('job-1', withApp('gone'), running('job'), running('linkerd-proxy'))],
    ];
    for (const [name, expected, p] of cases) assert.equal(mayHaveUnreportedStops(p, catalog), expected, name);
  });

  it('names the stop event the same on every replica, apart per incarnation of the sidecar, within 253 characters', () => {
    const a = stopEventName({ name: 'job-1', uid: 'u1' }, 'linkerd-proxy', 0);
    assert.equal(a, stopEventName({ name: 'job-1', uid: 'u1' }, 'linkerd-proxy', 0));
    assert.match(a, /^job-1\.[0-9a-f]{16}$/);
    assert.notEqual(a, stopEventName({ name: 'job-1', uid: 'u1' }, 'linkerd-proxy', 1));
    assert.notEqual(a, stopEventName({ name: 'job-1', uid: 'u2' }, 'linkerd-proxy', 0));
    assert.notEqual(a, stopEventName({ name: 'job-1', uid: 'u1' }, 'istio-proxy', 0));
    assert.equal(stopEventName({ name: 'x'.repeat(253), uid: 'u1' }, 'linkerd-proxy', 0).length, 253);
  });
});
