/**
 * Lists and watches the selected pods and keeps the PodCache current.
 *
 * One loop per scope (all namespaces, or each configured namespace): list (paginated, label
 * selector applied), then watch from the list's resourceVersion with bookmarks; a watch that
 * ends cleanly is resumed from the last resourceVersion, an expired one (410 Gone) triggers a
 * relist, and any error restarts the loop after an exponential backoff with jitter (800 ms up to
 * 30 s, reset once a watch delivers again). Only slim PodViews are kept.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isMalformed, type ParseOptions, type PodView, parsePod, podKey } from '../domain/pod-view.ts';
import type { PodCache } from '../pod-cache.ts';
import type { PodWatch, PodWatchEvents } from '../ports.ts';
import { retryDelayMs } from '../reconcile/retry-policy.ts';
import type { Metrics } from '../record/metrics.ts';
import type { KubeClient } from './kube-client.ts';
import { podsPath } from './paths.ts';

/** With what parsePod keeps (the annotations and environment variables the catalog reads). */
export interface PodSourceOptions extends ParseOptions {
  readonly selector: string;
  /**
   * Field selector of the list and watch. hahaha watches `status.phase=Running`: pods that
   * finished (Succeeded, Failed) never need anything, so memory follows running job pods, not
   * the cluster's history. A pod that leaves the selection arrives as DELETED with its new state.
   */
  readonly fieldSelector?: string;
  /** Empty: all namespaces. */
  readonly namespaces: readonly string[];
}

const BACKOFF = { baseMs: 800, maxMs: 30_000 };
/**
 * Pods per list page. Each page is parsed whole before its pods are kept, and what the heap grows
 * to while doing so stays resident (V8 pools the pages): 500 per page cost ~16 MiB more RSS than
 * 100 at 5 000 pods. 20 000 pods are 200 requests at 100.
 */
const PAGE_SIZE = 100;

class Gone extends Error {}

interface Scope {
  readonly namespace: string | undefined;
  synced: boolean;
  failures: number;
  abort?: AbortController;
}

export class PodSource implements PodWatch {
  private readonly client: KubeClient;
  private readonly opts: PodSourceOptions;
  private readonly cache: PodCache;
  private readonly events: PodWatchEvents;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly scopes: Scope[];
  private readonly malformedSeen = new Set<string>();
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  /** Aborted by stop(): ends every scope's backoff sleep at once. */
  private readonly stopping = new AbortController();
  private firstSyncedAt: number | undefined;

  constructor(client: KubeClient, opts: PodSourceOptions, cache: PodCache, events: PodWatchEvents, metrics: Metrics, log: Logger) {
    this.client = client;
    this.opts = opts;
    this.cache = cache;
    this.events = events;
    this.metrics = metrics;
    this.log = log.child({ component: 'pod-source' });
    const namespaces = opts.namespaces.length === 0 ? [undefined] : opts.namespaces;
    this.scopes = namespaces.map((namespace) => ({ namespace, synced: false, failures: 0 }));
  }

  /** True once every scope has completed its first list. */
  get synced(): boolean {
    return this.scopes.every((s) => s.synced);
  }

  get syncedAt(): number | undefined {
    return this.firstSyncedAt;
  }

