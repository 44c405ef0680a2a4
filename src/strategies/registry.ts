import type { Attempt } from '../domain/catalog.ts';
import type { Executor, PortForwarder } from '../ports.ts';
import { type EphemeralFallback, execStrategy } from './exec.ts';
import { httpStrategy } from './http.ts';
import type { AttemptOutcome, AttemptTarget, Strategy } from './strategy.ts';

export type StrategyRegistry = { readonly [K in Attempt['kind']]: Strategy<Extract<Attempt, { kind: K }>> };

/** Every strategy kind, keyed by the catalog's attempt kind. */
export function createRegistry(deps: { portForwarder: PortForwarder; executor: Executor; ephemeral?: EphemeralFallback }): StrategyRegistry {
  return {
    http: httpStrategy(deps.portForwarder),
    exec: execStrategy(deps.executor, deps.ephemeral),
  };
}

export function runAttempt(
  registry: StrategyRegistry,
  target: AttemptTarget,
  attempt: Attempt,
  signal?: AbortSignal,
): Promise<AttemptOutcome> {
  switch (attempt.kind) {
    case 'http':
      return registry.http.run(target, attempt, signal);
    case 'exec':
      return registry.exec.run(target, attempt, signal);
  }
}
