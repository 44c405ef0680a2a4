/**
 * Reads one pod straight from the API (pods get, which the chart grants). The watch selects
 * running pods only and, as a pod finishes, delivers its previous state; this is how hahaha
 * learns the state it finished in.
 */
import { isMalformed, type ParseOptions, type PodView, parsePod } from '../domain/pod-view.ts';
import type { PodReader, PodRef } from '../ports.ts';
import { apiStatus, type KubeClient } from './kube-client.ts';
import { podPath } from './paths.ts';

export class ApiPodReader implements PodReader {
  private readonly client: KubeClient;
  private readonly opts: ParseOptions;

  constructor(client: KubeClient, opts: ParseOptions = {}) {
    this.client = client;
    this.opts = opts;
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
