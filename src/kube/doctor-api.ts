/**
 * What `hahaha doctor` reads from the API server, with the user's credentials: the version, the
 * MutatingWebhookConfigurations, the selected pods (paginated) and SubjectAccessReviews for
 * hahaha's ServiceAccount. Failures that end the run become a ClusterError (cannot reach, not
 * allowed to list pods) or a ConfigError (the API server rejected the selector or namespace).
 */
import { AdmissionregistrationV1Api, ApiException, AuthorizationV1Api, CoreV1Api, type KubeConfig, type V1PodList, VersionApi } from '@kubernetes/client-node';
import { ClusterError, ConfigError, type KnownError, oneLine } from '../config/errors.ts';
import type { DoctorCluster } from '../doctor/gather.ts';
import type { ServerVersionFacts } from '../doctor/report.ts';
import type { AccessNeed } from '../domain/required-access.ts';
import { resourceAttributes } from './access-review.ts';

const PAGE_SIZE = 500;
/** Finished pods never need anything; the API server filters them out. */
const NOT_FINISHED = 'status.phase!=Succeeded,status.phase!=Failed';

/** The API server's own message from a failed call, else the error's. */
function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      const text = body;
      try {
        body = JSON.parse(text);
      } catch {
        return text === '' ? `HTTP ${err.code}` : oneLine(text).slice(0, 300);
      }
    }
    const message = typeof body === 'object' && body !== null ? (body as { message?: unknown }).message : undefined;
    return typeof message === 'string' ? oneLine(message) : `HTTP ${err.code}`;
  }
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return oneLine(`${e.message ?? String(err)}${cause === undefined ? '' : ` (${cause})`}`);
}

function isForbidden(err: unknown): boolean {
  return err instanceof ApiException && err.code === 403;
}

export class DoctorApi implements DoctorCluster {
  private readonly core: CoreV1Api;
  private readonly admission: AdmissionregistrationV1Api;
  private readonly authorization: AuthorizationV1Api;
  private readonly versionApi: VersionApi;
  private readonly server: string;

  constructor(kc: KubeConfig, server: string) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.admission = kc.makeApiClient(AdmissionregistrationV1Api);
    this.authorization = kc.makeApiClient(AuthorizationV1Api);
    this.versionApi = kc.makeApiClient(VersionApi);
    this.server = server;
  }

  /** Any failure of a call doctor cannot do without. */
  private fail(what: string, err: unknown): KnownError {
    const why = apiMessage(err);
    if (err instanceof ApiException) {
      if (err.code === 400 || err.code === 422)
        return new ConfigError(`doctor: ${what}: the API server rejected the request: ${why} (check --selector and --namespace)`);
      if (err.code === 401)
        return new ClusterError(
          `doctor: ${what}: the API server at ${this.server} does not accept the credentials: ${why} (refresh the kubeconfig's credentials)`,
        );
      if (err.code === 403) return new ClusterError(`doctor: ${what}: not allowed: ${why} (use credentials that may do this, or narrow it with --namespace)`);
      return new ClusterError(`doctor: ${what}: the API server at ${this.server} answered HTTP ${err.code}: ${why}`);
    }
    return new ClusterError(`doctor: ${what}: cannot reach the API server at ${this.server}: ${why} (check the kubeconfig's server and the network)`);
  }

  async version(): Promise<ServerVersionFacts> {
    try {
      const v = await this.versionApi.getCode();
      return { major: v.major, minor: v.minor, gitVersion: v.gitVersion };
    } catch (err) {
      throw this.fail('GET /version', err);
    }
  }

  async webhookConfigurations(webhookName: string): Promise<string[] | { forbidden: string }> {
    try {
      const names: string[] = [];
      let cont: string | undefined;
      do {
        const page = await this.admission.listMutatingWebhookConfiguration({ limit: PAGE_SIZE, ...(cont !== undefined && { _continue: cont }) });
        for (const c of page.items) if ((c.webhooks ?? []).some((w) => w.name === webhookName)) names.push(c.metadata?.name ?? '');
        cont = page.metadata?._continue || undefined;
      } while (cont !== undefined);
      return names;
    } catch (err) {
      if (isForbidden(err)) return { forbidden: apiMessage(err) };
      throw this.fail('list mutatingwebhookconfigurations', err);
    }
  }

  async *podPages(query: { selector: string; namespace?: string }): AsyncIterable<readonly unknown[]> {
    let cont: string | undefined;
    const what = `list pods ${query.namespace === undefined ? 'in all namespaces' : `in namespace ${query.namespace}`}`;
    do {
      const params = { labelSelector: query.selector, fieldSelector: NOT_FINISHED, limit: PAGE_SIZE, ...(cont !== undefined && { _continue: cont }) };
      let page: V1PodList;
      try {
        page =
          query.namespace === undefined
            ? await this.core.listPodForAllNamespaces(params)
            : await this.core.listNamespacedPod({ namespace: query.namespace, ...params });
      } catch (err) {
        throw this.fail(what, err);
      }
      cont = page.metadata?._continue || undefined;
      yield page.items;
    } while (cont !== undefined);
  }

  async reviewAccess(subject: { user: string; groups: readonly string[] }, need: AccessNeed): Promise<{ allowed: boolean } | { forbidden: string }> {
    try {
      const review = await this.authorization.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: subject.user,
            groups: [...subject.groups],
            resourceAttributes: resourceAttributes(need),
          },
        },
      });
      return { allowed: review.status?.allowed === true };
    } catch (err) {
      if (isForbidden(err)) return { forbidden: apiMessage(err) };
      throw this.fail('create subjectaccessreviews', err);
    }
  }
}
