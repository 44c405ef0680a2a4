/**
 * A keyed work queue: at most one worker per key, bounded concurrency across keys (p-queue),
 * per-key exponential backoff on retry. Like client-go's workqueue, a key added while it is
 * being handled is marked dirty and handled once more afterwards, so no update is lost and no
 * pod is handled by two workers at once.
 */
import PQueue from 'p-queue';
import { type RetryPolicy, retryDelayMs } from './retry-policy.ts';

/**
 * What a handler says about its key: done; retry with backoff (a transient failure); permanent
 * (controller-runtime's TerminalError): asking again cannot help until the pod changes, so the
 * key is only rechecked slowly, after `permanentRecheckMs`, or when it is added again; or later
 * (controller-runtime's RequeueAfter): nothing failed, the key is handled again after `afterMs`
 * (a sidecar that drains before it exits), or sooner when it is added again.
 */
export type WorkResult =
  | { readonly kind: 'done' }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'permanent'; readonly reason: string }
  | { readonly kind: 'later'; readonly afterMs: number; readonly reason: string };

export interface WorkQueueOptions {
  readonly concurrency: number;
  readonly retry: RetryPolicy;
  /** Delay of the slow recheck after a permanent failure. @default 600000 (10 minutes) */
  readonly permanentRecheckMs?: number;
  readonly handler: (key: string, signal: AbortSignal) => Promise<WorkResult>;
  /** Called when a handler throws; the key is then retried like a 'retry' result. */
  readonly onError?: (key: string, err: unknown) => void;
  /** Called whenever the number of waiting or running keys changes. */
  readonly onStats?: (stats: { waiting: number; running: number }) => void;
  readonly random?: () => number;
}

export class WorkQueue {
  private readonly queue: PQueue;
  private readonly opts: WorkQueueOptions;
  private readonly waiting = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(opts: WorkQueueOptions) {
    this.opts = opts;
    this.queue = new PQueue({ concurrency: opts.concurrency, autoStart: true });
  }

  /** Handles the key as soon as a worker is free (now, unless it is already waiting). */
  add(key: string): void {
    if (this.stopped) return;
    this.clearTimer(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.stats();
    void this.queue.add(() => this.work(key));
  }

  /** Handles the key after `delayMs`, unless something adds it sooner. */
  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    this.clearTimer(key);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Forgets the key's failures and pending retry (the pod is gone). */
  forget(key: string): void {
    this.clearTimer(key);
    this.failures.delete(key);
    this.dirty.delete(key);
  }

  /** Stops handing out work (keys stay queued); for a replica that is not the leader. */
  pause(): void {
    this.queue.pause();
  }

  resume(): void {
    if (!this.stopped) this.queue.start();
  }

  get size(): { waiting: number; running: number; delayed: number } {
    return { waiting: this.waiting.size, running: this.running.size, delayed: this.timers.size };
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * Stops taking new work and waits up to `graceMs` for running handlers; then aborts the
   * signal handed to them. Resolves true when everything finished within the grace period.
   */
  async shutdown(graceMs: number): Promise<boolean> {
    this.stopped = true;
    for (const key of [...this.timers.keys()]) this.clearTimer(key);
    this.queue.pause();
    this.queue.clear();
    this.waiting.clear();
    this.stats();
    const idle = this.running.size === 0 ? Promise.resolve() : this.queue.onIdle();
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([
      idle.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!inTime) this.abort.abort(new Error('shutting down'));
    return inTime;
  }

  private async work(key: string): Promise<void> {
    this.waiting.delete(key);
    if (this.stopped) return;
    this.running.add(key);
    this.stats();
    let result: WorkResult;
    try {
      result = await this.opts.handler(key, this.abort.signal);
    } catch (err) {
      this.opts.onError?.(key, err);
      result = { kind: 'retry', reason: 'handler threw' };
    }
    this.running.delete(key);
    if (result.kind === 'retry') {
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      if (!this.dirty.has(key)) this.addAfter(key, retryDelayMs(this.opts.retry, failures, this.opts.random));
    } else {
      this.failures.delete(key);
      if (result.kind === 'permanent' && !this.dirty.has(key)) this.addAfter(key, this.opts.permanentRecheckMs ?? 600_000);
      if (result.kind === 'later' && !this.dirty.has(key)) this.addAfter(key, result.afterMs);
    }
    if (this.dirty.delete(key)) this.add(key);
    this.stats();
  }

  private clearTimer(key: string): void {
    const t = this.timers.get(key);
    if (t !== undefined) {
      clearTimeout(t.timer);
      this.timers.delete(key);
    }
  }

  private stats(): void {
    this.opts.onStats?.({ waiting: this.waiting.size, running: this.running.size });
  }
}
