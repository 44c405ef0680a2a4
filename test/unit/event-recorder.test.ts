import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
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

  it('isTransientPostError: no status, 5xx and 429 are transient; other 4xx are not', () => {
    assert.deepEqual(
      [network(), { status: 500 }, { status: 503 }, { status: 429 }, { status: 403 }, { status: 422 }, { status: 404 }].map(isTransientPostError),
      [true, true, true, true, false, false, false],
    );
  });
});
