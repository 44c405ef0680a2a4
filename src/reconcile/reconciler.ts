/**
 * Reconcile one pod: read it from the cache as it is now, decide, act, verify, record.
 * Level-based and idempotent: it never depends on which watch event arrived, and a sidecar that
 * already terminated is simply no longer a target.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Attempt, Catalog } from '../domain/catalog.ts';
import { describeAttempt } from '../domain/catalog.ts';
import {
  type Decision,
  decide,
  findMainContainers,
  hasFinished,
  mainsFinishedAt,
  type ReapTarget,
  regularSidecars,
  statusOf,
  terminatedContainer,
} from '../domain/decide.ts';
import { type HandoverWindow, onceEventName, stopEventName, type UnreportedStop, unreportedStops } from '../domain/handover.ts';
import { convertedSidecars } from '../domain/native-conversion.ts';
import { APP_LABEL, type PodView, podKey } from '../domain/pod-view.ts';
import { predictPod } from '../domain/predict.ts';
import type { PodReader, PodRef, PodStore } from '../ports.ts';
import type { EventRecorder } from '../record/event-recorder.ts';
import type { Metrics } from '../record/metrics.ts';
import { runAttempt, type StrategyRegistry } from '../strategies/registry.ts';
import { cannotHaveStopped, type FailureCause, isApiFailure, isPermanent } from '../strategies/strategy.ts';
import { ReportLag } from './report-lag.ts';
import type { WorkResult } from './work-queue.ts';

/** Event reason and action, as HAHAHA wrote them. */
export const EVENT_REASON = 'Killing';
/** Event reason for a pod whose sidecars the admission webhook made native. */
export const NATIVE_EVENT_REASON = 'NativeSidecars';
/** Event reason for the warning, at pod start, that a sidecar will hang or fail the Job. */
export const PREFLIGHT_REASON = 'SidecarPreflight';
/** Event reasons on the pod's Job: the outcome of one pod's reap, in one event. */
export const JOB_STOPPED_REASON = 'SidecarsShutDown';
export const JOB_FAILED_REASON = 'SidecarShutdownFailed';

/** The class of a stopped sidecar's exit code: only `zero` leaves a succeeded pod succeeded. */
export function exitClass(exitCode: number): 'zero' | 'error' | 'signal' {
  if (exitCode === 0) return 'zero';
  return exitCode > 128 ? 'signal' : 'error';
}

/**
 * A pod that ended Failed although every main container exited 0, and some other regular
 * container did not: a sidecar's exit code failed the Job.
 */
export function failedBySidecar(pod: PodView): boolean {
  if (pod.phase !== 'Failed') return false;
  const mains = findMainContainers(pod);
  if (typeof mains === 'string') return false;
  const exit = (name: string) => terminatedContainer(pod, name)?.exitCode;
  if (!mains.every((m) => exit(m) === 0)) return false;
  return pod.containers.some((c) => !mains.includes(c.name) && (exit(c.name) ?? 0) !== 0);
}

/**
 * Whether a pod, as last seen before it finished, can have ended failed by a sidecar: it has a
 * regular container besides its main ones that was not seen exiting 0 (a container that exited 0
 * under restartPolicy Never or OnFailure stays so). A pod without one, because the webhook made
 * its sidecars native or it never had any, cannot, so its final state need not be read.
 */
export function mayBeFailedBySidecar(pod: PodView): boolean {
  return regularSidecars(pod).some((c) => terminatedContainer(pod, c.name)?.exitCode !== 0);
}

/**
 * After a failed attempt whose failure says nothing of the sidecar (an unclassified error), how
 * long to watch for the container terminating anyway. One that may well have landed gets longer
 * (a cut-off answer the whole verify window, a timeout as long again as its own timeout);
 * failures that cannot have stopped it (refused, 404, missing binary, forbidden) go on to the
 * next attempt at once.
 */
const SETTLE_MS = 750;
/** How long the read of a pod that left the watch is shared by the stops and the count that need it. */
const LEFT_READ_REUSE_MS = 1000;
/** Wait between reads of a pod that left the watch while the API server does not answer. */
const LEFT_READ_RETRY_MS = 500;
/**
 * A sidecar that started this recently may not listen on its admin port yet (the main container
 * can end before the sidecar has opened it; cloud-sql-proxy opens it after its listeners): a
 * refused connection is asked again, the same way, until the sidecar is this old.
 */
const STARTING_MS = 10_000;
/** Wait between asks of a sidecar that is still starting. */
const STARTING_RETRY_MS = 250;
/** Past a drain's end, when the pod is run again if no watch update did it sooner (see LaterAsk). */
const DRAIN_RECHECK_SLACK_MS = 100;
/** How long after a hand-over's window the pods reconciled are still checked for unreported stops. */
const HANDOVER_CHECK_MS = 60_000;
/**
 * How long past its window a verify waits for a watch that was down during it (an API server
 * restart) to be back: the window starts again then, since the kubelet's report of the exit may
 * have been held up as well. An outage longer than the lease ends leading anyway.
 */
const OUTAGE_MS = 60_000;
/**
 * How long a pod's stops may fail because of the API server (it could not be reached, or could
 * not show whether an ask landed) before that is reported as a failed shutdown: a restart of the
 * API server is over well within it, and the retries then stop the sidecar or see it stopped.
 */
const API_GRACE_MS = 30_000;

/** What failed about one attempt, with the hint that fits that failure. */
export function failureHint(cause: FailureCause | 'ignored', attempt: Attempt, entryHint: string | undefined): string | undefined {
  switch (cause) {
    case 'forbidden':
      return `hahaha's ServiceAccount may not use pods/${attempt.kind === 'exec' ? 'exec' : 'portforward'} here: the chart's ClusterRole grants get and create`;
    case 'missing-binary':
      return attempt.kind === 'exec'
        ? `${attempt.command[0]} is not in the image (distroless?), so exec cannot stop it: make it a native sidecar (catalog native: true) or use an image that has it`
        : entryHint;
    case 'api-unreachable':
    case 'api-unavailable':
      return 'the API server failed, not the sidecar: hahaha asks the same way again once it answers';
    case 'ignored':
      return attempt.kind === 'exec'
        ? 'the sidecar accepted the signal but kept running: it ignores it; make it a native sidecar (the kubelet SIGKILLs it after the grace period)'
        : (entryHint ?? 'the sidecar accepted the request but kept running');
    default:
      return entryHint;
  }
}

export interface ReconcilerDeps {
  readonly store: PodStore;
  /** Reads a pod that left the watch (it finished) to learn the state it finished in. */
  readonly reader?: PodReader;
  readonly catalog: Catalog;
  readonly strategies: StrategyRegistry;
  readonly events: EventRecorder;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** How long the API may take to show the container terminated after an accepted attempt. */
  readonly verifyTimeoutMs: number;
  /** How long past a verify window to wait for a pod watch that was down during it. @default 60 s */
  readonly outageMs?: number;
  /**
   * Decide and record, never act: a Normal "would shut down" event per sidecar (once per pod)
   * and hahaha_dry_run_would_stop_total; no exec, no port-forward. @default false
   */
  readonly dryRun?: boolean;
  /** Exec attempts in distroless images run in an ephemeral container (the exec strategy's fallback is set). */
  readonly ephemeralSignal?: boolean;
  readonly now?: () => number;
}

