/**
 * decide: what to do with one pod, as a value. Pure: no I/O, no clock, no client library.
 *
 * Each rule is a small named predicate, testable alone; `decide` chains them in order.
 */
import { type Attempt, type Catalog, findCatalogEntry } from './catalog.ts';
import { APP_LABEL, type ContainerSpecView, type ContainerStatusView, MAIN_CONTAINERS_ANNOTATION, type PodView } from './pod-view.ts';
import { type ExitDelay, exitDelay, type ResolveOptions, resolveAttempts, type SkippedAttempt } from './resolve.ts';

export interface ReapTarget {
  readonly container: string;
  readonly image: string;
  /** Catalog entry id. */
  readonly entry: string;
  /** The entry's attempts that apply to this sidecar as it is configured, ports resolved. */
  readonly attempts: readonly Attempt[];
  /** The entry's attempts that do not apply, and why (a flag or annotation missing, a distroless image). */
  readonly skipped: readonly SkippedAttempt[];
  readonly hint?: string;
  /** How long the sidecar keeps running once asked to stop, by its own configuration. */
  readonly exitDelay?: ExitDelay;
}

/** Machine-readable reasons for Ignore, used as a metric label; stable. */
export type IgnoreCode = 'malformed' | 'being-deleted' | 'finished' | 'no-main-container' | 'restart-always' | 'nothing-to-reap';

export type WaitCode = 'main-running' | 'main-will-restart';

export type Decision =
  | { readonly decision: 'ignore'; readonly code: IgnoreCode; readonly reason: string }
  | { readonly decision: 'wait'; readonly code: WaitCode; readonly reason: string }
  | {
      readonly decision: 'reap';
      readonly reason: string;
      readonly targets: readonly ReapTarget[];
      /** Containers that need stopping but have no catalog entry. */
      readonly unsupported: readonly string[];
      /** When the last main container terminated (epoch ms), if the kubelet reported it. */
      readonly mainFinishedAt?: number;
    };

const ignore = (code: IgnoreCode, reason: string): Decision => ({ decision: 'ignore', code, reason });
const wait = (code: WaitCode, reason: string): Decision => ({ decision: 'wait', code, reason });

// ---- predicates -------------------------------------------------------------------------------

/** A pod with a deletionTimestamp is being torn down by the kubelet; leave it alone. */
export function isBeingDeleted(pod: PodView): boolean {
  return pod.deletionTimestamp !== undefined;
}

/** Succeeded and Failed are terminal phases: every container has already exited. */
export function hasFinished(pod: PodView): boolean {
  return pod.phase === 'Succeeded' || pod.phase === 'Failed';
}

/** Native sidecars are init containers with restartPolicy Always; the kubelet stops them itself. */
export function isNativeSidecar(c: ContainerSpecView): boolean {
  return c.restartPolicy === 'Always';
}

/** Whether the pod uses native sidecars (informational: they are never targets). */
export function usesNativeSidecars(pod: PodView): boolean {
  return pod.initContainers.some(isNativeSidecar);
}

/**
 * Names of the main containers: the annotation's list when present, else the `app` label.
 * Returns an error string when neither names any container.
 */
export function findMainContainers(pod: PodView): readonly string[] | string {
  const annotation = pod.annotations[MAIN_CONTAINERS_ANNOTATION];
  if (annotation !== undefined) {
    const names = [
      ...new Set(
        annotation
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      ),
    ];
    if (names.length === 0) return `annotation ${MAIN_CONTAINERS_ANNOTATION} names no container`;
    const missing = names.filter((n) => !pod.containers.some((c) => c.name === n));
    if (missing.length > 0) {
      return `annotation ${MAIN_CONTAINERS_ANNOTATION} names ${missing.join(', ')}, not a container of this pod`;
    }
    return names;
  }
  const app = pod.labels[APP_LABEL];
  if (app === undefined || app === '') {
    return `no ${APP_LABEL} label and no ${MAIN_CONTAINERS_ANNOTATION} annotation`;
  }
  if (!pod.containers.some((c) => c.name === app)) {
    return `no container named ${app} (the ${APP_LABEL} label); set ${MAIN_CONTAINERS_ANNOTATION}`;
  }
  return [app];
}

/**
 * The regular containers besides the main ones: the sidecars hahaha may have to stop. None when
 * the main containers cannot be found (see findMainContainers).
 */
export function regularSidecars(pod: PodView): readonly ContainerSpecView[] {
  const mains = findMainContainers(pod);
  if (typeof mains === 'string') return [];
  return pod.containers.filter((c) => !mains.includes(c.name));
}

