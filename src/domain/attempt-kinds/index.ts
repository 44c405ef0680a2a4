/**
 * Every attempt kind, keyed by its catalog key. A new kind: a module beside these, one line
 * here, its runner in `strategies/` and one line in `strategies/registry.ts`.
 */
import { type ExecAttempt, execKind } from './exec.ts';
import { type HttpAttempt, httpKind } from './http.ts';
import type { AttemptKind } from './kind.ts';

export type { ExecAttempt } from './exec.ts';
export type { HttpAttempt } from './http.ts';
export type { AttemptKind, FieldCheck } from './kind.ts';

/** The kinds' own fields, one union member per kind. */
export type KindAttempt = HttpAttempt | ExecAttempt;

export const ATTEMPT_KINDS: { readonly [K in KindAttempt['kind']]: AttemptKind<Extract<KindAttempt, { kind: K }>> } = {
  http: httpKind,
  exec: execKind,
};

export const ATTEMPT_KIND_NAMES = Object.keys(ATTEMPT_KINDS) as KindAttempt['kind'][];

/** `describe` of the attempt's kind. */
export function describeKind(a: KindAttempt): string {
  return (ATTEMPT_KINDS[a.kind] as AttemptKind<KindAttempt>).describe(a);
}

export function kindJson(a: KindAttempt): Record<string, unknown> {
  return (ATTEMPT_KINDS[a.kind] as AttemptKind<KindAttempt>).json(a);
}
