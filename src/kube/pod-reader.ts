/**
 * Reads pods straight from the API (pods get and list, which the chart grants). The watch
 * selects running pods only and, as a pod finishes, delivers its previous state; reading the pod
 * is how hahaha learns the state it finished in. Listing the finished ones is how a new leader
 * finds the stops its predecessor did not report (domain/handover.ts).
 */
import { isMalformed, type ParseOptions, type PodView, parsePod } from '../domain/pod-view.ts';
import type { PodReader, PodRef } from '../ports.ts';
import { apiStatus, type KubeClient } from './kube-client.ts';
import { podPath, podsPath } from './paths.ts';

/** Pods that have finished: Succeeded, Failed (and Unknown). */
const FINISHED_PODS = 'status.phase!=Running,status.phase!=Pending';
/** Pods per page of a list; each page is parsed and let go before the next is read. */
const PAGE_SIZE = 100;

export interface PodReaderOptions extends ParseOptions {
  /** The watch's label selector: only the pods hahaha watches are listed. */
  readonly selector: string;
  /** The watch's namespaces; empty: all. */
  readonly namespaces: readonly string[];
}

export class ApiPodReader implements PodReader {
  private readonly client: KubeClient;
  private readonly opts: PodReaderOptions;

  constructor(client: KubeClient, opts: PodReaderOptions) {
    this.client = client;
    this.opts = opts;
  }

  async listFinished(onPod: (pod: PodView) => Promise<void>): Promise<void> {
    const namespaces = this.opts.namespaces.length === 0 ? [undefined] : this.opts.namespaces;
    for (const namespace of namespaces) {
      const query = { labelSelector: this.opts.selector, fieldSelector: FINISHED_PODS };
      for await (const page of this.client.pages(podsPath(namespace), query, { limit: PAGE_SIZE, timeoutMs: 60_000 })) {
        for (const item of page.items ?? []) {
          const pod = parsePod(item, this.opts);
          if (!isMalformed(pod)) await onPod(pod);
        }
      }
    }
  }

  async read(pod: PodRef): Promise<PodView | undefined> {
    try {
      const parsed = parsePod(await this.client.request('GET', podPath(pod)), this.opts);
      return isMalformed(parsed) || parsed.uid !== pod.uid ? undefined : parsed;
    } catch (err) {
      if (apiStatus(err) === 404) return undefined;
      throw err;
    }
  }
}
