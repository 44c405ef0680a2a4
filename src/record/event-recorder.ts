/**
 * Posts Events about pods without storms: an event repeated for the same pod (same type, reason
 * and message) increments the existing event's series instead of creating a new object.
 * Never throws: a failed post is logged and counted (hahaha_total_unsuccessful_event_posts).
 */
import type { Logger } from 'pino';
import type { EventSink, PodEvent } from '../ports.ts';
import type { Metrics } from './metrics.ts';

interface Posted {
  readonly name: string;
  count: number;
}

/** Bound on remembered events; the oldest is forgotten first. */
const MAX_REMEMBERED = 10_000;

export class EventRecorder {
  private readonly posted = new Map<string, Posted>();
  private readonly sink: EventSink;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(sink: EventSink, metrics: Metrics, log: Logger, now: () => Date = () => new Date()) {
    this.sink = sink;
    this.metrics = metrics;
    this.log = log;
    this.now = now;
  }

  async record(event: PodEvent): Promise<void> {
    const key = `${event.pod.uid}\u0000${event.type}\u0000${event.reason}\u0000${event.message}`;
    const seen = this.posted.get(key);
    try {
      if (seen !== undefined) {
        seen.count += 1;
        await this.sink.repeat(event.pod.namespace, seen.name, seen.count, this.now());
        return;
      }
      const { name } = await this.sink.create(event, this.now());
      this.posted.set(key, { name, count: 1 });
      if (this.posted.size > MAX_REMEMBERED) {
        const oldest = this.posted.keys().next().value;
        if (oldest !== undefined) this.posted.delete(oldest);
      }
    } catch (err) {
      this.metrics.unsuccessfulEventPosts.inc();
      this.log.warn(
        { err, namespace: event.pod.namespace, pod: event.pod.name, type: event.type, message: event.message },
        'could not post event',
      );
    }
  }

  /** Drops what is remembered about a pod once it is gone. */
  forgetPod(uid: string): void {
    for (const key of this.posted.keys()) {
      if (key.startsWith(`${uid}\u0000`)) this.posted.delete(key);
    }
  }
}
