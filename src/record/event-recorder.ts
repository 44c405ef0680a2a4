/**
 * Posts Events about pods without storms: an event repeated for the same pod (same type, reason
 * and message) increments the existing event's series instead of creating a new object.
 * Never throws. A post that fails because the API server is away (no answer, 5xx, 429) or not
 * ready to authorize yet (a 403 while its RBAC caches load) is tried again in the background for
 * about half a minute (an API server restart), so that the event of a stop is not lost; one that
 * still fails, or is refused (4xx), is logged and counted (hahaha_total_unsuccessful_event_posts).
 *
 * What is said once per pod (native conversion, preflight, an unsupported sidecar) is posted in
 * the background, a few at a time: a restart or a new leader sees every running pod anew and
 * says it all again (answered AlreadyExists), and thousands of such posts must not queue the
 * stops' events and pod reads behind them in the shared connection pool.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import type { EventSink, PodEvent } from '../ports.ts';
import type { Metrics } from './metrics.ts';

interface Posted {
  readonly name: string;
  count: number;
}

/** What post() returns for an event whose fixed name was taken: it was posted before. */
const ALREADY_POSTED = Symbol('already posted');

/** Bound on remembered events; the pod remembered longest is forgotten first. */
const MAX_REMEMBERED = 10_000;
/** Waits before each further try of a post that failed transiently: 31 s in all. */
const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000];
/** Background posts in flight at once: 2 of the client's 16 pooled connections. */
const BACKGROUND_IN_FLIGHT = 2;

/**
 * How a record went: posted (or repeated); already posted under its fixed name (by this replica
 * in a try whose answer was lost, or by a previous leader); not posted yet or at all.
 */
export type RecordOutcome = 'posted' | 'already-posted' | 'not-posted';

/**
 * Whether a failed post may succeed later: no answer at all, the server's 5xx or 429, or a
 * refusal from an API server not ready to authorize yet (the client's ApiError.notReady).
 */
export function isTransientPostError(err: unknown): boolean {
  const { status, notReady } = (err ?? {}) as { status?: unknown; notReady?: unknown };
  return typeof status !== 'number' || status >= 500 || status === 429 || notReady !== undefined;
}

export class EventRecorder {
  /** Posted events by pod uid, then by type, reason and message. */
  private readonly posted = new Map<string, Map<string, Posted>>();
  private remembered = 0;
  private readonly sink: EventSink;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly retryDelaysMs: readonly number[];
  /** Background posts, oldest first, BACKGROUND_IN_FLIGHT at a time. */
  private readonly background = new PQueue({ concurrency: BACKGROUND_IN_FLIGHT });

  constructor(sink: EventSink, metrics: Metrics, log: Logger, now: () => Date = () => new Date(), retryDelaysMs: readonly number[] = RETRY_DELAYS_MS) {
    this.sink = sink;
    this.metrics = metrics;
    this.log = log;
    this.now = now;
    this.retryDelaysMs = retryDelaysMs;
  }

  /**
   * Resolves after the first try; transient failures are retried in the background. With
   * `background`, the first try waits its turn among the other background posts.
   */
  async record(event: PodEvent, opts: { readonly background?: boolean } = {}): Promise<RecordOutcome> {
    if (opts.background !== true) return this.firstTry(event);
    return this.background.add(() => this.firstTry(event));
  }

  private async firstTry(event: PodEvent): Promise<RecordOutcome> {
    const err = await this.post(event);
    if (err === undefined) return 'posted';
    if (err === ALREADY_POSTED) return 'already-posted';
    if (isTransientPostError(err) && this.retryDelaysMs.length > 0) {
      this.log.debug({ err, namespace: event.pod.namespace, pod: event.pod.name }, 'could not post event; trying again');
      void this.retry(event, 0);
      return 'not-posted';
    }
    this.gaveUp(event, err);
    return 'not-posted';
  }

  private async retry(event: PodEvent, n: number): Promise<void> {
    await sleep(this.retryDelaysMs[n] ?? 0, undefined, { ref: false });
    const err = await this.post(event);
    if (err === undefined || err === ALREADY_POSTED) return;
    if (isTransientPostError(err) && n + 1 < this.retryDelaysMs.length) return this.retry(event, n + 1);
    this.gaveUp(event, err);
  }

  private gaveUp(event: PodEvent, err: unknown): void {
    this.metrics.unsuccessfulEventPosts.inc();
    this.log.warn({ err, namespace: event.pod.namespace, pod: event.pod.name, type: event.type, message: event.message }, 'could not post event');
  }

  /** One try; the error when it failed. */
  private async post(event: PodEvent): Promise<unknown> {
    const key = `${event.type}\u0000${event.reason}\u0000${event.message}`;
    const ofPod = this.posted.get(event.pod.uid);
    const seen = ofPod?.get(key);
    try {
      if (seen !== undefined) {
        const count = seen.count + 1;
        await this.sink.repeat(event.pod.namespace, seen.name, count, this.now());
        seen.count = count;
        return;
      }
      const { name, existed } = await this.sink.create(event, this.now());
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
      if (existed === true) return ALREADY_POSTED;
    } catch (err) {
      return err;
    }
    return undefined;
  }

  /** Drops what is remembered about a pod once it is gone. */
  forgetPod(uid: string): void {
    this.remembered -= this.posted.get(uid)?.size ?? 0;
    this.posted.delete(uid);
  }
}