  start(): void {
    for (const scope of this.scopes) this.loops.push(this.run(scope));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.scopes) s.abort?.abort();
    this.stopping.abort();
    await Promise.allSettled(this.loops);
  }

  private async run(scope: Scope): Promise<void> {
    let resourceVersion: string | undefined;
    while (!this.stopped) {
      try {
        if (resourceVersion === undefined) resourceVersion = await this.list(scope);
        const started = Date.now();
        const from = resourceVersion;
        resourceVersion = await this.watch(scope, resourceVersion);
        // A watch the server closes at once, again and again, must not become a busy loop.
        if (Date.now() - started < 1000 && resourceVersion === from) {
          throw new Error('watch closed immediately without events');
        }
      } catch (err) {
        if (this.stopped) return;
        // Until the list or the watch is back, updates (a sidecar's exit) may be missed.
        this.cache.markStale(this.scopeName(scope));
        if (err instanceof Gone) {
          this.log.info({ namespace: this.scopeName(scope) }, 'watch expired (410 Gone); relisting');
          resourceVersion = undefined;
          continue;
        }
        scope.failures += 1;
        this.metrics.watchRestarts.inc();
        const delay = retryDelayMs(BACKOFF, scope.failures);
        this.log.warn({ err, namespace: this.scopeName(scope), delayMs: delay, failures: scope.failures }, 'pod watch failed; restarting after backoff');
        await this.sleep(delay);
        // After repeated failures the resourceVersion may be long gone: list afresh.
        if (scope.failures >= 3) resourceVersion = undefined;
      }
    }
  }

  private async list(scope: Scope): Promise<string> {
    const pods: PodView[] = [];
    let resourceVersion = '';
    for await (const page of this.client.pages(podsPath(scope.namespace), this.selectors(), { limit: PAGE_SIZE, timeoutMs: 60_000 })) {
      for (const item of page.items ?? []) {
        const pod = this.accept(item);
        if (pod !== undefined) pods.push(pod);
      }
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      if (this.stopped) break;
    }

    // The scopes do not overlap (all namespaces, or distinct ones), so the scope's pods in the
    // cache are those of its namespace; a set of keys per scope would hold every key twice.
    const fresh = new Set(pods.map(podKey));
    for (const key of this.cache.keysIn(scope.namespace)) {
      if (!fresh.has(key)) this.delete(key);
    }
    for (const pod of pods) this.upsert(pod);
    if (!scope.synced) this.log.info({ namespace: this.scopeName(scope), pods: pods.length }, 'initial pod list synced');
    scope.synced = true;
    if (this.firstSyncedAt === undefined && this.synced) this.firstSyncedAt = Date.now();
    this.cache.markCurrent(this.scopeName(scope));
    return resourceVersion;
  }

  /** Watches until the server ends the watch; returns the last resourceVersion seen. */
  private async watch(scope: Scope, fromVersion: string): Promise<string> {
    const timeoutSeconds = 240 + Math.floor(Math.random() * 60);
    const abort = new AbortController();
    scope.abort = abort;
    if (this.stopped) abort.abort();
    let resourceVersion = fromVersion;
    let gone = false;
    let failed: unknown;
    const handle = (type: string, obj: unknown): void => {
      const meta = (obj as { metadata?: { resourceVersion?: string } } | null)?.metadata;
      if (type === 'ERROR') {
        const code = (obj as { code?: number } | null)?.code;
        if (code === 410) gone = true;
        else failed = obj;
        abort.abort();
        return;
      }
      if (meta?.resourceVersion !== undefined) resourceVersion = meta.resourceVersion;
      scope.failures = 0;
      if (type === 'BOOKMARK') return;
      const pod = this.accept(obj);
      if (pod === undefined) return;
      if (type === 'DELETED') this.delete(podKey(pod));
      else this.upsert(pod);
    };
    try {
      // The server ends the watch after timeoutSeconds; silence beyond that plus a margin means
      // a dead connection.
      await this.client.watch(podsPath(scope.namespace), { ...this.selectors(), resourceVersion, allowWatchBookmarks: true, timeoutSeconds }, handle, {
        signal: abort.signal,
        idleMs: (timeoutSeconds + 60) * 1000,
        onOpen: () => this.cache.markCurrent(this.scopeName(scope)),
      });
    } catch (err) {
      if (!gone && !abort.signal.aborted && !this.stopped) throw err;
    }
    if (gone) throw new Gone('resource version expired');
    if (failed !== undefined) throw new Error(`watch error event: ${(failed as { message?: string } | null)?.message ?? JSON.stringify(failed)}`);
    return resourceVersion;
  }

  /** The scope's name in logs and in the cache's watch bookkeeping: its namespace, or `*`. */
  private scopeName(scope: Scope): string {
    return scope.namespace ?? '*';
  }

  private selectors(): { labelSelector: string; fieldSelector?: string } {
    return { labelSelector: this.opts.selector, ...(this.opts.fieldSelector !== undefined && { fieldSelector: this.opts.fieldSelector }) };
  }

  private accept(raw: unknown): PodView | undefined {
    const parsed = parsePod(raw, this.opts);
    if (!isMalformed(parsed)) return parsed;
    const id = parsed.uid || `${parsed.namespace}/${parsed.name}`;
    if (!this.malformedSeen.has(id)) {
      this.malformedSeen.add(id);
      if (this.malformedSeen.size > 10_000) this.malformedSeen.clear();
      this.events.onMalformed(parsed);
    }
    return undefined;
  }

  private upsert(pod: PodView): void {
    const key = podKey(pod);
    const previous = this.cache.get(key);
    if (previous !== undefined && previous.resourceVersion === pod.resourceVersion && previous.uid === pod.uid) return;
    if (previous !== undefined && previous.uid !== pod.uid) this.events.onDelete(key, previous);
    const changed = this.cache.upsert(pod);
    if (previous === undefined) this.metrics.watchedPods.set(this.cache.size);
    // Reconcile is level-based: a version that shows nothing new has nothing to reconcile.
    if (changed) this.events.onUpsert(key, pod);
  }

  /**
   * A pod that leaves the field selection (it finished) arrives as DELETED carrying its
   * previous state (the API server's watch cache does so), so the cache learns nothing new from
   * it; the reconciler reads the finished state from the API when it needs it.
   */
  private delete(key: string): void {
    const removed = this.cache.remove(key);
    this.metrics.watchedPods.set(this.cache.size);
    if (removed !== undefined) this.events.onDelete(key, removed);
  }

  private sleep(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.stopping.signal }).catch(() => {});
  }
}
