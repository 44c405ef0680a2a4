/**
 * The API server's version (GET /version, readable by every authenticated client through the
 * system:public-info-viewer role: no RBAC of hahaha's own is needed).
 */
import type { ServerVersion, ServerVersionSource } from '../ports.ts';
import type { KubeClient } from './kube-client.ts';

export class ApiServerVersion implements ServerVersionSource {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  async get(): Promise<ServerVersion> {
    const v = await this.client.request<{ major?: unknown; minor?: unknown; gitVersion?: unknown }>('GET', '/version');
    return { major: String(v?.major ?? ''), minor: String(v?.minor ?? ''), gitVersion: String(v?.gitVersion ?? '') };
  }
}
