/**
 * Stops a previous leader made but did not report. hahaha posts a sidecar's `Killing` event once
 * it has seen the sidecar terminated; a replica SIGKILLed between the two leaves a stopped sidecar
 * without its event, and its pod, once finished, leaves the watch. The next leader (or the same
 * Deployment's next process) looks at the sidecars that terminated around the hand-over and
 * reports each with the event the previous leader would have posted, under the same name
 * ({@link stopEventName}): when that leader did post it, the create answers AlreadyExists and
 * nothing is posted twice. Pure.
 */
import { createHash } from 'node:crypto';
import { type Catalog, findCatalogEntry } from './catalog.ts';
import { findMainContainers, regularSidecars, terminatedContainer } from './decide.ts';
import type { PodView } from './pod-view.ts';

/** Kubernetes object names (DNS subdomains) are at most this long. */
const MAX_NAME = 253;

/**
 * The name of the Event that reports a sidecar's stop: the same for every replica, so that a
 * second report of one stop (a successor's, or a retried post whose answer was lost) is refused
 * as AlreadyExists. Keyed by the pod's uid, the container and its restart count (a sidecar that
 * exited non-zero under restartPolicy OnFailure is restarted and stopped again).
 */
export function stopEventName(pod: { readonly name: string; readonly uid: string }, container: string, restartCount: number): string {
  return eventName(pod, `${container}/${restartCount}`);
}

/**
 * The name of an event said once per pod (`what`: "preflight", "native-sidecars", …), the same
 * for every replica and process, so that a restart or a new leader does not say it again.
 */
export function onceEventName(pod: { readonly name: string; readonly uid: string }, what: string): string {
  // '@' cannot occur in a container name, so these never collide with a stop's name.
  return eventName(pod, `@${what}`);
}

function eventName(pod: { readonly name: string; readonly uid: string }, key: string): string {
  const hash = createHash('sha256').update(`${pod.uid}/${key}`).digest('hex').slice(0, 16);
  return `${pod.name.slice(0, MAX_NAME - hash.length - 1)}.${hash}`;
}

/** The hand-over window: sidecars that terminated within it may have been stopped by the previous leader. */
export interface HandoverWindow {
  /** Epoch ms: the earliest a previous leader's unreported stop can have ended. */
  readonly from: number;
  /** Epoch ms: later stops are this replica's own. */
  readonly to: number;
}

export interface UnreportedStop {
  readonly container: string;
  readonly exitCode: number;
  readonly restartCount: number;
}

/**
 * Whether `pod` has a container {@link unreportedStops} can find: a regular container besides its
 * main ones with a catalog entry. Read from the spec alone, so it holds for every state of the
 * pod: a pod without one (its sidecars were made native, or it has none hahaha stops) never
 * needs to be read for a hand-over.
 */
export function mayHaveUnreportedStops(pod: PodView, catalog: Catalog): boolean {
  return regularSidecars(pod).some((c) => findCatalogEntry(catalog, c) !== undefined);
}

/**
 * The sidecars of `pod` that a previous leader may have stopped without reporting: regular
 * containers with a catalog entry (the ones hahaha stops) that terminated after every main
 * container had, within the window. A sidecar that exited on its own in that window cannot be
 * told apart from one stopped; the event says the stop was reported by the next leader.
 */
export function unreportedStops(pod: PodView, catalog: Catalog, window: HandoverWindow): UnreportedStop[] {
  const mains = findMainContainers(pod);
  if (typeof mains === 'string') return [];
  let mainEnd = 0;
  for (const m of mains) {
    const t = terminatedContainer(pod, m);
    if (t?.finishedAt === undefined) return [];
    mainEnd = Math.max(mainEnd, t.finishedAt);
  }
  const found: UnreportedStop[] = [];
  for (const c of pod.containers) {
    if (mains.includes(c.name)) continue;
    const t = terminatedContainer(pod, c.name);
    if (t?.finishedAt === undefined || t.finishedAt < mainEnd || t.finishedAt < window.from || t.finishedAt > window.to) continue;
    // Last: matching the catalog's image patterns is the costly part.
    if (findCatalogEntry(catalog, c) === undefined) continue;
    found.push({ container: c.name, exitCode: t.exitCode, restartCount: t.restartCount });
  }
  return found;
}
