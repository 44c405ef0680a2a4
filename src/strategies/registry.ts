import type { Attempt } from '../domain/catalog.ts';
import type { Executor, PortForwarder } from '../ports.ts';
import { type EphemeralFallback, execStrategy } from './exec.ts';
import { httpStrategy } from './http.ts';
import type { AttemptOutcome, AttemptTarget, Strategy } from './strategy.ts';

export type StrategyRegistry = { readonly [K in Attempt['kind']]: Strategy<Extract<Attempt, { kind: K }>> };

/** Every strategy, keyed by the catalog's attempt kind (domain/attempt-kinds): one line per kind. */
export function createRegistry(deps: { portForwarder: PortForwarder; executor: Executor; ephemeral?: EphemeralFallback }): StrategyRegistry {
  return {
    http: httpStrategy(deps.portForwarder),
    exec: execStrategy(deps.executor, deps.ephemeral),
  };
}

/** Runs the attempt with its kind's strategy. */
export function runAttempt(registry: StrategyRegistry, target: AttemptTarget, attempt: Attempt, signal?: AbortSignal): Promise<AttemptOutcome> {
  return (registry[attempt.kind] as Strategy<Attempt>).run(target, attempt, signal);
}