/**
 * When the last of the main containers ended, by the kubelet's finishedAt (epoch ms); undefined
 * while one of them has not terminated, or its termination says no time.
 */
export function mainsFinishedAt(pod: PodView, mains: readonly string[]): number | undefined {
  let last = Number.NEGATIVE_INFINITY;
  for (const m of mains) {
    const at = terminatedContainer(pod, m)?.finishedAt;
    if (at === undefined) return undefined;
    last = Math.max(last, at);
  }
  return last;
}

/** The restart policy that applies to a regular container: its own, else the pod's. */
export function effectiveRestartPolicy(pod: PodView, container: string): string {
  return pod.containers.find((c) => c.name === container)?.restartPolicy ?? pod.restartPolicy;
}

export function statusOf(pod: PodView, container: string): ContainerStatusView | undefined {
  return pod.containerStatuses.find((s) => s.name === container);
}

/** A container's terminated state with its restart count, or undefined while it has not terminated. */
export function terminatedContainer(pod: PodView, container: string) {
  const s = statusOf(pod, container);
  return s?.state.kind === 'terminated' ? { ...s.state, restartCount: s.restartCount } : undefined;
}

/**
 * Why a main container is not done for good, or undefined when it is: with restartPolicy Never
 * any exit is final; with OnFailure only exit code 0 is (a failure gets restarted).
 */
export function mainContainerNotDone(pod: PodView, container: string): { code: WaitCode; reason: string } | undefined {
  const state = statusOf(pod, container)?.state;
  if (state === undefined || state.kind !== 'terminated') {
    return { code: 'main-running', reason: `main container ${container} has not terminated` };
  }
  if (effectiveRestartPolicy(pod, container) === 'OnFailure' && state.exitCode !== 0) {
    return {
      code: 'main-will-restart',
      reason: `main container ${container} exited with code ${state.exitCode} and will be restarted (restartPolicy OnFailure)`,
    };
  }
  return undefined;
}

/** A regular container that still has to stop: not a main container and not terminated. */
export function needsStopping(pod: PodView, mains: readonly string[], c: ContainerSpecView): boolean {
  if (mains.includes(c.name)) return false;
  return statusOf(pod, c.name)?.state.kind !== 'terminated';
}

// ---- decide -----------------------------------------------------------------------------------

export function decide(pod: PodView, catalog: Catalog, opts: ResolveOptions = {}): Decision {
  if (isBeingDeleted(pod)) return ignore('being-deleted', 'pod is being deleted');
  if (hasFinished(pod)) return ignore('finished', `pod has already finished (phase ${pod.phase})`);
  if (pod.restartPolicy === 'Always') {
    return ignore('restart-always', 'restartPolicy Always: containers restart forever, this is not a batch pod');
  }

  const mains = findMainContainers(pod);
  if (typeof mains === 'string') return ignore('no-main-container', mains);

  for (const main of mains) {
    const notDone = mainContainerNotDone(pod, main);
    if (notDone !== undefined) return wait(notDone.code, notDone.reason);
  }

  const remaining = pod.containers.filter((c) => needsStopping(pod, mains, c));
  if (remaining.length === 0) {
    const native = usesNativeSidecars(pod) ? '; native sidecars are stopped by the kubelet' : '';
    return ignore('nothing-to-reap', `every container has terminated${native}`);
  }

  const targets: ReapTarget[] = [];
  const unsupported: string[] = [];
  for (const c of remaining) {
    const entry = findCatalogEntry(catalog, c);
    if (entry === undefined) {
      unsupported.push(c.name);
      continue;
    }
    const facts = { container: c, annotations: pod.annotations };
    const { attempts, skipped } = resolveAttempts(entry, facts, catalog, opts);
    const delay = exitDelay(entry, facts);
    targets.push({
      container: c.name,
      image: c.image,
      entry: entry.name,
      attempts,
      skipped,
      ...(entry.hint !== undefined && { hint: entry.hint }),
      ...(delay !== undefined && { exitDelay: delay }),
    });
  }

  const mainFinishedAt = mainsFinishedAt(pod, mains);
  const mainList = mains.join(', ');
  return {
    decision: 'reap',
    reason: `main container${mains.length > 1 ? 's' : ''} ${mainList} terminated; ${remaining.length} container(s) still running`,
    targets,
    unsupported,
    ...(mainFinishedAt !== undefined && { mainFinishedAt }),
  };
}
