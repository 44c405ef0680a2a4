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
import type { Attempt, AttemptCondition, Catalog, CatalogEntry, PortSource, SettingSource } from './catalog.ts';
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

/** The values `source` finds in the sidecar's configuration, flag first, each with the name it was found under. */
function settingValues(source: SettingSource, facts: SidecarFacts): { value: string; name: string }[] {
  const found: { value: string; name: string }[] = [];
  if (source.flag !== undefined) {
    const v = flagValue(facts.container.argv ?? [], source.flag);
    if (typeof v === 'string') found.push({ value: v, name: source.flag });
  }
  if (source.env !== undefined) {
    const v = facts.container.env?.[source.env];
    if (v !== undefined) found.push({ value: v, name: source.env });
  }
  if (source.annotation !== undefined) {
    const v = facts.annotations[source.annotation];
    if (v !== undefined) found.push({ value: v, name: source.annotation });
  }
  return found;
}

/** The port from the sidecar's configuration, else undefined (the attempt's own port applies). */
export function portFrom(source: PortSource, facts: SidecarFacts): number | undefined {
  for (const { value } of settingValues(source, facts)) {
    if (!/^\d{1,5}$/.test(value)) continue;
    const n = Number(value);
    if (n >= 1 && n <= 65535) return n;
  }
  return undefined;
}

/** The longest exit delay hahaha waits for beyond VERIFY_TIMEOUT_SECONDS, however long the sidecar's configuration says. */
export const MAX_EXIT_DELAY_MS = 600_000;

const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_PART = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * A duration as Go's time.ParseDuration reads it (`15s`, `1m30s`, `1.5h`, `0`), in milliseconds;
 * undefined when it is not one, or negative (the sidecar would refuse it, or not wait).
 */
export function parseGoDuration(text: string): number | undefined {
  let rest = text.trim().replace(/^\+/, '');
  if (rest === '0') return 0;
  if (rest === '' || rest.length > 64) return undefined;
  let ms = 0;
  while (rest !== '') {
    const m = DURATION_PART.exec(rest);
    if (m === null) return undefined;
    ms += Number(m[1]) * (DURATION_UNIT_MS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return ms;
}

/** How long the sidecar keeps running once asked to stop, by its own configuration. */
export interface ExitDelay {
  readonly ms: number;
  /** Where it was read, for events and logs: `--min-sigterm-delay=15s`. */
  readonly from: string;
}

/**
 * The entry's `exitDelayFrom` read from the sidecar's configuration: per source the first value
 * that is a Go duration, else the source's `default` (the program's own), summed, at most
 * MAX_EXIT_DELAY_MS; undefined when none is set or all are 0.
 */
export function exitDelay(entry: CatalogEntry, facts: SidecarFacts): ExitDelay | undefined {
  let ms = 0;
  const from: string[] = [];
  for (const source of entry.exitDelayFrom ?? []) {
    const set = settingValues(source, facts)
      .map(({ value, name }) => ({ value, name, d: parseGoDuration(value) }))
      .find((v) => v.d !== undefined);
    if (set?.d !== undefined) {
      if (set.d > 0) {
        ms += set.d;
        from.push(`${set.name}=${set.value}`);
      }
    } else if (source.default !== undefined) {
      ms += source.default.ms;
      from.push(`${[source.flag, source.env, source.annotation].filter((n) => n !== undefined).join(', ')} (unset: ${source.default.text} by default)`);
    }
  }
  const whole = Math.min(Math.round(ms), MAX_EXIT_DELAY_MS);
  return whole <= 0 ? undefined : { ms: whole, from: from.join(', ') };
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
