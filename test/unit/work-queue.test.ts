import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { retryDelayMs } from '../../src/reconcile/retry-policy.ts';
import { WorkQueue, type WorkResult } from '../../src/reconcile/work-queue.ts';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('retry policy', () => {
  const policy = { baseMs: 1000, maxMs: 60_000 };
  it('doubles per failure, with jitter in the upper half', () => {
    assert.equal(
      retryDelayMs(policy, 1, () => 0),
      500,
    );
    assert.equal(
      retryDelayMs(policy, 1, () => 1),
      1000,
    );
    assert.equal(
      retryDelayMs(policy, 3, () => 1),
      4000,
    );
    assert.equal(
      retryDelayMs(policy, 3, () => 0),
      2000,
    );
  });
  it('is capped', () => {
    assert.equal(
      retryDelayMs(policy, 50, () => 1),
      60_000,
    );
    assert.equal(
      retryDelayMs(policy, 1000, () => 1),
      60_000,
    );
  });
});

describe('work queue', () => {
  it('dedupes a key added many times while it waits', async () => {
    const gate = deferred();
    const calls: string[] = [];
    const q = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 10, maxMs: 10 },
      handler: async (key) => {
        calls.push(key);
        if (key === 'block') await gate.promise;
        return { kind: 'done' };
      },
    });
    q.add('block');
    for (let i = 0; i < 5; i++) q.add('a');
    gate.resolve();
    await sleep(20);
    assert.deepEqual(calls, ['block', 'a']);
  });

  it('never runs one key twice at once; an add while running reruns it once after', async () => {
    const gate = deferred();
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const q = new WorkQueue({
      concurrency: 4,
      retry: { baseMs: 10, maxMs: 10 },
      handler: async () => {
        calls += 1;
        active += 1;
        maxActive = Math.max(maxActive, active);
        if (calls === 1) await gate.promise;
        active -= 1;
        return { kind: 'done' };
      },
    });
    q.add('p');
    await sleep(5);
    q.add('p');
    q.add('p');
    gate.resolve();
    await sleep(30);
    assert.equal(maxActive, 1);
    assert.equal(calls, 2);
  });

  it('handles different keys concurrently up to the limit', async () => {
    let active = 0;
    let maxActive = 0;
    const q = new WorkQueue({
      concurrency: 3,
      retry: { baseMs: 10, maxMs: 10 },
      handler: async () => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await sleep(20);
        active -= 1;
        return { kind: 'done' };
      },
    });
    for (let i = 0; i < 10; i++) q.add(`k${i}`);
    await sleep(150);
    assert.equal(maxActive, 3);
  });

  it('retries with growing backoff and resets after success', async () => {
    const times: number[] = [];
    let n = 0;
    const q = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 20, maxMs: 1000 },
      random: () => 1,
      handler: async (): Promise<WorkResult> => {
        times.push(Date.now());
        n += 1;
        return n < 4 ? { kind: 'retry', reason: 'x' } : { kind: 'done' };
      },
    });
    q.add('k');
    await sleep(300);
    assert.equal(times.length, 4);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    assert.ok((gaps[0] ?? 0) >= 18 && (gaps[1] ?? 0) >= 38 && (gaps[2] ?? 0) >= 78, `gaps ${gaps.join(',')}`);
    assert.equal(q.failuresOf('k'), 0);
  });

  it('a thrown handler is reported and retried', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const q = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 5, maxMs: 5 },
      onError: (_k, err) => errors.push(err),
      handler: async () => {
        n += 1;
        if (n === 1) throw new Error('boom');
        return { kind: 'done' };
      },
    });
    q.add('k');
    await sleep(50);
    assert.equal(errors.length, 1);
    assert.equal(n, 2);
  });

  it('holds work while paused and runs it on resume', async () => {
    const calls: string[] = [];
    const q = new WorkQueue({
      concurrency: 2,
      retry: { baseMs: 5, maxMs: 5 },
      handler: async (key) => {
        calls.push(key);
        return { kind: 'done' };
      },
    });
    q.pause();
    q.add('a');
    q.add('b');
    await sleep(10);
    assert.deepEqual(calls, []);
    q.resume();
    await sleep(10);
    assert.deepEqual(calls.sort(), ['a', 'b']);
  });

  it('a permanent result is not retried with backoff, only rechecked slowly or when the key is added again', async () => {
    let n = 0;
    const q = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 5, maxMs: 5 },
      permanentRecheckMs: 80,
      random: () => 1,
      handler: async (): Promise<WorkResult> => {
        n += 1;
        return { kind: 'permanent', reason: 'endpoint missing' };
      },
    });
    q.add('k');
    await sleep(40);
    assert.equal(n, 1, 'no backoff retry');
    assert.equal(q.failuresOf('k'), 0);
    q.add('k');
    await sleep(10);
    assert.equal(n, 2, 'a change of the pod handles it again');
    await sleep(120);
    assert.equal(n, 3, 'the slow recheck');
    await q.shutdown(10);
  });

  it('a later result runs the key again after its delay, or sooner when added, and is no failure', async () => {
    let n = 0;
    const q = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 5, maxMs: 5 },
      random: () => 1,
      handler: async (): Promise<WorkResult> => {
        n += 1;
        return n < 3 ? { kind: 'later', afterMs: 60, reason: 'a sidecar drains before it exits' } : { kind: 'done' };
      },
    });
    q.add('k');
    await sleep(30);
    assert.equal(n, 1, 'not before its delay');
    assert.equal(q.failuresOf('k'), 0);
    assert.equal(q.size.delayed, 1);
    await sleep(60);
    assert.equal(n, 2, 'after its delay');
    q.add('k');
    await sleep(10);
    assert.equal(n, 3, 'a change of the pod handles it at once');
    await sleep(100);
    assert.equal(n, 3, 'done: nothing more');
    assert.equal(q.size.delayed, 0);
    await q.shutdown(10);
  });

  it('forget cancels a pending retry', async () => {
    let n = 0;
    const q = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 30, maxMs: 30 },
      random: () => 1,
      handler: async (): Promise<WorkResult> => {
        n += 1;
        return { kind: 'retry', reason: 'x' };
      },
    });
    q.add('k');
    await sleep(5);
    q.forget('k');
    await sleep(60);
    assert.equal(n, 1);
  });

  it('shutdown lets in-flight work finish within the grace period, then aborts it', async () => {
    let aborted = false;
    const q = new WorkQueue({
      concurrency: 2,
      retry: { baseMs: 5, maxMs: 5 },
      handler: async (key, signal) => {
        if (key === 'quick') {
          await sleep(10);
          return { kind: 'done' };
        }
        await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
        aborted = signal.aborted;
        return { kind: 'done' };
      },
    });
    q.add('quick');
    assert.equal(await q.shutdown(100), true);
    const q2 = new WorkQueue({
      concurrency: 1,
      retry: { baseMs: 5, maxMs: 5 },
      handler: async (_key, signal) => {
        await new Promise<void>((r) => signal.addEventListener('abort', () => r()));
        aborted = signal.aborted;
        return { kind: 'done' };
      },
    });
    q2.add('slow');
    await sleep(5);
    assert.equal(await q2.shutdown(30), false);
    await sleep(5);
    assert.equal(aborted, true);
    q2.add('new');
    assert.deepEqual(q2.size, { waiting: 0, running: 0, delayed: 0 });
  });
});