type TargetResult =
  | {
      readonly ok: true;
      readonly container: string;
      /** The attempt that stopped it, or undefined when it exited before hahaha asked. */
      readonly via: string | undefined;
      readonly exitCode: number;
      readonly restartCount: number;
      readonly finishedAt?: number;
      /** When hahaha saw it terminated (epoch ms, this process's clock). */
      readonly seenAt: number;
      /** Attempts that failed before the one that worked. */
      readonly earlierErrors: readonly string[];
    }
  | {
      readonly ok: false;
      readonly container: string;
      readonly errors: readonly string[];
      readonly hint?: string;
      /** Every attempt failed in a way asking again cannot fix (see isPermanent). */
      readonly permanent: boolean;
      /** An attempt was refused with 403 (see confirmedPermanent). */
      readonly forbidden: boolean;
      /**
       * The asking ended because of the API server: it failed the call, or it could not show
       * whether the last ask landed. Reported only once it persists (API_GRACE_MS).
       */
      readonly api: boolean;
      /**
       * Not a failure: the sidecar accepted the ask and drains before it exits, as configured;
       * its exit is awaited until then (epoch ms) by later runs (see LaterAsk).
       */
      readonly draining?: number;
    };

/** What one run stopped or failed to stop, for the event on the pod's Job (see jobEvent). */
interface JobSummary {
  readonly stopped: string[];
  readonly nonZero: string[];
  readonly failed: string[];
}

/** An ask a later run settles (see Reconciler.unverifiedAsks). */
interface LaterAsk {
  readonly attempt: Attempt;
  /** When the ask was made (epoch ms, this process's clock). */
  readonly askedAt: number;
  /**
   * Set for an ask the sidecar accepted and then drains after, as its configuration says
   * (`exitDelayFrom`): the first window passed with the watch current and the sidecar still
   * running. Its exit is awaited without a worker until `until`; only then is the ask ignored.
   */
  readonly drain?: {
    /** The ask's whole window: VERIFY_TIMEOUT_SECONDS, the exit delay and the kubelet's lag. */
    readonly until: number;
    /** What the ask got (`accepted (HTTP 200)`) and that window described, for the event if it never exits. */
    readonly outcome: string;
    readonly within: string;
    /** The attempts that failed before it, for the Warning that goes with its stop. */
    readonly earlierErrors: readonly string[];
  };
}

/** The container's terminated state in this incarnation of the pod (same uid), if any, with its restart count. */
function terminatedState(pod: PodView | undefined, uid: string, container: string) {
  return pod === undefined || pod.uid !== uid ? undefined : terminatedContainer(pod, container);
}

