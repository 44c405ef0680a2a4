/**
 * The reaper: source → queue → reconciler, gated by leader election. Owns the pod cache, the
 * keyed work queue and the reconciler, and decides when work may run:
 * - without election it acts from the start;
 * - with election every replica keeps its cache warm, but only the leader queues and acts; a
 *   replica that becomes leader queues every cached pod, and one that stops leading aborts its
 *   in-flight attempts at once.
 * - whenever it begins to act (start, or a lease won), it reports the stops a previous leader
 *   made but had no time to report (domain/handover.ts): in the pods it reconciles first, and in
 *   the pods that finished within the hand-over window. A replica that has watched through the
 *   whole window knows those: they left its watch, and it reads just them. One that has not (it
 *   has just started) lists the finished pods once.
 * It never builds kube adapters: the daemon passes the pod watch factory and the lease lock.
 */
import type { Logger } from 'pino';
import type { Catalog } from '../domain/catalog.ts';
import { mayHaveUnreportedStops } from '../domain/handover.ts';
import type { PodView } from '../domain/pod-view.ts';
import { LeaderElector } from '../leader/elector.ts';
import { PodCache } from '../pod-cache.ts';
import type { LeaseLock, PodReader, PodRef, PodWatch, PodWatchEvents } from '../ports.ts';
import { Reconciler } from '../reconcile/reconciler.ts';
import { WorkQueue } from '../reconcile/work-queue.ts';
import type { EventRecorder } from '../record/event-recorder.ts';
import type { Metrics } from '../record/metrics.ts';
import type { StrategyRegistry } from '../strategies/registry.ts';

export interface LeaderElectionOptions {
  readonly lock: LeaseLock;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export interface ReaperControllerOptions {
  /** Builds the pod watch that fills `cache` and reports changes to `events`. */
  readonly watch: (cache: PodCache, events: PodWatchEvents) => PodWatch;
  /** Reads a pod that left the watch, to see the state it finished in. */
  readonly reader: PodReader;
  readonly catalog: Catalog;
  readonly strategies: StrategyRegistry;
  readonly events: EventRecorder;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly maxConcurrentPods: number;
  readonly retry: { readonly baseMs: number; readonly maxMs: number };
  readonly verifyTimeoutMs: number;
  /** Decide and record only (see ReconcilerDeps.dryRun). */
  readonly dryRun?: boolean;
  /** Exec attempts in distroless images run in an ephemeral container. */
  readonly ephemeralSignal?: boolean;
  /** Absent: act without leader election. */
  readonly leaderElection?: LeaderElectionOptions;
}

/** Lease duration assumed for a hand-over when running without election (the default). */
const DEFAULT_LEASE_MS = 15_000;
/** Added to how far back a hand-over looks: a replica's restart, clocks in whole seconds. */
const HANDOVER_MARGIN_MS = 30_000;
/** More pods finished within a hand-over window than this are listed (one paginated list), not read one by one. */
const MAX_HANDOVER_READS = 500;

export class ReaperController {
  private readonly cache = new PodCache();
  private readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly watch: PodWatch;
  private readonly elector: LeaderElector | undefined;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly reader: PodReader;
  private readonly catalog: Catalog;
  private readonly dryRun: boolean;
  private readonly handoverLookbackMs: number;
  private readonly verifyTimeoutMs: number;
  /** Aborted when this replica stops leading: in-flight attempts stop at once. */
  private term = new AbortController();
  /**
   * The pods that left the watch (they finished) within the hand-over lookback, oldest first. Any
   * pod that left with a sidecar hahaha stops, not only those seen with their main containers
   * ended: the watch may have been down while a previous leader reaped one.
   */
  private readonly recentlyLeft = new Map<string, { readonly ref: PodRef; readonly at: number }>();

  constructor(opts: ReaperControllerOptions) {
    const { metrics, log } = opts;
    this.metrics = metrics;
    this.log = log;
    this.reader = opts.reader;
    this.catalog = opts.catalog;
    this.dryRun = opts.dryRun === true;
    this.verifyTimeoutMs = opts.verifyTimeoutMs;
    this.handoverLookbackMs = (opts.leaderElection?.leaseDurationMs ?? DEFAULT_LEASE_MS) + opts.verifyTimeoutMs + HANDOVER_MARGIN_MS;
    this.reconciler = new Reconciler({
      store: this.cache,
      reader: opts.reader,
      catalog: opts.catalog,
      strategies: opts.strategies,
      events: opts.events,
      metrics,
      log,
      verifyTimeoutMs: opts.verifyTimeoutMs,
      ...(opts.dryRun !== undefined && { dryRun: opts.dryRun }),
      ...(opts.ephemeralSignal !== undefined && { ephemeralSignal: opts.ephemeralSignal }),
    });
    this.queue = new WorkQueue({
      concurrency: opts.maxConcurrentPods,
      retry: opts.retry,
      handler: (key, signal) => this.reconciler.reconcile(key, AbortSignal.any([signal, this.term.signal])),
      onError: (key, err) => log.error({ err, key }, 'reconcile threw'),
      onStats: ({ waiting, running }) => {
        metrics.queueDepth.set(waiting);
        metrics.inFlight.set(running);
      },
    });
    this.watch = opts.watch(this.cache, {
      // A standby queues nothing, so its queue metrics stay at zero; it queues every cached pod
      // when it becomes leader.
      onUpsert: (key) => {
        const pod = this.cache.get(key);
        if (pod !== undefined) this.reconciler.noteUpdate(pod);
        if (this.isLeader) this.queue.add(key);
      },
      onDelete: (key, pod) => {
        this.queue.forget(key);
        this.reconciler.left(pod);
        this.rememberLeft(pod);
      },
      onMalformed: (info) => {
        metrics.skippedPods.inc({ reason: 'malformed' });
        log.warn({ namespace: info.namespace, pod: info.name, uid: info.uid, reason: info.reason }, 'skipping malformed pod');
      },
    });

    const election = opts.leaderElection;
    if (election === undefined) {
      metrics.leader.set(1);
      return;
    }
    this.queue.pause();
    metrics.leader.set(0);
    this.elector = new LeaderElector(
      election.lock,
      {
        identity: election.identity,
        leaseDurationMs: election.leaseDurationMs,
        renewDeadlineMs: election.renewDeadlineMs,
        retryPeriodMs: election.retryPeriodMs,
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => this.stopLeading(),
      },
      log,
    );
  }

