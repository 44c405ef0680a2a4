/**
 * The controller's hand-over, with fakes of the kube-facing interfaces: where a replica that
 * begins to lead looks for the stops its predecessor did not report.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { ReaperController } from '../../src/controller/reaper-controller.ts';
import type { PodView } from '../../src/domain/pod-view.ts';
import type { PodCache } from '../../src/pod-cache.ts';
import type { EventSink, LeaseLock, LeaseRecord, PodEvent, PodReader, PodRef, PodWatch, PodWatchEvents } from '../../src/ports.ts';
import { EventRecorder } from '../../src/record/event-recorder.ts';
import { Metrics } from '../../src/record/metrics.ts';
import { createRegistry } from '../../src/strategies/registry.ts';
import { linkerdShutdown, nativeSidecar, phase, pod, terminated, withApp } from './pod-fixtures.ts';

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !check(); i++) await sleep(20);
  assert.ok(check(), `timed out waiting for ${what}`);
}

/** A lease nobody holds: the controller wins it at once. */
function freeLease(): LeaseLock {
  let stored: { record: LeaseRecord; version: number } | undefined;
  return {
    async get() {
      return stored === undefined ? undefined : { record: stored.record, version: String(stored.version) };
    },
    async create(record) {
      stored = { record, version: 1 };
      return '1';
    },
    async update(record) {
      stored = { record, version: (stored?.version ?? 0) + 1 };
      return String(stored.version);
    },
    describe: () => 'test/lease',
  };
}

/** A pod that finished a moment ago, its linkerd-proxy stopped after its main container. */
function finished(name: string): PodView {
  const now = Date.now();
  return pod(name, withApp(name), linkerdShutdown, terminated(name, 0, now - 6000), terminated('linkerd-proxy', 0, now - 5000), phase('Succeeded'));
}

function world(syncedAt: number | undefined, finishedPods: readonly PodView[]) {
  const reads: string[] = [];
  const lists: string[] = [];
  const events: PodEvent[] = [];
  let watchEvents: PodWatchEvents | undefined;
  let podCache: PodCache | undefined;
  const reader: PodReader = {
    async read(ref: PodRef) {
      reads.push(ref.name);
      return finishedPods.find((p) => p.uid === ref.uid);
    },
    async listFinished(onPod) {
      lists.push('finished');
      for (const p of finishedPods) await onPod(p);
    },
  };
  const sink: EventSink = {
    async create(event) {
      events.push(event);
      return { name: event.name ?? 'ev' };
    },
    async repeat() {},
  };
  const metrics = new Metrics({ defaultMetrics: false });
  const log = pino({ level: 'silent' });
  const unused = async (): Promise<never> => {
    throw new Error('no stop is asked for in these tests');
  };
  const controller = new ReaperController({
    watch: (c: PodCache, e: PodWatchEvents): PodWatch => {
      watchEvents = e;
      podCache = c;
      return { start() {}, async stop() {}, synced: true, syncedAt };
    },
    reader,
    catalog: loadCatalog(DEFAULT_CATALOG_PATH),
    strategies: createRegistry({ portForwarder: { request: unused }, executor: { exec: unused } }),
    events: new EventRecorder(sink, metrics, log),
    metrics,
    log,
    maxConcurrentPods: 4,
    retry: { baseMs: 1000, maxMs: 10_000 },
    verifyTimeoutMs: 10_000,
    leaderElection: { lock: freeLease(), identity: 'me', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 100 },
  });
  return { controller, reads, lists, events, cache: () => podCache, left: (p: PodView) => watchEvents?.onDelete(`${p.namespace}/${p.name}`, p) };
}

describe('reaper controller: hand-over', () => {
  it('a replica that has watched through the window reads the pods that left its watch, and lists nothing', async () => {
    const pods = [finished('a'), finished('b')];
    const w = world(Date.now() - 10 * 60_000, pods);
    for (const p of pods) w.left(p);
    w.controller.start();
    await until('the reported stops', () => w.events.length === 2);
    assert.deepEqual(w.reads.sort(), ['a', 'b']);
    assert.deepEqual(w.lists, []);
    assert.ok(w.events.every((e) => /reported by the next leader/.test(e.message)));
    await w.controller.stop(1000);
  });

  it('pods that left without a sidecar hahaha stops (converted, or none) are not read for the hand-over', async () => {
    const now = Date.now();
    const converted = pod('c', withApp('c'), nativeSidecar('vks-sidecar'), terminated('c', 0, now - 6000), phase('Succeeded'));
    const bare = pod('d', withApp('d'), terminated('d', 0, now - 6000), phase('Succeeded'));
    const pods = [finished('a'), converted, bare];
    const w = world(Date.now() - 10 * 60_000, pods);
    for (const p of pods) w.left(p);
    w.controller.start();
    try {
      await until('the reported stop', () => w.events.length === 1);
      await sleep(50);
      assert.deepEqual(w.reads, ['a']);
      assert.deepEqual(w.lists, []);
    } finally {
      await w.controller.stop(1000);
    }
  });

  it('a replica whose watch is down as it begins to lead lists the finished pods: the ones that left meanwhile are not known yet', async () => {
    const pods = [finished('a')];
    const w = world(Date.now() - 10 * 60_000, pods);
    w.cache()?.markStale('*');
    w.controller.start();
    await until('the reported stop', () => w.events.length === 1);
    assert.deepEqual(w.lists, ['finished']);
    assert.deepEqual(w.reads, []);
    await w.controller.stop(1000);
  });

  it('a replica that has just started lists the finished pods once', async () => {
    const pods = [finished('a')];
    const w = world(Date.now() - 1000, pods);
    w.left(pods[0] as PodView);
    w.controller.start();
    await until('the reported stop', () => w.events.length === 1);
    assert.deepEqual(w.lists, ['finished']);
    assert.deepEqual(w.reads, []);
    await w.controller.stop(1000);
  });
});
