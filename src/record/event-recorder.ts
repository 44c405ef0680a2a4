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

/** Bound on remembered events; the pod remembered longest is forgotten first. */
const MAX_REMEMBERED = 10_000;

export class EventRecorder {
  /** Posted events by pod uid, then by type, reason and message. */
  private readonly posted = new Map<string, Map<string, Posted>>();
  private remembered = 0;
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
    const key = `${event.type}\u0000${event.reason}\u0000${event.message}`;
    const ofPod = this.posted.get(event.pod.uid);
    const seen = ofPod?.get(key);
    try {
      if (seen !== undefined) {
        seen.count += 1;
        await this.sink.repeat(event.pod.namespace, seen.name, seen.count, this.now());
        return;
      }
      const { name } = await this.sink.create(event, this.now());
      // Looked up again: the pod may have been forgotten while the event was being posted.
      const current = this.posted.get(event.pod.uid) ?? new Map<string, Posted>();
      this.posted.set(event.pod.uid, current);
      if (!current.has(key)) this.remembered += 1;
      current.set(key, { name, count: 1 });
      while (this.remembered > MAX_REMEMBERED) {
        const oldest = this.posted.keys().next().value;
        if (oldest === undefined) break;
        this.forgetPod(oldest);
      }
    } catch (err) {
      this.metrics.unsuccessfulEventPosts.inc();
      this.log.warn({ err, namespace: event.pod.namespace, pod: event.pod.name, type: event.type, message: event.message }, 'could not post event');
    }
  }

  /** Drops what is remembered about a pod once it is gone. */
  forgetPod(uid: string): void {
    this.remembered -= this.posted.get(uid)?.size ?? 0;
    this.posted.delete(uid);
  }
}
