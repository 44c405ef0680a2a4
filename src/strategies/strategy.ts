/**
 * One strategy kind is one module implementing `Strategy` plus one line in `registry.ts`.
 * A strategy asks a sidecar to stop; it does not check that it stopped (reconcile verifies that
 * against the API), so a strategy is safe to run twice.
 */
import type { Attempt } from '../domain/catalog.ts';
import type { PodRef } from '../ports.ts';

export type AttemptOutcome =
  | { readonly ok: true; readonly detail: string }
  | { readonly ok: false; readonly error: string };

export interface AttemptTarget {
  readonly pod: PodRef;
  readonly container: string;
}

export interface Strategy<A extends Attempt> {
  run(target: AttemptTarget, attempt: A, signal?: AbortSignal): Promise<AttemptOutcome>;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
