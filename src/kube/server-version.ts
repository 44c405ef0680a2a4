/**
 * The API server's version (GET /version, readable by every authenticated client through the
 * system:public-info-viewer role: no RBAC of hahaha's own is needed).
 */
import { type KubeConfig, VersionApi } from '@kubernetes/client-node';
import type { ServerVersion, ServerVersionSource } from '../ports.ts';

export class ApiServerVersion implements ServerVersionSource {
  private readonly api: VersionApi;

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(VersionApi);
  }

  async get(): Promise<ServerVersion> {
    const v = await this.api.getCode();
    return { major: v.major, minor: v.minor, gitVersion: v.gitVersion };
  }
}
