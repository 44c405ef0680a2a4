/**
 * The sidecar catalog: which containers hahaha knows how to stop, and how, cleanest way first.
 * Loaded and validated by `config/catalog-file.ts`; matching is pure.
 */

export interface HttpAttempt {
  readonly kind: 'http';
  readonly method: string;
  readonly port: number;
  readonly path: string;
  /** Status codes that mean "the sidecar accepted the request". */
  readonly acceptStatus: readonly number[];
  readonly timeoutSeconds: number;
}

export interface ExecAttempt {
  readonly kind: 'exec';
  /** argv run inside the sidecar container; no shell is involved. */
  readonly command: readonly string[];
  readonly timeoutSeconds: number;
}

export type Attempt = HttpAttempt | ExecAttempt;

export interface CatalogEntry {
  /** Entry id, used in logs and errors. */
  readonly name: string;
  /** Container names this entry applies to. */
  readonly containers: readonly string[];
  /** When set, the container's image must also match this pattern. */
  readonly image?: RegExp;
  readonly attempts: readonly Attempt[];
  /** What the sidecar needs for the attempts to work; appended to failure events. */
  readonly hint?: string;
  /**
   * Convert matching containers into native sidecars (init containers with restartPolicy
   * Always) when their pod is created, so the kubelet stops them and their exit code no longer
   * decides the pod's phase. @default false
   */
  readonly native: boolean;
}

export interface Catalog {
  readonly entries: readonly CatalogEntry[];
}

/** First entry that matches the container's name (and image, when the entry has a pattern). */
export function findCatalogEntry(
  catalog: Catalog,
  container: { name: string; image: string },
): CatalogEntry | undefined {
  return catalog.entries.find(
    (e) => e.containers.includes(container.name) && (e.image === undefined || e.image.test(container.image)),
  );
}

/** One-line human description of an attempt, as events and logs show it. */
export function describeAttempt(a: Attempt): string {
  return a.kind === 'http' ? `http ${a.method} :${a.port}${a.path}` : `exec ${a.command.join(' ')}`;
}
