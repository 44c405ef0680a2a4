/**
 * Asks the API server whether hahaha's own credentials allow something
 * (SelfSubjectAccessReview, which every authenticated user may create: no RBAC of its own).
 */
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { AccessNeed } from '../domain/required-access.ts';
import type { AccessReviewer } from '../ports.ts';

/** An access need as the authorization API's ResourceAttributes (self and subject reviews alike). */
export function resourceAttributes(need: AccessNeed) {
  return {
    verb: need.verb,
    group: need.group,
    resource: need.resource,
    ...(need.subresource !== undefined && { subresource: need.subresource }),
    ...(need.namespace !== undefined && { namespace: need.namespace }),
    ...(need.name !== undefined && { name: need.name }),
  };
}

export class ApiAccessReviewer implements AccessReviewer {
  private readonly api: AuthorizationV1Api;

  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(AuthorizationV1Api);
  }

  async review(need: AccessNeed): Promise<{ allowed: boolean; reason?: string }> {
    const review = await this.api.createSelfSubjectAccessReview({
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: resourceAttributes(need),
        },
      },
    });
    const status = review.status;
    return { allowed: status?.allowed === true, ...(status?.reason && { reason: status.reason }) };
  }
}