  /** True while this replica may act: it holds the lease, or runs without election. */
  get isLeader(): boolean {
    return this.elector?.isLeader ?? true;
  }

  /** True once the first pod list has been read (the daemon's /readyz). */
  get synced(): boolean {
    return this.watch.synced;
  }

  start(): void {
    this.watch.start();
    if (this.elector === undefined) this.beginHandover();
    this.elector?.start();
  }

  /**
   * Stops taking work, lets in-flight pods finish within `graceMs`, releases the lease and ends
   * the watch. Resolves with false when the grace period was over before in-flight work ended.
   */
  async stop(graceMs: number): Promise<boolean> {
    const inTime = await this.queue.shutdown(graceMs);
    await this.elector?.stop();
    await this.watch.stop();
    return inTime;
  }

  /**
   * This replica begins to act: the pods it reconciles next, and the finished ones listed now,
   * are checked for stops a previous leader made without reporting them.
   */
  private beginHandover(): void {
    if (this.dryRun) return;
    const now = Date.now();
    this.reconciler.beginHandover(now, this.handoverLookbackMs, this.verifyTimeoutMs);
    const term = this.term.signal;
    // A replica that has watched through the whole window saw every pod that finished in it leave
    // (a watch that was down meanwhile told them once it was back; one that is down now has not).
    const syncedAt = this.watch.syncedAt;
    const left = [...this.recentlyLeft.values()].filter((e) => e.at >= now - this.handoverLookbackMs).map((e) => e.ref);
    const watchedThrough = syncedAt !== undefined && syncedAt <= now - this.handoverLookbackMs && !this.cache.disruptedSince(now);
    if (watchedThrough && left.length <= MAX_HANDOVER_READS) {
      void this.reportLeft(left, term);
      return;
    }
    this.reader
      .listFinished?.(async (pod) => {
        if (!term.aborted) await this.reconciler.reportHandover(pod);
      })
      .catch((err: unknown) => this.log.warn({ error: (err as Error).message }, 'could not list finished pods for stops a previous leader did not report'));
  }

  /**
   * Reads the pods that left the watch within the hand-over window and checks them for
   * unreported stops: the finished pods such a stop can be in, without listing every finished
   * pod (the cluster's history, thousands of pods).
   */
  private async reportLeft(refs: readonly PodRef[], term: AbortSignal): Promise<void> {
    this.log.info({ pods: refs.length }, 'checking the pods that finished within the hand-over window for stops a previous leader did not report');
    for (const ref of refs) {
      if (term.aborted) return;
      try {
        const pod = await this.reader.read(ref);
        if (pod !== undefined && !term.aborted) await this.reconciler.reportHandover(pod);
      } catch (err) {
        this.log.warn(
          { namespace: ref.namespace, pod: ref.name, error: (err as Error).message },
          'could not read a finished pod for stops a previous leader did not report',
        );
      }
    }
  }

  /** Keeps a pod that left the watch, for the next hand-over, if it has a sidecar hahaha stops. */
  private rememberLeft(pod: PodView): void {
    if (this.dryRun || pod.deletionTimestamp !== undefined || !mayHaveUnreportedStops(pod, this.catalog)) return;
    const now = Date.now();
    this.recentlyLeft.delete(pod.uid);
    this.recentlyLeft.set(pod.uid, { ref: { namespace: pod.namespace, name: pod.name, uid: pod.uid }, at: now });
    for (const [uid, e] of this.recentlyLeft) {
      if (e.at >= now - this.handoverLookbackMs) break;
      this.recentlyLeft.delete(uid);
    }
  }

  private startLeading(): void {
    this.term = new AbortController();
    this.beginHandover();
    this.metrics.leader.set(1);
    for (const key of this.cache.keys()) this.queue.add(key);
    this.queue.resume();
  }

  private stopLeading(): void {
    this.metrics.leader.set(0);
    this.queue.pause();
    this.term.abort(new Error('lost leadership'));
  }
}
