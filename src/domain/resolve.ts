/**
 * Resolving a catalog entry against one sidecar as it is configured, and predicting what its
 * stop will do to the Job. Pure.
 *
 * - `resolveAttempts` reads the sidecar's own flags, literal env and the pod's annotations: it
 *   takes an HTTP port from a flag (`--admin-port 9092`), skips attempts whose condition does not
 *   hold (`--quitquitquit` absent, linkerd's proxy-admin-shutdown annotation missing) and exec
 *   attempts that cannot work in a distroless image, each with the reason.
 *
 * `predict.ts` builds the Job's predicted outcome on it.
 */
import type { Attempt, AttemptCondition, Catalog, CatalogEntry, PortSource } from './catalog.ts';
import { describeAttempt } from './catalog.ts';
import type { ContainerSpecView } from './pod-view.ts';

/** What resolution reads about one sidecar. */
export interface SidecarFacts {
  readonly container: ContainerSpecView;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface SkippedAttempt {
  readonly attempt: string;
  readonly why: string;
}

export interface Resolution {
  /** The attempts that apply, in order, ports resolved. */
  readonly attempts: readonly Attempt[];
  readonly skipped: readonly SkippedAttempt[];
}

export interface ResolveOptions {
  /** Exec attempts in distroless images run in an ephemeral container instead of being skipped. */
  readonly ephemeralSignal?: boolean;
}

const FALSE_VALUES = new Set(['false', '0', 'no', 'off', '']);

/**
 * A flag's value in argv: `true` for `--flag` followed by nothing or another flag, the text after
 * `=` for `--flag=value`, else the next word for `--flag value`; undefined when absent. A single
 * dash form (`-flag`) counts as well, as Go's flag package accepts both.
 */
export function flagValue(argv: readonly string[], flag: string): string | true | undefined {
  const names = new Set([flag, flag.startsWith('--') ? flag.slice(1) : `-${flag}`]);
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (word === '--') break;
    const eq = word.indexOf('=');
    const name = eq >= 0 ? word.slice(0, eq) : word;
    if (!names.has(name)) continue;
    if (eq >= 0) return word.slice(eq + 1);
    const next = argv[i + 1];
    return next === undefined || next.startsWith('-') ? true : next;
  }
  return undefined;
}

/** A boolean flag is on: present, and not `=false`. */
function flagOn(argv: readonly string[], flag: string): boolean {
  const v = flagValue(argv, flag);
  if (v === undefined) return false;
  // A string is `--flag=value`, or the positional argument after a boolean flag
  // (`--quitquitquit proj:region:inst`): off only for an explicit false.
  return v === true || !FALSE_VALUES.has(v.toLowerCase());
}

/** Why the condition does not hold, or undefined when it does. */
export function conditionUnmet(when: AttemptCondition, facts: SidecarFacts): string | undefined {
  const argv = facts.container.argv ?? [];
  const env = facts.container.env ?? {};
  const envOn = (name: string) => env[name] !== undefined && !FALSE_VALUES.has((env[name] as string).toLowerCase());
  if (when.flag !== undefined) {
    const viaEnv = when.env !== undefined && envOn(when.env);
    if (!flagOn(argv, when.flag) && !viaEnv) {
      return `${facts.container.name} is not started with ${when.flag}${when.env === undefined ? '' : ` (nor ${when.env}=true)`}`;
    }
  } else if (when.env !== undefined && !envOn(when.env)) {
    return `${facts.container.name} has no ${when.env}=true`;
  }
  if (when.noFlag !== undefined && flagOn(argv, when.noFlag)) return `${facts.container.name} is started with ${when.noFlag}`;
  if (when.annotation !== undefined) {
    const v = facts.annotations[when.annotation];
    if (v === undefined) return `the pod has no annotation ${when.annotation}${when.value === undefined ? '' : `: ${when.value}`}`;
    if (when.value !== undefined && v !== when.value) return `the pod's annotation ${when.annotation} is "${v}", not "${when.value}"`;
  }
  return undefined;
}

/** The port from the sidecar's configuration, else undefined (the attempt's own port applies). */
export function portFrom(source: PortSource, facts: SidecarFacts): number | undefined {
  const candidates: (string | undefined)[] = [];
  if (source.flag !== undefined) {
    const v = flagValue(facts.container.argv ?? [], source.flag);
    candidates.push(v === true ? undefined : v);
  }
  if (source.env !== undefined) candidates.push(facts.container.env?.[source.env]);
  if (source.annotation !== undefined) candidates.push(facts.annotations[source.annotation]);
  for (const c of candidates) {
    if (c === undefined || !/^\d{1,5}$/.test(c)) continue;
    const n = Number(c);
    if (n >= 1 && n <= 65535) return n;
  }
  return undefined;
}

/** Whether the catalog knows the image to have no shell and no kill. */
export function isDistroless(catalog: Catalog, image: string): boolean {
  return (catalog.distrolessImages ?? []).some((p) => p.test(image));
}

export function resolveAttempts(entry: CatalogEntry, facts: SidecarFacts, catalog: Catalog, opts: ResolveOptions = {}): Resolution {
  const attempts: Attempt[] = [];
  const skipped: SkippedAttempt[] = [];
  for (const a of entry.attempts) {
    const unmet = a.when === undefined ? undefined : conditionUnmet(a.when, facts);
    if (unmet !== undefined) {
      skipped.push({ attempt: describeAttempt(a), why: unmet });
      continue;
    }
    if (a.kind === 'exec' && opts.ephemeralSignal !== true && isDistroless(catalog, facts.container.image)) {
      skipped.push({
        attempt: describeAttempt(a),
        why: `image ${facts.container.image} is distroless (no ${a.command[0]}); an ephemeral container could run it if enabled`,
      });
      continue;
    }
    if (a.kind === 'http' && a.portFrom !== undefined) {
      const port = portFrom(a.portFrom, facts);
      attempts.push(port === undefined ? a : { ...a, port });
      continue;
    }
    attempts.push(a);
  }
  return { attempts, skipped };
}
