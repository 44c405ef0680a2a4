/**
 * In-memory cache of the watched pods (slim PodViews), fed by the pod source, read by reconcile.
 * `waitFor` is event-driven: it re-checks its predicate on every update of that pod, so a
 * sidecar's termination is seen the moment the watch delivers it, without polling the API.
 */
import { compactPod, type Intern, internTable, sameView } from './domain/compact-pod.ts';
import { type PodView, podKey } from './domain/pod-view.ts';
import type { PodStore } from './ports.ts';

type Waiter = (pod: PodView | undefined) => void;

/**
 * Waits for a callback: `attach` registers `finish` where it will be called and returns how to
 * remove it. Settles with what `finish` is given, or with `fallback` after `timeoutMs` or on
 * abort; the callback is removed either way.
 */
function waitForCall<T>(attach: (finish: (v: T) => void) => () => void, fallback: T, timeoutMs: number, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) return Promise.resolve(fallback);
  return new Promise((resolve) => {
    let detach = (): void => {};
    const finish = (v: T): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      detach();
      resolve(v);
    };
    const onAbort = (): void => finish(fallback);
    const timer = setTimeout(onAbort, timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    detach = attach(finish);
  });
}

export class PodCache implements PodStore {
  private readonly pods = new Map<string, PodView>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** What repeats across pods (namespaces, images, a sidecar's spec...) is kept once. */
  private readonly intern: Intern = internTable();
  /** The watch scopes that are down (failed, backing off, relisting): the cache may be behind. */
  private readonly stale = new Set<string>();
  /** When the last time the cache was behind ended (epoch ms). */
  private currentAgainAt = Number.NEGATIVE_INFINITY;
  private readonly currentWaiters = new Set<() => void>();
  private readonly clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  get size(): number {
    return this.pods.size;
  }

  get(key: string): PodView | undefined {
    return this.pods.get(key);
  }

  keys(): IterableIterator<string> {
    return this.pods.keys();
  }

  /** The keys of the pods in `namespace`, or of all pods when it is undefined. */
  keysIn(namespace: string | undefined): string[] {
    const keys: string[] = [];
    for (const [key, pod] of this.pods) if (namespace === undefined || pod.namespace === namespace) keys.push(key);
    return keys;
  }

  /**
   * Stores the pod and wakes its waiters. Returns whether the pod is new to the cache or shows
   * something its previous version did not (see sameView): an update of only what a view leaves
   * out (conditions, readiness, IPs) answers false.
   */
  upsert(pod: PodView): boolean {
    const key = podKey(pod);
    const previous = this.pods.get(key);
    const before = previous?.uid === pod.uid ? previous : undefined;
    const kept = compactPod(pod, this.intern, before);
    // The map keeps the key a pod was first stored under: a new pod's is made of the shared
    // namespace, so that the key does not hold a copy of it.
    this.pods.set(previous === undefined ? podKey(kept) : key, kept);
    this.notify(key, kept);
    return before === undefined || !sameView(kept, before);
  }

  /** Removes the pod and wakes its waiters with undefined. Returns what was removed. */
  remove(key: string): PodView | undefined {
    const previous = this.pods.get(key);
    this.pods.delete(key);
    this.notify(key, undefined);
    return previous;
  }

  waitFor(key: string, predicate: (pod: PodView) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<PodView | undefined> {
    const current = this.pods.get(key);
    if (current === undefined) return Promise.resolve(undefined);
    if (predicate(current)) return Promise.resolve(current);
    return waitForCall<PodView | undefined>(
      (finish) => {
        let set = this.waiters.get(key);
        if (set === undefined) {
          set = new Set();
          this.waiters.set(key, set);
        }
        const waiters = set;
        const waiter: Waiter = (pod) => {
          if (pod === undefined) finish(undefined);
          else if (predicate(pod)) finish(pod);
        };
        waiters.add(waiter);
        return () => {
          waiters.delete(waiter);
          if (waiters.size === 0) this.waiters.delete(key);
        };
      },
      undefined,
      timeoutMs,
      signal,
    );
  }

  /** The watch of `scope` is down: from now until it is back, updates may be missed. */
  markStale(scope: string): void {
    this.stale.add(scope);
  }

  /** The watch of `scope` is back (listed, or watching again). */
  markCurrent(scope: string): void {
    if (!this.stale.delete(scope) || this.stale.size > 0) return;
    this.currentAgainAt = this.clock();
    for (const wake of [...this.currentWaiters]) wake();
  }

  disruptedSince(since: number): boolean {
    return this.stale.size > 0 || this.currentAgainAt >= since;
  }

  whenCurrent(timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.stale.size === 0) return Promise.resolve(true);
    return waitForCall(
      (finish) => {
        const wake = (): void => finish(true);
        this.currentWaiters.add(wake);
        return () => this.currentWaiters.delete(wake);
      },
      false,
      timeoutMs,
      signal,
    );
  }

  private notify(key: string, pod: PodView | undefined): void {
    const set = this.waiters.get(key);
    if (set === undefined) return;
    for (const w of [...set]) w(pod);
  }
}
