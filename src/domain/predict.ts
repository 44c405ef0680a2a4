/**
 * What stopping a pod's sidecars will do to its Job, from the spec alone: per sidecar, what the
 * first attempt that applies (domain/resolve.ts) leaves behind: complete (exit 0), fails-pod (a
 * known non-zero exit), hangs (nothing applies) or unknown; and the Job's worst. Pure; used by
 * `explain`, the preflight event and `doctor`.
 */
import type { Catalog } from './catalog.ts';
import { describeAttempt, findCatalogEntry } from './catalog.ts';
import { findMainContainers, isNativeSidecar, regularSidecars } from './decide.ts';
import type { ContainerSpecView, PodView } from './pod-view.ts';
import { exitDelay, type ResolveOptions, resolveAttempts } from './resolve.ts';

export type Outcome = 'complete' | 'fails-pod' | 'hangs' | 'unknown';

export interface Prediction {
  readonly outcome: Outcome;
  readonly exitCode?: number;
  readonly why: string;
  /** What would make it complete, when it will not. */
  readonly fix?: string;
}

/** Worst first: a Job is as bad as its worst sidecar. */
const SEVERITY: Record<Outcome, number> = { hangs: 3, 'fails-pod': 2, unknown: 1, complete: 0 };

export function worstOutcome(predictions: readonly Prediction[]): Outcome {
  let worst: Outcome = 'complete';
  for (const p of predictions) if (SEVERITY[p.outcome] > SEVERITY[worst]) worst = p.outcome;
  return worst;
}

/**
 * What stopping this sidecar will do to a pod whose main containers succeed. Native sidecars
 * always complete (the kubelet stops them and their exit code does not count).
 */
export function predictSidecar(pod: PodView, container: ContainerSpecView, catalog: Catalog, opts: ResolveOptions & { native?: boolean } = {}): Prediction {
  if (opts.native === true || container.restartPolicy === 'Always') {
    return { outcome: 'complete', why: 'a native sidecar: the kubelet stops it and its exit code does not decide the phase' };
  }
  const entry = findCatalogEntry(catalog, container);
  if (entry === undefined) {
    return {
      outcome: 'hangs',
      why: `no catalog entry matches ${container.name}: nothing will stop it`,
      fix: `add a catalog entry for ${container.name} (native: true if it may start before the main container), or make the sidecar exit on its own`,
    };
  }
  const facts = { container, annotations: pod.annotations };
  const { attempts, skipped } = resolveAttempts(entry, facts, catalog, opts);
  const first = attempts[0];
  if (first === undefined) {
    const reasons = skipped.map((s) => `${s.attempt}: ${s.why}`).join('; ');
    return {
      outcome: 'hangs',
      why: `no way to stop ${container.name} applies (${reasons})`,
      fix: `${entry.hint ?? 'see the catalog entry'}${entry.native ? '; or let hahaha make it a native sidecar (remove the opt-out)' : ''}`,
    };
  }
  const delay = exitDelay(entry, facts);
  // A sidecar configured to linger once asked (cloud-sql-proxy's --min-sigterm-delay) is waited for.
  const how = `${describeAttempt(first)}${delay === undefined ? '' : ` (it may keep running up to ${delay.ms / 1000}s after the ask, by its ${delay.from}; hahaha waits for it)`}`;
  if (first.exitCode === undefined) {
    return { outcome: 'unknown', why: `${how} stops it; its exit code is not known`, ...(entry.hint !== undefined && { fix: entry.hint }) };
  }
  if (first.exitCode === 0) return { outcome: 'complete', exitCode: 0, why: `${how} stops it with exit code 0` };
  return {
    outcome: 'fails-pod',
    exitCode: first.exitCode,
    why: `${how} stops it with exit code ${first.exitCode}, which fails the pod`,
    fix: [
      entry.hint ?? 'give it a clean shutdown endpoint',
      entry.native ? 'or let hahaha make it a native sidecar (remove the opt-out)' : 'or make it a native sidecar (catalog native: true)',
    ].join('; '),
  };
}

export interface PodPrediction {
  /** The Job's predicted result if its main containers succeed: the worst of its sidecars. */
  readonly job: Outcome;
  readonly why?: string;
  readonly sidecars: readonly { readonly container: string; readonly predicted: Prediction }[];
}

/**
 * What will happen to a pod's Job once its main containers succeed, from the spec alone: each
 * sidecar (regular containers other than the main ones, and native sidecars) predicted.
 */
export function predictPod(pod: PodView, catalog: Catalog, opts: ResolveOptions = {}): PodPrediction {
  if (pod.restartPolicy === 'Always') return { job: 'unknown', why: 'restartPolicy Always: not a batch pod', sidecars: [] };
  const mains = findMainContainers(pod);
  if (typeof mains === 'string') return { job: 'unknown', why: mains, sidecars: [] };
  const sidecars = [...pod.initContainers.filter(isNativeSidecar), ...regularSidecars(pod)].map((c) => ({
    container: c.name,
    predicted: predictSidecar(pod, c, catalog, opts),
  }));
  return { job: worstOutcome(sidecars.map((s) => s.predicted)), sidecars };
}
