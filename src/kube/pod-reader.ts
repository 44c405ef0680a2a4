/**
 * Reads one pod straight from the API (pods get, which the chart grants). The watch selects
 * running pods only and, as a pod finishes, delivers its previous state; this is how hahaha
 * learns the state it finished in.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { isMalformed, type ParseOptions, type PodView, parsePod } from '../domain/pod-view.ts';
import type { PodReader, PodRef } from '../ports.ts';

export class ApiPodReader implements PodReader {
  private readonly api: CoreV1Api;
  private readonly opts: ParseOptions;

  constructor(kc: KubeConfig, opts: ParseOptions = {}) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.opts = opts;
  }

  async read(pod: PodRef): Promise<PodView | undefined> {
    try {
      const raw = await this.api.readNamespacedPod({ namespace: pod.namespace, name: pod.name });
      const parsed = parsePod({ ...raw, kind: 'Pod' }, this.opts);
      return isMalformed(parsed) || parsed.uid !== pod.uid ? undefined : parsed;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }
}
