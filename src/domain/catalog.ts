/**
 * The sidecar catalog: which containers hahaha knows how to stop, and how, cleanest way first.
 * Loaded and validated by `config/catalog-file.ts`; matching is pure.
 */

import { describeKind, type KindAttempt } from './attempt-kinds/index.ts';

export type { ExecAttempt, HttpAttempt } from './attempt-kinds/index.ts';

/**
 * When an attempt applies, read from the sidecar's own configuration: a command-line flag
 * (`--quitquitquit`, in `command` or `args`, as `--flag`, `--flag=value` or `--flag value`), an
 * environment variable with a literal value, or a pod annotation. Every field given must hold.
 */
export interface AttemptCondition {
  /** The flag is present (and not `=false`). */
  readonly flag?: string;
  /** The flag is absent (or `=false`). */
  readonly noFlag?: string;
  /** The environment variable is set to a value other than `false`/`0`/empty. */
  readonly env?: string;
  /** The pod annotation is set; with `value`, to exactly that. */
  readonly annotation?: string;
  readonly value?: string;
}

/** Where a setting may come from in the sidecar's own configuration: the first of these that is set. */
export interface SettingSource {
  readonly flag?: string;
  readonly env?: string;
  readonly annotation?: string;
}

/** Where an HTTP attempt's port may come from instead of its fixed `port` (which stays the default). */
export type PortSource = SettingSource;

/** What an attempt knows beyond how to send it: when it applies, and how the sidecar exits. */
export interface AttemptRules {
  readonly when?: AttemptCondition;
  readonly portFrom?: PortSource;
  /** The exit code the sidecar leaves after this attempt (measured); used to predict the Job's outcome. */
  readonly exitCode?: number;
}

export type Attempt = KindAttempt & AttemptRules;

export interface CatalogEntry {
  /** Entry id, used in logs and errors. */
  readonly name: string;
  /** Container names this entry applies to. */
  readonly containers: readonly string[];
  /** When set, the container's image must also match this pattern (searched, not anchored). */
  readonly image?: ImagePattern;
  readonly attempts: readonly Attempt[];
  /** What the sidecar needs for the attempts to work; appended to failure events. */
  readonly hint?: string;
  /**
   * Convert matching containers into native sidecars (init containers with restartPolicy
   * Always) when their pod is created, so the kubelet stops them and their exit code no longer
   * decides the pod's phase. @default false
   */
  readonly native: boolean;
  /**
   * Where the sidecar's configuration says how long it keeps running once asked to stop (Go
   * durations, summed: cloud-sql-proxy's --min-sigterm-delay and --max-sigterm-delay), with the
   * program's own default when it is not set. hahaha waits that much longer for the exit before
   * it calls an accepted ask ignored.
   */
  readonly exitDelayFrom?: readonly ExitDelaySource[];
}

/** An `exitDelayFrom` item: where the setting is, and the program's default when it is absent. */
export interface ExitDelaySource extends SettingSource {
  /** The duration the program uses when none of the places sets it (linkerd-proxy's 2m). */
  readonly default?: { readonly ms: number; readonly text: string };
}

/**
 * A compiled `image` pattern. It runs in linear time in the image's length (RE2 semantics), so a
 * pod-controlled image string cannot stall the daemon's only thread the way a backtracking
 * `RegExp` such as `(a+)+$` would.
 */
export interface ImagePattern {
  /** The pattern as written in the catalog. */
  readonly source: string;
  test(image: string): boolean;
}

/**
 * Longest image reference matched against an `image` pattern; a longer one matches no pattern.
 * Real references are a registry host, a repository path and a tag or digest: well under 512.
 */
export const MAX_IMAGE_LENGTH = 512;

export interface Catalog {
  readonly entries: readonly CatalogEntry[];
  /**
   * Images known to have no shell and no kill (distroless): exec attempts cannot work in them,
   * so they are skipped (or run in an ephemeral container, when that is enabled).
   */
  readonly distrolessImages?: readonly ImagePattern[];
}

/**
 * First entry that matches the container's name (and image, when the entry has a pattern). An
 * image longer than {@link MAX_IMAGE_LENGTH} matches no pattern; {@link imageNotMatchedReason} says so.
 */
export function findCatalogEntry(catalog: Catalog, container: { name: string; image: string }): CatalogEntry | undefined {
  return catalog.entries.find((e) => e.containers.includes(container.name) && imageMatches(e, container.image));
}

/** The entry has no image pattern, or the (bounded) image matches it. */
function imageMatches(entry: CatalogEntry, image: string): boolean {
  return entry.image === undefined || (image.length <= MAX_IMAGE_LENGTH && entry.image.test(image));
}

/**
 * Why no entry matched a container although entries name it: its image is longer than
 * {@link MAX_IMAGE_LENGTH}. undefined when that is not the reason.
 */
export function imageNotMatchedReason(catalog: Catalog, container: { name: string; image: string }): string | undefined {
  if (container.image.length <= MAX_IMAGE_LENGTH) return undefined;
  const named = catalog.entries.filter((e) => e.containers.includes(container.name) && e.image !== undefined);
  if (named.length === 0 || findCatalogEntry(catalog, container) !== undefined) return undefined;
  return `image of container ${container.name} is ${container.image.length} characters, longer than the ${MAX_IMAGE_LENGTH} that image patterns are matched against, so entry ${named.map((e) => e.name).join(', ')} does not apply`;
}

/**
 * The pod annotations and the containers' environment variables that the catalog's conditions
 * and port sources read: what parsePod keeps of them (the rest is never read, and a main
 * container's environment can be long).
 */
export function catalogReads(catalog: Catalog): { readonly annotations: ReadonlySet<string>; readonly env: ReadonlySet<string> } {
  const annotations = new Set<string>();
  const env = new Set<string>();
  for (const e of catalog.entries) {
    for (const read of [...e.attempts.flatMap((a) => [a.when, a.portFrom]), ...(e.exitDelayFrom ?? [])]) {
      if (read?.annotation !== undefined) annotations.add(read.annotation);
      if (read?.env !== undefined) env.add(read.env);
    }
  }
  return { annotations, env };
}

/** One-line human description of an attempt, as events and logs show it. */
export function describeAttempt(a: Attempt): string {
  return describeKind(a);
}
