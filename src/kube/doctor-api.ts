/**
 * What `hahaha doctor` reads from the API server, with the user's credentials: the version, the
 * MutatingWebhookConfigurations, the selected pods (paginated) and SubjectAccessReviews for
 * hahaha's ServiceAccount. Failures that end the run become a ClusterError (cannot reach, not
 * allowed to list pods) or a ConfigError (the API server rejected the selector or namespace).
 */
import { ClusterError, ConfigError, type KnownError, oneLine } from '../config/errors.ts';
import type { DoctorCluster } from '../doctor/gather.ts';
import type { ServerVersionFacts } from '../doctor/report.ts';
import type { AccessNeed } from '../domain/required-access.ts';
import { type ReviewStatus, resourceAttributes, reviewPath } from './access-review.ts';
import { ApiError, type KubeClient } from './kube-client.ts';
import { podsPath } from './paths.ts';
import { ApiServerVersion } from './server-version.ts';

const PAGE_SIZE = 500;
/** Finished pods never need anything; the API server filters them out. */
const NOT_FINISHED = 'status.phase!=Succeeded,status.phase!=Failed';

/** The API server's own message from a failed call, else the error's. */
function apiMessage(err: unknown): string {
  if (err instanceof ApiError) return oneLine(err.serverMessage === '' ? `HTTP ${err.status}` : err.serverMessage).slice(0, 300);
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return oneLine(`${e.message ?? String(err)}${cause === undefined ? '' : ` (${cause})`}`);
}

/** RBAC's answer: a 403 from an API server that was ready to authorize (see ApiError.notReady). */
function isForbidden(err: unknown): boolean {
  return err instanceof ApiError && err.status === 403 && err.notReady === undefined;
}

export class DoctorApi implements DoctorCluster {
  private readonly client: KubeClient;
  private readonly server: string;

  constructor(client: KubeClient) {
    this.client = client;
    this.server = client.server;
  }

  /** Any failure of a call doctor cannot do without. */
  private fail(what: string, err: unknown): KnownError {
    const why = apiMessage(err);
    if (err instanceof ApiError) {
      if (err.status === 400 || err.status === 422)
        return new ConfigError(`doctor: ${what}: the API server rejected the request: ${why} (check --selector and --namespace)`);
      if (err.status === 401)
        return new ClusterError(
          `doctor: ${what}: the API server at ${this.server} does not accept the credentials: ${why} (refresh the kubeconfig's credentials)`,
        );
      if (err.status === 403 && err.notReady !== undefined)
        return new ClusterError(
          `doctor: ${what}: the API server at ${this.server} is not ready to authorize yet (${err.notReady}): ${why} (run doctor again in a minute)`,
        );
      if (err.status === 403) return new ClusterError(`doctor: ${what}: not allowed: ${why} (use credentials that may do this, or narrow it with --namespace)`);
      return new ClusterError(`doctor: ${what}: the API server at ${this.server} answered HTTP ${err.status}: ${why}`);
    }
    return new ClusterError(`doctor: ${what}: cannot reach the API server at ${this.server}: ${why} (check the kubeconfig's server and the network)`);
  }

  async version(): Promise<ServerVersionFacts> {
    try {
      return await new ApiServerVersion(this.client).get();
    } catch (err) {
      throw this.fail('GET /version', err);
    }
  }

  async webhookConfigurations(webhookName: string): Promise<string[] | { forbidden: string }> {
    try {
      const names: string[] = [];
      for await (const page of this.client.pages('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {}, { limit: PAGE_SIZE })) {
        for (const item of page.items ?? []) {
          const c = item as { metadata?: { name?: string }; webhooks?: { name?: string }[] };
          if ((c.webhooks ?? []).some((w) => w.name === webhookName)) names.push(c.metadata?.name ?? '');
        }
      }
      return names;
    } catch (err) {
      if (isForbidden(err)) return { forbidden: apiMessage(err) };
      throw this.fail('list mutatingwebhookconfigurations', err);
    }
  }

  async *podPages(query: { selector: string; namespace?: string }): AsyncIterable<readonly unknown[]> {
    const what = `list pods ${query.namespace === undefined ? 'in all namespaces' : `in namespace ${query.namespace}`}`;
    const pages = this.client.pages(
      podsPath(query.namespace),
      { labelSelector: query.selector, fieldSelector: NOT_FINISHED },
      { limit: PAGE_SIZE, timeoutMs: 60_000 },
    );
    try {
      // Only the page reads can throw here: a consumer's error is not thrown into this generator.
      for await (const page of pages) yield page.items ?? [];
    } catch (err) {
      throw this.fail(what, err);
    }
  }

  async reviewAccess(subject: { user: string; groups: readonly string[] }, need: AccessNeed): Promise<{ allowed: boolean } | { forbidden: string }> {
    try {
      const review = await this.client.request<ReviewStatus>('POST', reviewPath('subjectaccessreviews'), {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: { user: subject.user, groups: [...subject.groups], resourceAttributes: resourceAttributes(need) },
        },
      });
      return { allowed: review?.status?.allowed === true };
    } catch (err) {
      if (isForbidden(err)) return { forbidden: apiMessage(err) };
      throw this.fail('create subjectaccessreviews', err);
    }
  }
}