export class Reconciler {
  private readonly deps: ReconcilerDeps;
  private readonly now: () => number;
  /**
   * What was already logged/counted once per pod uid: skip reasons, unsupported containers, the
   * preflight. Every running pod has its preflight here, most nothing else: one string, and a set
   * only from the second (a set per watched pod cost 278 bytes, a string 46).
   */
  private readonly reported = new Map<string, string | Set<string>>();
  /** When hahaha first saw each pod's main containers terminated (epoch ms). */
  private readonly mainSeenAt = new Map<string, number>();
  /**
   * Pods seen before they finished: only their end is counted in hahaha_pods_failed_by_sidecars,
   * so that a restart does not count the history of the cluster again.
   */
  private readonly seenActive = new Set<string>();
  /** Pods being reconciled now, and those to forget once that ends. */
  private readonly inFlight = new Set<string>();
  private readonly forgetAfter = new Set<string>();
  private readonly leftReads = new Map<string, Promise<PodView | undefined>>();
  /** Since when each pod's stops have failed because of the API server (see API_GRACE_MS). */
  private readonly apiFailingSince = new Map<string, number>();
  /**
   * Asks that may have landed but that the API server could not show the effect of (its watch
   * was down through the verify window and beyond), per pod uid: the pod as asked, and the
   * attempt per container. The next run asks that container nothing until a window with the
   * watch current has passed (see stopTarget). A run that finds it terminated reports the stop
   * as that attempt's, as the verification would have; so does the pod's final state, read once
   * it has left the watch (the stop may have finished it). Without this, the stop would have no
   * event (the retry skips a terminated sidecar, or calls it "exited on its own"), and the retry
   * would ask again before the kubelet could report the exit.
   * Also here, with `drain`: asks accepted by a sidecar that drains before it exits (its
   * configured exit delay, see LaterAsk), awaited without holding a worker until its drain is over.
   */
  private readonly unverifiedAsks = new Map<string, { readonly pod: PodView; readonly asks: Map<string, LaterAsk> }>();
  /** How late the kubelet reports exits lately: the verify window allows for it (see report-lag.ts). */
  readonly reportLag: ReportLag;
  /** Pods whose main containers were seen ended in a watch update, for noteUpdate. */
  private readonly lagNoted = new Set<string>();
  /** Set while this replica has just begun leading (see beginHandover). */
  private handover: { readonly window: HandoverWindow; readonly until: number } | undefined;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    this.reportLag = new ReportLag(deps.verifyTimeoutMs, this.now);
  }

  /**
   * A watch update of a pod, on every replica: the first that shows its main containers ended
   * tells how late the kubelet reports exits (report-lag.ts). Measured as the watch delivers it,
   * so neither hahaha's queue nor a leader change adds to it; a delay that spans a watch outage
   * (an API server restart, the first list) is the outage's, which the verify allows for itself.
   */
  noteUpdate(pod: PodView): void {
    if (this.lagNoted.has(pod.uid)) return;
    const mains = findMainContainers(pod);
    const finishedAt = typeof mains === 'string' ? undefined : mainsFinishedAt(pod, mains);
    if (finishedAt === undefined) return;
    this.lagNoted.add(pod.uid);
    if (!this.deps.store.disruptedSince(finishedAt)) this.reportLag.observe(pod.nodeName, this.now(), finishedAt);
  }

  /**
   * The pod left the watch: deleted, or finished (the watch selects running pods only, and a
   * pod leaving the selection arrives with its previous state). For a pod seen running that a
   * sidecar may have failed, its final state is read once to record how it ended; then it is
   * forgotten.
   */
  left(pod: PodView): void {
    const wasActive = this.seenActive.has(pod.uid);
    this.forget(pod.uid);
    if (!wasActive || pod.deletionTimestamp !== undefined || this.deps.reader === undefined || !mayBeFailedBySidecar(pod)) return;
    const log = this.deps.log.child({ namespace: pod.namespace, pod: pod.name, uid: pod.uid });
    this.readLeft(pod).then(
      (final) => {
        if (final !== undefined && hasFinished(final)) this.ended(final, log);
      },
      (err: unknown) => log.debug({ error: (err as Error).message }, 'could not read the finished pod'),
    );
  }

  /**
   * Drops per-pod memory once the pod has left the cache. While a reconcile of the pod is in
   * flight (the stop that finished the pod also took it out of the watch), that waits until it
   * ends, so the reap still has what it remembered and its events are forgotten too.
   */
  forget(uid: string): void {
    if (this.inFlight.has(uid)) {
      this.forgetAfter.add(uid);
      return;
    }
    this.reported.delete(uid);
    this.mainSeenAt.delete(uid);
    this.lagNoted.delete(uid);
    this.apiFailingSince.delete(uid);
    this.seenActive.delete(uid);
    if (this.unverifiedAsks.has(uid)) void this.reportUnverifiedLeft(uid);
    else this.deps.events.forgetPod(uid);
  }

  /**
   * The pod left the watch with asks still unverified: reads its final state (retrying while the
   * API server is still failing, up to API_GRACE_MS) and reports each asked container found
   * terminated as stopped by that ask; then forgets the pod's asks and events.
   */
  private async reportUnverifiedLeft(uid: string): Promise<void> {
    const pod = this.unverifiedAsks.get(uid)?.pod;
    if (pod === undefined) return;
    const log = this.deps.log.child({ namespace: pod.namespace, pod: pod.name, uid });
    try {
      const final = await this.readLeftWithin({ namespace: pod.namespace, name: pod.name, uid }, API_GRACE_MS);
      await Promise.all(this.reportUnverifiedStops(uid, final, log));
    } finally {
      this.unverifiedAsks.delete(uid);
      this.deps.events.forgetPod(uid);
    }
  }

  /**
   * Reports, as stopped by it, each unverified or draining ask of the pod whose container `seen`
   * shows terminated (its Killing event, the counts, its latency by the kubelet's clock, and one
   * event on the Job for them all), and forgets those asks.
   */
  private reportUnverifiedStops(uid: string, seen: PodView | undefined, log: Logger): Promise<unknown>[] {
    const entry = this.unverifiedAsks.get(uid);
    if (entry === undefined) return [];
    const { pod } = entry;
    const ref = { namespace: pod.namespace, name: pod.name, uid };
    const posts: Promise<unknown>[] = [];
    const job: JobSummary = { stopped: [], nonZero: [], failed: [] };
    let firstAsk = this.now();
    const mains = findMainContainers(pod);
    const mainsEnded = typeof mains === 'string' ? undefined : mainsFinishedAt(pod, mains);
    for (const container of [...entry.asks.keys()]) {
      const state = terminatedState(seen, uid, container);
      const ask = state === undefined ? undefined : this.takeUnverifiedAsk(uid, container);
      if (state === undefined || ask === undefined) continue;
      firstAsk = Math.min(firstAsk, ask.askedAt);
      // Its latency by the kubelet's clock (whole seconds): this run did not see the exit happen.
      if (state.finishedAt !== undefined && mainsEnded !== undefined) {
        this.deps.metrics.shutdownLatency.observe({ container }, Math.max(0, (state.finishedAt - mainsEnded) / 1000));
      }
      const via = describeAttempt(ask.attempt);
      log.info(
        { container, attempt: via, exitCode: state.exitCode },
        ask.drain === undefined ? 'an ask the API server could not verify did stop the sidecar' : 'the sidecar exited after its drain: stopped by the ask',
      );
      posts.push(...this.reportStop(pod, ref, container, via, state, ask.drain?.earlierErrors ?? [], job));
    }
    // The Job's event for these stops, as the reap that asked would have posted it.
    posts.push(this.jobEvent(pod, job, (this.now() - firstAsk) / 1000));
    return posts;
  }

  /**
   * This replica has begun leading (or started) at `at`: a previous leader, SIGKILLed or
   * restarted, may have stopped sidecars it had no time to report. Until the window is over,
   * every pod reconciled, and every finished pod passed to reportHandover, is checked once for
   * them (see domain/handover.ts). `lookbackMs` bounds how long before `at` such a stop can have
   * ended; stops ending after `at` + `settleMs` are this replica's own.
   */
  beginHandover(at: number, lookbackMs: number, settleMs: number): void {
    this.handover = { window: { from: at - lookbackMs, to: at + settleMs }, until: at + settleMs + HANDOVER_CHECK_MS };
  }

  /**
   * Reports, once per pod, the stops of `pod` a previous leader made without reporting them:
   * the Killing event it would have posted, under the same name, so that one it did post is
   * not posted again.
   */
  async reportHandover(pod: PodView): Promise<void> {
    const h = this.handover;
    if (h === undefined) return;
    if (this.now() > h.until) {
      this.handover = undefined;
      return;
    }
    const stops = unreportedStops(pod, this.deps.catalog, h.window);
    if (stops.length === 0 || !this.firstTime(pod.uid, 'handover')) return;
    const ref: PodRef = { namespace: pod.namespace, name: pod.name, uid: pod.uid };
    await Promise.all(stops.map((stop) => this.reportUnreported(pod, ref, stop)));
  }

  private async reportUnreported(pod: PodView, ref: PodRef, stop: UnreportedStop): Promise<void> {
    const outcome = await this.deps.events.record({
      pod: ref,
      type: stop.exitCode === 0 ? 'Normal' : 'Warning',
      reason: EVENT_REASON,
      action: EVENT_REASON,
      message: `Shut down container ${stop.container} (exit code ${stop.exitCode}; stopped around a hahaha leader change, reported by the next leader)`,
      name: stopEventName(pod, stop.container, stop.restartCount),
    });
    if (outcome === 'already-posted') return;
    const log = this.deps.log.child({ namespace: pod.namespace, pod: pod.name, uid: pod.uid, container: stop.container });
    log.info({ exitCode: stop.exitCode }, 'reported a stop the previous leader had not reported');
    this.countStop(pod, stop.container, stop.exitCode);
    this.deps.metrics.handoverReports.inc();
  }

  async reconcile(key: string, signal?: AbortSignal): Promise<WorkResult> {
    const pod = this.deps.store.get(key);
    if (pod === undefined) return { kind: 'done' };
    // Before acting: a sidecar terminated now was not stopped by this replica.
    if (this.handover !== undefined) await this.reportHandover(pod);
    // The work queue runs one reconcile per key at a time, so one per uid.
    this.inFlight.add(pod.uid);
    try {
      return await this.reconcilePod(pod, signal);
    } finally {
      this.inFlight.delete(pod.uid);
      if (this.forgetAfter.delete(pod.uid)) this.forget(pod.uid);
    }
  }

  private async reconcilePod(pod: PodView, signal?: AbortSignal): Promise<WorkResult> {
    const log = this.deps.log.child({ namespace: pod.namespace, pod: pod.name, uid: pod.uid });
    this.observe(pod, log);
    if (this.unverifiedAsks.has(pod.uid)) await Promise.all(this.reportUnverifiedStops(pod.uid, pod, log));
    const decision = decide(pod, this.deps.catalog, { ephemeralSignal: this.deps.ephemeralSignal === true });

    switch (decision.decision) {
      case 'ignore':
        if (this.firstTime(pod.uid, `skip:${decision.code}`)) {
          this.deps.metrics.skippedPods.inc({ reason: decision.code });
          const level = decision.code === 'no-main-container' || decision.code === 'restart-always' ? 'warn' : 'debug';
          log[level]({ decision: 'ignore', code: decision.code }, decision.reason);
        }
        return { kind: 'done' };
      case 'wait':
        log.debug({ decision: 'wait', code: decision.code }, decision.reason);
        // Preflight while the main container still runs: once it has ended, the reap says it all.
        if (decision.code === 'main-running' && this.firstTime(pod.uid, 'preflight')) this.preflight(pod, log);
        return { kind: 'done' };
      case 'reap':
        return this.reap(pod, decision, log, signal);
    }
  }

  /** What is recorded about a pod whatever the decision: its conversion, and how it ended. */
  private observe(pod: PodView, log: Logger): void {
    if (!hasFinished(pod)) {
      this.seenActive.add(pod.uid);
      const native = convertedSidecars(pod);
      if (native.length > 0 && this.firstTime(pod.uid, 'native-sidecars')) {
        log.info({ native }, 'sidecars were made native at admission; the kubelet stops them');
        const plural = native.length > 1 ? 's' : '';
        void this.deps.events.record(
          {
            pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
            type: 'Normal',
            reason: NATIVE_EVENT_REASON,
            action: 'Converted',
            message: `Converted sidecar${plural} ${native.join(', ')} to native sidecar${plural} at admission: the kubelet stops ${native.length > 1 ? 'them' : 'it'} after the main container, and ${native.length > 1 ? 'their exit codes do' : 'its exit code does'} not decide the pod's phase`,
            // Said once per pod, also across restarts and leader changes.
            name: onceEventName(pod, 'native-sidecars'),
          },
          { background: true },
        );
      }
      return;
    }
    if (this.seenActive.delete(pod.uid)) this.ended(pod, log);
  }

  /** A pod seen running has finished: counts it when a sidecar's exit code failed it. */
  private ended(pod: PodView, log: Logger): void {
    if (!failedBySidecar(pod)) return;
    this.deps.metrics.podsFailedBySidecars.inc({ namespace: pod.namespace, job_name: pod.labels[APP_LABEL] ?? '' });
    log.warn("the pod failed although its main containers exited 0: a sidecar's exit code failed it");
  }

  /**
   * At pod start, once per pod: if a sidecar will hang the Job or fail it when it is stopped,
   * say so now, with why and the fix, instead of when the main container has finished.
   */
  private preflight(pod: PodView, log: Logger): void {
    const prediction = predictPod(pod, this.deps.catalog, { ephemeralSignal: this.deps.ephemeralSignal === true });
    const bad = prediction.sidecars.filter((s) => s.predicted.outcome === 'hangs' || s.predicted.outcome === 'fails-pod');
    if (bad.length === 0) return;
    const verdict = (o: string) => (o === 'hangs' ? 'will hang the Job' : 'will fail the Job');
    log.warn({ sidecars: bad.map((b) => ({ container: b.container, ...b.predicted })) }, 'preflight: sidecars that will hang or fail the Job');
    const message = bad
      .map(
        (b) => `Sidecar ${b.container} ${verdict(b.predicted.outcome)}: ${b.predicted.why}${b.predicted.fix === undefined ? '' : ` (fix: ${b.predicted.fix})`}`,
      )
      .join(' | ');
    void this.deps.events
      .record(
        {
          pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
          type: 'Warning',
          reason: PREFLIGHT_REASON,
          action: 'Predicted',
          message,
          // Said once per pod, also across restarts and leader changes (which would say it again
          // for every running pod), and counted once.
          name: onceEventName(pod, 'preflight'),
        },
        { background: true },
      )
      .then((outcome) => {
        if (outcome === 'already-posted') return;
        for (const b of bad) this.deps.metrics.preflightWarnings.inc({ outcome: b.predicted.outcome });
      });
  }

  private async reap(pod: PodView, decision: Extract<Decision, { decision: 'reap' }>, log: Logger, signal?: AbortSignal): Promise<WorkResult> {
    const mainSeenAt = this.mainSeenAt.get(pod.uid) ?? this.now();
    this.mainSeenAt.set(pod.uid, mainSeenAt);
    const ref: PodRef = { namespace: pod.namespace, name: pod.name, uid: pod.uid };
    const labels = (container: string) => ({ container, job_name: pod.labels[APP_LABEL] ?? '', namespace: pod.namespace });
    // A pod left with only unsupported sidecars is looked at on every update: keep that quiet.
    log[decision.targets.length > 0 ? 'info' : 'debug'](
      { decision: 'reap', targets: decision.targets.map((t) => t.container), unsupported: decision.unsupported },
      decision.reason,
    );

    const newlyUnsupported = decision.unsupported.filter((c) => this.firstTime(pod.uid, `unsupported:${c}`));
    if (newlyUnsupported.length > 0) {
      for (const c of newlyUnsupported) this.deps.metrics.unsupportedSidecars.inc(labels(c));
      log.warn({ unsupported: newlyUnsupported }, 'no catalog entry for these containers; they are left running');
      const list = newlyUnsupported.join(', ');
      const plural = newlyUnsupported.length > 1 ? 's' : '';
      void this.killingEvent(
        ref,
        'Warning',
        `Unsuccessfully shut down container${plural} ${list}: unsupported sidecar, no entry in the sidecar catalog matches it; the pod will not finish until it exits`,
        onceEventName(pod, `unsupported:${list}`),
        { background: true },
      );
    }

    if (this.deps.dryRun === true) return this.wouldReap(pod, decision, log);

    const started = this.now();
    const lagMs = this.reportLag.current(pod.nodeName);
    const results = await Promise.all(decision.targets.map((t) => this.stopTarget(pod, ref, t, lagMs, log, signal)));
    const jobSummary: JobSummary = { stopped: [], nonZero: [], failed: [] };

    const posts: Promise<unknown>[] = [];
    let failed = 0;
    let transient = 0;
    /** The earliest end of a drain awaited (see LaterAsk): the pod is run again then at the latest. */
    let drainUntil: number | undefined;
    for (const r of results) {
      if (!r.ok && r.draining !== undefined) {
        drainUntil = Math.min(drainUntil ?? r.draining, r.draining);
        continue;
      }
      if (r.ok) {
        if (r.via === undefined) {
          log.info({ container: r.container, exitCode: r.exitCode }, 'container exited on its own');
          continue;
        }
        this.deps.metrics.shutdownLatency.observe({ container: r.container }, this.latencySeconds(mainSeenAt, decision.mainFinishedAt, r.seenAt));
        posts.push(...this.reportStop(pod, ref, r.container, r.via, r, r.earlierErrors, jobSummary));
      } else if (signal?.aborted) {
        // Interrupted (shutdown, or the lease lost): what happened is not known yet, and a
        // Warning here would often be wrong (the ask may have landed). The next run, here or on
        // the next leader, verifies and reports it.
        failed += 1;
        transient += 1;
        log.info({ container: r.container, errors: r.errors }, 'interrupted before the stop was verified; left to the next run');
      } else if (r.api && this.apiGrace(pod.uid)) {
        // The API server failed, not the sidecar (it restarts): a Warning now would often be
        // wrong, and the retry asks again or finds the sidecar stopped.
        failed += 1;
        transient += 1;
        log.warn({ container: r.container, errors: r.errors }, 'the API server failed, not the sidecar; asking again once it answers');
      } else {
        failed += 1;
        const permanent = r.permanent && this.confirmedPermanent(pod.uid, r);
        if (!permanent) transient += 1;
        const message = `Unsuccessfully shut down container ${r.container}: ${r.errors.join('; ')}${r.hint === undefined ? '' : ` (hint: ${r.hint})`}`;
        // A permanent failure is reported once per pod, container and message; rechecks stay quiet.
        if (!permanent || this.firstTime(pod.uid, `permanent:${message}`)) {
          this.deps.metrics.failedSidecarShutdowns.inc(labels(r.container));
          posts.push(this.killingEvent(ref, 'Warning', message));
          jobSummary.failed.push(`${r.container}: ${r.errors.join('; ')}${r.hint === undefined ? '' : ` (hint: ${r.hint})`}`);
        }
      }
    }
    for (const c of newlyUnsupported) jobSummary.failed.push(`${c}: unsupported sidecar, no catalog entry matches it`);
    posts.push(this.jobEvent(pod, jobSummary, (this.now() - started) / 1000));
    await Promise.all(posts);
    if (!results.some((r) => !r.ok && r.api)) this.apiFailingSince.delete(pod.uid);
    const later =
      drainUntil === undefined
        ? undefined
        : ({ kind: 'later', afterMs: Math.max(0, drainUntil - this.now()) + DRAIN_RECHECK_SLACK_MS, reason: 'a sidecar drains before it exits' } as const);
    if (failed === 0) return later ?? { kind: 'done' };
    const reason = `${failed} of ${results.length} sidecar(s) did not stop`;
    if (transient > 0) return { kind: 'retry', reason };
    // A permanent failure is rechecked slowly; a drain still ends on time.
    return later ?? { kind: 'permanent', reason: `${reason}, and asking again cannot help` };
  }

  /** Tries the target's attempts in order until the API shows the container terminated. */
  private async stopTarget(pod: PodView, ref: PodRef, target: ReapTarget, lagMs: number, podLog: Logger, signal?: AbortSignal): Promise<TargetResult> {
    const log = podLog.child({ container: target.container });
    const key = podKey(pod);
    const isGone = (p: PodView) => p.uid !== pod.uid || terminatedState(p, pod.uid, target.container) !== undefined;
    const errors: string[] = [];
    const causes: (FailureCause | 'ignored')[] = [];
    const hints = new Set<string>();
    // The last attempt of this run that may have reached the sidecar (accepted, or failed in a way
    // that may have landed), with the errors before it: a stop found later is credited to it. One
    // that cannot have landed (refused, forbidden, not found) is never credited.
    let landed: { attempt: Attempt; errorsBefore: number } | undefined;
    const stoppedEarlier = (state: NonNullable<ReturnType<typeof terminatedState>>) =>
      this.stopped(pod.uid, target.container, state, landed?.attempt, errors.slice(0, landed?.errorsBefore ?? 0));
    let apiFailed = false;
    const failed = (extra: readonly string[] = []): Extract<TargetResult, { ok: false }> => ({
      ok: false,
      container: target.container,
      errors: [...errors, ...extra],
      ...(hints.size > 0 && { hint: [...hints].join('; ') }),
      permanent: extra.length === 0 && causes.length > 0 && causes.every((c) => c !== 'ignored' && isPermanent(c)),
      forbidden: causes.includes('forbidden'),
      api: apiFailed,
    });
    const note = (attempt: Attempt, cause: FailureCause | 'ignored') => {
      causes.push(cause);
      const hint = failureHint(cause, attempt, target.hint);
      if (hint !== undefined) hints.add(hint);
    };

    if (target.attempts.length === 0) {
      // Nothing in the catalog applies to this sidecar as it is configured: say why, once.
      for (const sk of target.skipped) errors.push(`${sk.attempt} does not apply: ${sk.why}`);
      if (target.hint !== undefined) hints.add(target.hint);
      return { ...failed(), permanent: true };
    }
    // A sidecar that keeps running a while once asked to stop (by its own configuration) gets
    // that long on top of the window before an accepted ask counts as ignored.
    // So does a kubelet that reports exits late (report-lag.ts).
    const windowMs = this.deps.verifyTimeoutMs + (target.exitDelay?.ms ?? 0) + lagMs;
    const lag = { usedMs: lagMs, node: pod.nodeName };
    const within = () => {
      const plus = [
        ...(target.exitDelay === undefined ? [] : [`its ${target.exitDelay.from}`]),
        ...(lagMs === 0 ? [] : [`${Number((lagMs / 1000).toFixed(1))}s the kubelet took to report main containers' exits`]),
      ];
      const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))}s`;
      return `${seconds(windowMs)}${plus.length === 0 ? '' : ` (${seconds(this.deps.verifyTimeoutMs)}, plus ${plus.join(', plus ')})`}`;
    };
    /**
     * How much of the window a worker waits: the window without the sidecar's exit delay, i.e.
     * all of it for a sidecar without one; the rest of a drain is awaited without a worker
     * (awaitDrain).
     */
    const heldMs = this.deps.verifyTimeoutMs + lagMs;
    /**
     * An ask that reached a sidecar that drains first, still running after `heldMs`: remembered
     * with the end of its drain, for later runs (LaterAsk). Undefined when the sidecar has no
     * drain, or it is over already.
     */
    const awaitDrain = (attempt: Attempt, askedAt: number, outcome: string): Extract<TargetResult, { ok: false }> | undefined => {
      const until = askedAt + windowMs;
      if (target.exitDelay === undefined || signal?.aborted || this.now() >= until) return undefined;
      log.info(
        { attempt: describeAttempt(attempt), exitDelay: target.exitDelay.from, awaitSeconds: (until - this.now()) / 1000 },
        'the sidecar drains before it exits, as configured: its exit is awaited without holding a worker',
      );
      this.rememberUnverified(pod, target.container, attempt, askedAt, { until, outcome, within: within(), earlierErrors: errors.slice() });
      return { ...failed(), draining: until };
    };
    /**
     * Gives the kubelet's report of an earlier run's ask a window with the watch current: the
     * stop, credited to that ask; a failure when the run is interrupted or the API server still
     * cannot show the container; undefined when the container is seen still running.
     */
    const settleEarlier = async (ask: LaterAsk): Promise<TargetResult | undefined> => {
      const settled = await this.verify(ref, key, isGone, this.now(), heldMs, log, signal, lag);
      const state = terminatedState(settled.pod, pod.uid, target.container);
      if (state !== undefined) {
        if (ask.drain === undefined) {
          log.info({ attempt: describeAttempt(ask.attempt), exitCode: state.exitCode }, 'an ask the API server could not verify did stop the sidecar');
        }
        return this.stopped(pod.uid, target.container, state, undefined, ask.drain?.earlierErrors ?? []);
      }
      if (signal?.aborted) return failed(['interrupted by shutdown']);
      if (settled.unverified) {
        errors.push(`${describeAttempt(ask.attempt)}: accepted, but the API server still cannot show whether the container terminated`);
        apiFailed = true;
        return failed();
      }
      return undefined;
    };
    const earlier = this.unverifiedAsks.get(pod.uid)?.asks.get(target.container);
    /** Where this run's asking starts in target.attempts: after an earlier ask found ignored. */
    let from = 0;
    if (earlier?.drain !== undefined) {
      // An earlier run's ask was accepted, and the sidecar drains before it exits: nothing is
      // asked while its drain lasts, and no worker waits for it (the watch update of its exit,
      // or the recheck at the drain's end, runs the pod again).
      const { drain, attempt, askedAt } = earlier;
      const state = terminatedState(this.deps.store.get(key), pod.uid, target.container);
      if (state !== undefined) return this.stopped(pod.uid, target.container, state, undefined, drain.earlierErrors);
      if (this.now() < drain.until) return { ...failed(), draining: drain.until };
      // Its drain is over. A watch that was down meanwhile may have held back the report of its
      // exit: that gets a window with the watch current first.
      if (this.deps.store.disruptedSince(askedAt)) {
        const settled = await settleEarlier(earlier);
        if (settled !== undefined) return settled;
      }
      this.takeUnverifiedAsk(pod.uid, target.container);
      const described = describeAttempt(attempt);
      log.warn({ attempt: described, outcome: drain.outcome, seconds: (this.now() - askedAt) / 1000 }, 'the container kept running past its drain');
      errors.push(...drain.earlierErrors, `${described}: ${drain.outcome} but the container did not terminate within ${drain.within}`);
      note(attempt, 'ignored');
      landed = { attempt, errorsBefore: drain.earlierErrors.length };
      // The attempts after it are tried now, as if this run had waited for it.
      from = target.attempts.findIndex((a) => describeAttempt(a) === described) + 1;
    } else if (earlier !== undefined) {
      // An earlier run's ask may have landed unseen (the API server could not show its effect):
      // the kubelet's report gets a whole window with the watch current before anything is asked
      // again, so that a sidecar is asked twice only when the first ask provably did not stop it.
      const settled = await settleEarlier(earlier);
      if (settled !== undefined) return settled;
      // Seen running with the watch current: a sidecar that drains first may still be draining.
      const draining = awaitDrain(earlier.attempt, earlier.askedAt, 'asked while the API server could not show its effect');
      if (draining !== undefined) return draining;
    }
    for (const attempt of target.attempts.slice(from)) {
      const current = this.deps.store.get(key);
      if (current === undefined || current.uid !== pod.uid) return failed(['pod disappeared']);
      const already = terminatedState(current, pod.uid, target.container);
      if (already !== undefined) return stoppedEarlier(already);
      if (signal?.aborted) break;

      const described = describeAttempt(attempt);
      const started = this.now();
      const errorsBefore = errors.length;
      let outcome = await runAttempt(this.deps.strategies, { pod: ref, container: target.container }, attempt, signal);
      // Refused by a sidecar that is still starting: the ask never reached it, so asking again is
      // no double stop, and the next attempt (often a signal) would end it less cleanly.
      while (!outcome.ok && outcome.cause === 'refused' && this.stillStarting(key, target.container, started) && !signal?.aborted) {
        log.debug({ attempt: described, error: outcome.error }, 'refused by a sidecar that is still starting; asking again');
        await sleep(STARTING_RETRY_MS, undefined, signal ? { signal } : {}).catch(() => {});
        const current = this.deps.store.get(key);
        if (current?.uid !== pod.uid || terminatedState(current, pod.uid, target.container) !== undefined || signal?.aborted) break;
        outcome = await runAttempt(this.deps.strategies, { pod: ref, container: target.container }, attempt, signal);
      }
      const seconds = (this.now() - started) / 1000;
      this.deps.metrics.attemptDuration.observe({ kind: attempt.kind, outcome: outcome.ok ? 'ok' : 'error' }, seconds);

      if (!outcome.ok) {
        // A sidecar may stop while its answer is cut off (the process exits mid-reply, the exec
        // stream dies with PID 1): such an ask most likely landed, so it is verified like an
        // accepted one, and the sidecar is asked a second time only when the first ask provably
        // did not stop it. One that timed out may have landed too (a loaded API server or kubelet
        // answers late), or met a hung endpoint: it gets as long again as it had to answer, and
        // the kubelet's lag, before the next attempt.
        const cutOff = outcome.cause === 'cut-off' || outcome.cause === 'api-unavailable';
        const mayHaveLanded = cutOff || outcome.cause === 'timeout';
        const waitMs = cutOff ? heldMs : outcome.cause === 'timeout' ? attempt.timeoutSeconds * 1000 + lagMs : SETTLE_MS;
        const notLanded = cannotHaveStopped(outcome.cause);
        const settled = notLanded
          ? { pod: this.deps.store.get(key), unverified: false }
          : await this.verify(ref, key, isGone, started, waitMs, log, signal, mayHaveLanded ? lag : undefined);
        const state = terminatedState(settled.pod, pod.uid, target.container);
        // Found stopped after an ask that cannot have reached it: an earlier ask did it (one
        // accepted but slower than the window), or the sidecar exited on its own.
        if (state !== undefined) return notLanded ? stoppedEarlier(state) : this.stopped(pod.uid, target.container, state, attempt, errors);
        if (!notLanded) landed = { attempt, errorsBefore };
        if (outcome.cause === 'cut-off' && !settled.unverified) {
          // It most likely landed: a sidecar that drains first is awaited as if it had answered.
          const draining = awaitDrain(attempt, started, `answered, cut off (${outcome.error})`);
          if (draining !== undefined) return draining;
        }
        log.warn({ attempt: described, error: outcome.error, cause: outcome.cause, seconds }, 'attempt failed');
        errors.push(`${described}: ${outcome.error}`);
        note(attempt, outcome.cause);
        // The API server failed, not the sidecar: the next attempt would fail the same way, or
        // worse, take a path that ends the sidecar differently (a signal instead of its endpoint).
        // So does one that may have landed when the API server cannot show whether it did.
        if (isApiFailure(outcome.cause) || settled.unverified) {
          if (settled.unverified) this.rememberUnverified(pod, target.container, attempt, started);
          apiFailed = true;
          break;
        }
        continue;
      }
      log.info(
        { attempt: described, detail: outcome.detail, seconds, ...(target.exitDelay !== undefined && { exitDelay: target.exitDelay.from }) },
        'attempt accepted, waiting for the container to terminate',
      );
      landed = { attempt, errorsBefore };
      // A sidecar that drains before it exits (its exit delay) gets the usual window here; the
      // rest of its drain is awaited without holding this worker (awaitDrain).
      const after = await this.verify(ref, key, isGone, started, heldMs, log, signal, lag);
      const state = terminatedState(after.pod, pod.uid, target.container);
      if (state !== undefined) return this.stopped(pod.uid, target.container, state, attempt, errors, outcome.via);
      if (after.unverified) {
        errors.push(`${described}: accepted (${outcome.detail}), but the API server could not show whether the container terminated`);
        note(attempt, 'api-unavailable');
        this.rememberUnverified(pod, target.container, attempt, started);
        apiFailed = true;
        break;
      }
      const draining = awaitDrain(attempt, started, `accepted (${outcome.detail})`);
      if (draining !== undefined) return draining;
      log.warn({ attempt: described, detail: outcome.detail, seconds: (this.now() - started) / 1000 }, 'attempt accepted, but the container kept running');
      errors.push(`${described}: accepted (${outcome.detail}) but the container did not terminate within ${within()}`);
      note(attempt, 'ignored');
    }
    const state = terminatedState(this.deps.store.get(key), pod.uid, target.container);
    if (state !== undefined) return stoppedEarlier(state);
    return failed(signal?.aborted ? ['interrupted by shutdown'] : []);
  }

  /**
   * Whether a running container started less than STARTING_MS ago, by the kubelet's startedAt,
   * while the asking began less than STARTING_MS ago (so that a skewed clock cannot make it
   * young forever).
   */
  private stillStarting(key: string, container: string, askedSince: number): boolean {
    const now = this.now();
    if (now - askedSince >= STARTING_MS) return false;
    const pod = this.deps.store.get(key);
    const state = pod === undefined ? undefined : statusOf(pod, container)?.state;
    return state?.kind === 'running' && state.startedAt !== undefined && now - state.startedAt < STARTING_MS;
  }

  /**
   * Waits up to `windowMs` for the store to show the container gone (`isGone`), reading the pod
   * if it left the watch. A window during which the watch was down (an API server restart)
   * proves nothing, since the kubelet's report of the exit may have been held up as well: once
   * the watch is back, a whole window follows, up to outageMs past the first. `unverified`:
   * the watch was still down then, so whether the ask landed is not known. `lag`: the kubelet's
   * lag the window allows for, and the pod's node, whose lag may grow meanwhile.
   */
  private async verify(
    ref: PodRef,
    key: string,
    isGone: (p: PodView) => boolean,
    since: number,
    windowMs: number,
    log: Logger,
    signal?: AbortSignal,
    lag?: { readonly usedMs: number; readonly node: string | undefined },
  ): Promise<{ pod: PodView | undefined; unverified: boolean }> {
    const store = this.deps.store;
    const deadline = since + windowMs + (this.deps.outageMs ?? OUTAGE_MS);
    let from = since;
    let waitFrom = this.now();
    let waitMs = windowMs;
    for (;;) {
      const pod = await this.afterLeaving(ref, await store.waitFor(key, isGone, waitMs, signal), signal);
      if ((pod !== undefined && isGone(pod)) || signal?.aborted) return { pod, unverified: false };
      if (!store.disruptedSince(from)) {
        // The pod's kubelet fell further behind while this waited (a burst of finishing pods):
        // the window grows by as much (`lag.usedMs` is the lag it was given). Only a pod still in
        // the watch is waited for; one that left it was read as the API has it.
        const grown = lag === undefined ? 0 : Math.max(0, this.reportLag.current(lag.node) - lag.usedMs);
        const more = waitFrom + windowMs + grown - this.now();
        if (more <= 0 || store.get(key) === undefined) return { pod, unverified: false };
        waitMs = more;
        continue;
      }
      log.info('the pod watch was down while waiting for the container to terminate; waiting again once it is back');
      if (!(await store.whenCurrent(deadline - this.now(), signal)) || this.now() >= deadline) return { pod, unverified: signal?.aborted !== true };
      from = this.now();
      waitFrom = from;
      waitMs = windowMs;
    }
  }

  /**
   * What a wait saw, or, when the pod left the watch meanwhile (the stop finished it, so it
   * arrived as DELETED with its previous state), the pod as the API has it now.
   */
  private async afterLeaving(ref: PodRef, seen: PodView | undefined, signal?: AbortSignal): Promise<PodView | undefined> {
    if (seen !== undefined || this.deps.reader === undefined) return seen;
    if (this.deps.store.get(podKey(ref)) !== undefined) return undefined;
    // The pod may have left because the watch relisted while the API server restarted: keep
    // trying to read it for the verify window rather than call an unreadable pod not stopped.
    return this.readLeftWithin(ref, this.deps.verifyTimeoutMs, signal);
  }

  /** readLeft, tried again every LEFT_READ_RETRY_MS while it fails, for up to `ms`. */
  private async readLeftWithin(ref: PodRef, ms: number, signal?: AbortSignal): Promise<PodView | undefined> {
    const deadline = this.now() + ms;
    for (;;) {
      try {
        return await this.readLeft(ref);
      } catch {
        if (this.now() >= deadline || signal?.aborted) return undefined;
        await sleep(Math.min(LEFT_READ_RETRY_MS, Math.max(0, deadline - this.now())), undefined, signal ? { signal } : {}).catch(() => {});
      }
    }
  }

  /**
   * Reads a pod that left the watch from the API, once: the stops waiting on its sidecars and
   * the count of how it ended share one GET (it was one per waiting sidecar plus one).
   */
  private readLeft(ref: PodRef): Promise<PodView | undefined> {
    const reader = this.deps.reader;
    if (reader === undefined) return Promise.resolve(undefined);
    let read = this.leftReads.get(ref.uid);
    if (read === undefined) {
      read = reader.read(ref);
      this.leftReads.set(ref.uid, read);
      // Kept a moment for the waiters that arrive together, then dropped; a failed read at once,
      // so that the next try reads again.
      read.then(
        () => setTimeout(() => this.leftReads.delete(ref.uid), LEFT_READ_REUSE_MS).unref(),
        () => this.leftReads.delete(ref.uid),
      );
    }
    return read;
  }

  private rememberUnverified(pod: PodView, container: string, attempt: Attempt, askedAt: number, drain?: LaterAsk['drain']): void {
    let entry = this.unverifiedAsks.get(pod.uid);
    if (entry === undefined) {
      entry = { pod, asks: new Map() };
      this.unverifiedAsks.set(pod.uid, entry);
    }
    entry.asks.set(container, drain === undefined ? { attempt, askedAt } : { attempt, askedAt, drain });
  }

  /** The container's unverified or draining ask, if an earlier run left one; it is forgotten. */
  private takeUnverifiedAsk(uid: string, container: string): LaterAsk | undefined {
    const entry = this.unverifiedAsks.get(uid);
    const ask = entry?.asks.get(container);
    entry?.asks.delete(container);
    if (entry?.asks.size === 0) this.unverifiedAsks.delete(uid);
    return ask;
  }

  /**
   * The container found terminated: stopped by `via` (this run's attempt), else by an earlier
   * run's unverified ask if there was one (an ask this run made since may not have reached it),
   * else on its own. Either way its unverified ask, if any, is settled.
   */
  private stopped(
    uid: string,
    container: string,
    state: { exitCode: number; restartCount: number; finishedAt?: number },
    attempt: Attempt | undefined,
    earlierErrors: readonly string[],
    how?: string,
  ): TargetResult {
    const unverified = this.takeUnverifiedAsk(uid, container);
    const via = attempt ?? unverified?.attempt;
    return {
      ok: true,
      container,
      earlierErrors,
      via: via === undefined ? undefined : (how ?? describeAttempt(via)),
      exitCode: state.exitCode,
      restartCount: state.restartCount,
      ...(state.finishedAt !== undefined && { finishedAt: state.finishedAt }),
      seenAt: this.now(),
    };
  }

  /**
   * Seconds from the main container's exit to the sidecar's, as felt by the Job. The kubelet's
   * finishedAt has one-second resolution, so when hahaha saw the main container's exit promptly
   * its own millisecond observation starts the clock; when it saw it late (it was down, or
   * not leading), the kubelet's time does, so the delay is not hidden.
   */
  private latencySeconds(seen: number, mainFinishedAt: number | undefined, sidecarSeenAt: number): number {
    const start = mainFinishedAt !== undefined && seen - mainFinishedAt > 2000 ? mainFinishedAt : seen;
    return Math.max(0, (sidecarSeenAt - start) / 1000);
  }

  /** Dry run: says what a reap would do, once per pod and sidecar, and does nothing. */
  private async wouldReap(pod: PodView, decision: Extract<Decision, { decision: 'reap' }>, log: Logger): Promise<WorkResult> {
    const ref: PodRef = { namespace: pod.namespace, name: pod.name, uid: pod.uid };
    const posts: Promise<unknown>[] = [];
    for (const t of decision.targets) {
      if (!this.firstTime(pod.uid, `dry-run:${t.container}`)) continue;
      const how = t.attempts.map(describeAttempt).join(', then ');
      log.info({ container: t.container, attempts: how, dryRun: true }, 'dry run: would shut down the sidecar');
      this.deps.metrics.dryRunWouldStop.inc({ container: t.container, job_name: pod.labels[APP_LABEL] ?? '', namespace: pod.namespace });
      posts.push(this.killingEvent(ref, 'Normal', `Would shut down container ${t.container} (${how}); dry run, nothing was done`));
    }
    await Promise.all(posts);
    return { kind: 'done' };
  }

  /**
   * One event on the pod's Job with the outcome of this pod's reap, for `kubectl describe job`:
   * what was stopped and how long it took, or what could not be stopped and why. Nothing when
   * the pod has no Job or nothing happened.
   */
  private jobEvent(pod: PodView, s: JobSummary, seconds: number): Promise<unknown> {
    const owner = pod.owner;
    if (owner === undefined || owner.kind !== 'Job' || (s.stopped.length === 0 && s.failed.length === 0)) return Promise.resolve();
    const base = { pod: { namespace: pod.namespace, name: pod.name, uid: pod.uid }, regarding: owner, action: EVENT_REASON };
    if (s.failed.length > 0) {
      const stopped = s.stopped.length > 0 ? `; shut down ${s.stopped.join(', ')}` : '';
      return this.deps.events.record({
        ...base,
        type: 'Warning',
        reason: JOB_FAILED_REASON,
        message: `Could not stop sidecar${s.failed.length > 1 ? 's' : ''} of pod ${pod.name}: ${s.failed.join(' | ')}${stopped}`,
      });
    }
    const n = s.stopped.length;
    const fails = s.nonZero.length > 0 ? `; ${s.nonZero.join(', ')}, which fails the pod` : '';
    return this.deps.events.record({
      ...base,
      type: s.nonZero.length > 0 ? 'Warning' : 'Normal',
      reason: JOB_STOPPED_REASON,
      message: `Shut down ${n} sidecar${n > 1 ? 's' : ''} of pod ${pod.name} in ${seconds.toFixed(1)} s (${s.stopped.join(', ')})${fails}`,
    });
  }

  /**
   * A stop by `via`, seen or credited: counted, its Killing event (and a Warning first when a
   * cleaner way failed before it: worth a look by the job owner), and noted for the Job's event.
   */
  private reportStop(
    pod: PodView,
    ref: PodRef,
    container: string,
    via: string,
    state: { exitCode: number; restartCount: number },
    earlierErrors: readonly string[],
    job: JobSummary,
  ): Promise<unknown>[] {
    job.stopped.push(container);
    if (state.exitCode !== 0) job.nonZero.push(`${container} exited ${state.exitCode}`);
    this.countStop(pod, container, state.exitCode);
    const posts: Promise<unknown>[] = [];
    if (earlierErrors.length > 0) {
      posts.push(this.killingEvent(ref, 'Warning', `Unsuccessfully shut down container ${container}: ${earlierErrors.join('; ')} (then stopped by ${via})`));
    }
    posts.push(this.stopEvent(pod, ref, container, via, state));
    return posts;
  }

  /** Counts a stop: hahaha_sidecar_shutdowns (HAHAHA's counter) and the exit's class. */
  private countStop(pod: PodView, container: string, exitCode: number): void {
    const labels = { container, job_name: pod.labels[APP_LABEL] ?? '', namespace: pod.namespace };
    this.deps.metrics.sidecarShutdowns.inc(labels);
    this.deps.metrics.stoppedSidecarExits.inc({ ...labels, exit_class: exitClass(exitCode) });
  }

  /** The Killing event of a stop, under the stop's fixed name (see domain/handover.ts). */
  private stopEvent(pod: PodView, ref: PodRef, container: string, via: string, state: { exitCode: number; restartCount: number }): Promise<void> {
    // A non-zero exit fails a pod whose main containers succeeded: not a success for its owner.
    const fails = state.exitCode === 0 ? '' : `; a non-zero exit code fails the pod, which a native sidecar's would not`;
    return this.killingEvent(
      ref,
      state.exitCode === 0 ? 'Normal' : 'Warning',
      `Shut down container ${container} (${via}, exit code ${state.exitCode}${fails})`,
      stopEventName(pod, container, state.restartCount),
    );
  }

  /** Records an event with HAHAHA's reason and action. */
  private async killingEvent(pod: PodRef, type: 'Normal' | 'Warning', message: string, name?: string, opts: { background?: boolean } = {}): Promise<void> {
    await this.deps.events.record({ pod, type, reason: EVENT_REASON, action: EVENT_REASON, message, ...(name !== undefined && { name }) }, opts);
  }

  /**
   * A refusal (403) counts as permanent only the second time for a pod: an API server that has
   * just restarted answers 403 until its RBAC cache has caught up (seen in the soak), and that
   * must not leave a sidecar alone for the 10-minute recheck.
   */
  private confirmedPermanent(uid: string, r: { readonly forbidden: boolean }): boolean {
    return !r.forbidden || !this.firstTime(uid, 'forbidden-once');
  }

  /** Records that the pod's stops failed because of the API server; true while that is recent. */
  private apiGrace(uid: string): boolean {
    const now = this.now();
    const since = this.apiFailingSince.get(uid) ?? now;
    this.apiFailingSince.set(uid, since);
    return now - since < API_GRACE_MS;
  }

  private firstTime(uid: string, what: string): boolean {
    const known = this.reported.get(uid);
    if (known === undefined) this.reported.set(uid, what);
    else if (typeof known === 'string') {
      if (known === what) return false;
      this.reported.set(uid, new Set([known, what]));
    } else {
      if (known.has(what)) return false;
      known.add(what);
    }
    return true;
  }
}
