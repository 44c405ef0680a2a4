/**
 * Asks the API server whether hahaha's own credentials allow something
 * (SelfSubjectAccessReview, which every authenticated user may create: no RBAC of its own).
 * A denial from an API server not ready to authorize (RBAC's caches still loading after a
 * start) is no answer: the review throws, so the access check tries again later instead of
 * reporting a permission missing (which makes hahaha unready).
 */
import type { AccessNeed } from '../domain/required-access.ts';
import type { AccessReviewer } from '../ports.ts';
import type { KubeClient } from './kube-client.ts';

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

/** The path of a SelfSubjectAccessReview or SubjectAccessReview create. */
export function reviewPath(kind: 'selfsubjectaccessreviews' | 'subjectaccessreviews'): string {
  return `/apis/authorization.k8s.io/v1/${kind}`;
}

export interface ReviewStatus {
  readonly status?: { readonly allowed?: boolean; readonly reason?: string };
}

export class ApiAccessReviewer implements AccessReviewer {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  async review(need: AccessNeed): Promise<{ allowed: boolean; reason?: string }> {
    const review = await this.client.request<ReviewStatus>('POST', reviewPath('selfsubjectaccessreviews'), {
      body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: resourceAttributes(need) } },
    });
    const status = review?.status;
    if (status?.allowed !== true) {
      const notReady = await this.client.notReadyToAuthorize();
      if (notReady !== undefined) throw new Error(`the API server is not ready to authorize yet (${notReady})`);
    }
    return { allowed: status?.allowed === true, ...(status?.reason && { reason: status.reason }) };
  }
}
