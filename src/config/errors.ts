/**
 * Failures hahaha knows and can explain in one line, and the exit codes the CLI gives them.
 *
 * A known failure's message reads `<what>: <why> (<fix>)`; the CLI prints it as
 * `hahaha: <message>` on one line, with no stack trace. Anything else that escapes is a bug.
 */

/** Exit codes of `hahaha`, documented in the README's "Errors and exit codes". */
export const ExitCode = {
  /** Done: `explain` printed a decision, `run` stopped after SIGTERM/SIGINT. */
  ok: 0,
  /** A bug in hahaha: a stack trace was printed, please report it. */
  bug: 1,
  /** Bad usage, input or configuration: arguments, environment, catalog, kubeconfig, explain input, a port in use. */
  config: 2,
  /** No credentials, or the cluster cannot be reached or refuses them. */
  cluster: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Builds the one-line message `<what>: <why> (<fix>)`; `fix` is left out when there is none. */
export function failureLine(what: string, why: string, fix?: string): string {
  return `${what}: ${oneLine(why)}${fix === undefined ? '' : ` (${fix})`}`;
}

/** Joins lines (and the blanks around line breaks), so a message taken from a library stays on one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** A known failure the user can fix; `exitCode` says which kind. */
export class KnownError extends Error {
  override readonly name: string = 'KnownError';
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue, options?: ErrorOptions) {
    super(oneLine(message), options);
    this.exitCode = exitCode;
  }
}

/** Invalid configuration or input (environment, catalog, kubeconfig, a port in use): exit 2. */
export class ConfigError extends KnownError {
  override readonly name: string = 'ConfigError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.config, options);
  }
}

/** No credentials, or the cluster cannot be reached or refuses them: exit 3. */
export class ClusterError extends KnownError {
  override readonly name: string = 'ClusterError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.cluster, options);
  }
}

/** How a value of unexpected type or shape is shown after "got": `the string "15020"`, `a list`, `null`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `the string ${quote(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

/** JSON-quotes a value for a message, shortened to 60 characters. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}
