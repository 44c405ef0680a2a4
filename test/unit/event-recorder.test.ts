import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { ApiError } from '../../src/kube/kube-client.ts';
import type { EventSink, PodEvent } from '../../src/ports.ts';
import { EventRecorder, isTransientPostError } from '../../src/record/event-recorder.ts';
import { Metrics } from '../../src/record/metrics.ts';

const event: PodEvent = {
  pod: { namespace: 'team', name: 'job-1', uid: 'uid-1' },
  type: 'Normal',
  reason: 'Killing',
  action: 'Killing',
  message: 'Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)',
};

/** A sink whose first `failures` creates throw `error`. */
function flakySink(failures: number, error: () => unknown): EventSink & { tries: number; created: number } {
  return {
    tries: 0,
    created: 0,
    async create() {
      this.tries += 1;
      if (this.tries <= failures) throw error();
      this.created += 1;
      return { name: `ev-${this.created}` };
    },
    async repeat() {},
  };
}

async function unsuccessful(metrics: Metrics): Promise<number> {
  return (await metrics.registry.getSingleMetric('hahaha_total_unsuccessful_event_posts')?.get())?.values[0]?.value ?? 0;
}

const log = pino({ level: 'silent' });
const network = () => new Error('connect ECONNREFUSED 127.0.0.1:6443');

describe('event recorder', () => {
  it('tries a post again while the API server is away, and the event is not lost', async () => {
    const sink = flakySink(3, network);
    const metrics = new Metrics({ defaultMetrics: false });
    await new EventRecorder(sink, metrics, log, () => new Date(), [5, 5, 5, 5]).record(event);
    assert.equal(sink.created, 0, 'record returns after the first try');
    await sleep(100);
    assert.equal(sink.tries, 4);
    assert.equal(sink.created, 1);
    assert.equal(await unsuccessful(metrics), 0);
  });

  it('an event with a fixed name whose earlier try landed although its answer was lost is not posted twice', async () => {
    const taken = new Set<string>();
    let tries = 0;
    const sink: EventSink = {
      async create(e) {
        tries += 1;
        const name = e.name as string;
        if (taken.has(name)) return { name, existed: true };
        taken.add(name);
        if (tries === 1) throw network(); // landed, but the answer was lost
        return { name };
      },
      async repeat() {},
    };
    const metrics = new Metrics({ defaultMetrics: false });
    const recorder = new EventRecorder(sink, metrics, log, () => new Date(), [5, 5]);
    assert.equal(await recorder.record({ ...event, name: 'job-1.0123456789abcdef' }), 'not-posted');
    await sleep(50);
    assert.equal(tries, 2, 'one retry, answered AlreadyExists, and no further one');
    assert.equal(await unsuccessful(metrics), 0);
    // Another replica (a successor) posting it again under the same name.
    const successor = new EventRecorder(sink, metrics, log, () => new Date(), [5, 5]);
    assert.equal(await successor.record({ ...event, name: 'job-1.0123456789abcdef' }), 'already-posted');
  });

  it('gives up after its tries and counts the post as unsuccessful', async () => {
    const sink = flakySink(99, () => Object.assign(new Error('etcdserver: leader changed'), { status: 500 }));
    const metrics = new Metrics({ defaultMetrics: false });
    await new EventRecorder(sink, metrics, log, () => new Date(), [5, 5]).record(event);
    await sleep(100);
    assert.equal(sink.tries, 3);
    assert.equal(await unsuccessful(metrics), 1);
  });

  it('does not ask again when the API server refuses the event (4xx)', async () => {
    const sink = flakySink(1, () => Object.assign(new Error('events is forbidden'), { status: 403 }));
    const metrics = new Metrics({ defaultMetrics: false });
    await new EventRecorder(sink, metrics, log, () => new Date(), [5]).record(event);
    await sleep(50);
    assert.equal(sink.tries, 1);
    assert.equal(await unsuccessful(metrics), 1);
  });

  it('posts once-per-pod events in the background two at a time, and a stop event does not wait behind them', async () => {
    // A restart sees every running pod anew: thousands of once-per-pod posts at once. Each
    // background create here is held until the test lets it answer.
    const order: string[] = [];
    const held: (() => void)[] = [];
    let inFlight = 0;
    let most = 0;
    const sink: EventSink = {
      async create(e) {
        order.push(e.message);
        if (e.message === 'stop') return { name: 'stop' };
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise<void>((resolve) => held.push(resolve));
        inFlight -= 1;
        return { name: e.message, existed: true };
      },
      async repeat() {},
    };
    const recorder = new EventRecorder(sink, new Metrics({ defaultMetrics: false }), log);
    const once = Array.from({ length: 20 }, (_, i) =>
      recorder.record({ ...event, pod: { ...event.pod, uid: `uid-${i}` }, message: `once ${i}`, name: `once-${i}` }, { background: true }),
    );
    await sleep(1);
    assert.deepEqual(order, ['once 0', 'once 1']);
    // The stop's post is sent at once, beside the two background posts in flight.
    assert.equal(await recorder.record({ ...event, message: 'stop' }), 'posted');
    assert.deepEqual(order, ['once 0', 'once 1', 'stop']);
    while (order.length < 21 || held.length > 0) {
      held.shift()?.();
      await sleep(0);
    }
    assert.deepEqual(new Set(await Promise.all(once)), new Set(['already-posted']));
    // Background posts kept their order, never more than two at a time.
    assert.deepEqual(
      order.filter((m) => m !== 'stop'),
      Array.from({ length: 20 }, (_, i) => `once ${i}`),
    );
    assert.equal(most, 2);
  });

  it('isTransientPostError: no status, 5xx, 429 and a 403 of an API server not ready to authorize are transient; other 4xx are not', () => {
    assert.deepEqual(
      [
        network(),
        { status: 500 },
        { status: 503 },
        { status: 429 },
        new ApiError(403, 'events is forbidden', '', '/readyz answered HTTP 500'),
        new ApiError(403, 'events is forbidden'),
        { status: 422 },
        { status: 404 },
      ].map(isTransientPostError),
      [true, true, true, true, true, false, false, false],
    );
  });
});
