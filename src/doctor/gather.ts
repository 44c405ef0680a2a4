/**
 * Reads what the doctor report needs through a {@link DoctorCluster} (kube/doctor-api.ts against
 * the API server; a fake in tests) and builds the report. Pods are examined page by page, so
 * memory follows the page size, not the cluster.
 */
import type { Catalog } from '../domain/catalog.ts';
import { supportsNativeSidecars } from '../domain/native-conversion.ts';
import type { AccessNeed } from '../domain/required-access.ts';
import {
  type AccessAnswer,
  type AccessFacts,
  type DoctorReport,
  type DoctorScope,
  examinePod,
  type HahahaIdentity,
  hahahaNeeds,
  NOT_NEEDED,
  type PodFinding,
  type ServerVersionFacts,
  serviceAccountGroups,
  serviceAccountUser,
  summarize,
  WEBHOOK_NAME,
  type WebhookFacts,
} from './report.ts';

/** What doctor asks the cluster. `forbidden` answers carry the API server's message. */
export interface DoctorCluster {
  version(): Promise<ServerVersionFacts>;
  /** Names of the MutatingWebhookConfigurations that hold a webhook of this name. */
  webhookConfigurations(webhookName: string): Promise<string[] | { forbidden: string }>;
  /** The selected pods that have not finished, one page at a time. */
  podPages(query: DoctorScope): AsyncIterable<readonly unknown[]>;
  reviewAccess(subject: { user: string; groups: readonly string[] }, need: AccessNeed): Promise<{ allowed: boolean } | { forbidden: string }>;
}

export interface GatherOptions {
  readonly scope: DoctorScope;
  readonly hahaha: HahahaIdentity;
  readonly catalog: Catalog;
  readonly stuckAfterSeconds: number;
  /** Epoch milliseconds now. */
  readonly now: () => number;
  /** Called with a progress line after each page when there is more than one. */
  readonly progress: (line: string) => void;
}

async function webhookFacts(cluster: DoctorCluster): Promise<WebhookFacts> {
  const found = await cluster.webhookConfigurations(WEBHOOK_NAME);
  if (!Array.isArray(found)) return { state: 'unknown', why: 'no permission to list mutatingwebhookconfigurations' };
  return found.length > 0 ? { state: 'present', configurations: found } : { state: 'absent' };
}

async function accessFacts(cluster: DoctorCluster, hahaha: HahahaIdentity): Promise<AccessFacts> {
  const subject = { user: serviceAccountUser(hahaha), groups: serviceAccountGroups(hahaha) };
  const ask = async (need: AccessNeed): Promise<AccessAnswer | { forbidden: string }> => {
    const a = await cluster.reviewAccess(subject, need);
    return 'forbidden' in a ? a : { need, allowed: a.allowed };
  };
  const needed = await Promise.all(hahahaNeeds(hahaha).map(ask));
  const notNeeded = await Promise.all(NOT_NEEDED.map(ask));
  const refused = [...needed, ...notNeeded].find((a): a is { forbidden: string } => 'forbidden' in a);
  if (refused !== undefined) return { checked: false, why: `you may not create SubjectAccessReviews (${refused.forbidden})` };
  return { checked: true, needed: needed as AccessAnswer[], notNeeded: notNeeded as AccessAnswer[] };
}

export async function gatherReport(cluster: DoctorCluster, opts: GatherOptions): Promise<DoctorReport> {
  const version = await cluster.version();
  const [webhook, access] = await Promise.all([webhookFacts(cluster), accessFacts(cluster, opts.hahaha)]);
  const now = opts.now();
  const ctx = {
    catalog: opts.catalog,
    nativeSidecarsSupported: supportsNativeSidecars(version.major, version.minor),
    now,
    stuckAfterSeconds: opts.stuckAfterSeconds,
  };
  const findings: PodFinding[] = [];
  let pages = 0;
  for await (const page of cluster.podPages(opts.scope)) {
    pages += 1;
    for (const raw of page) findings.push(examinePod(raw, ctx));
    if (pages > 1 || page.length >= 500) opts.progress(`listed ${findings.length} pods…`);
  }
  return summarize(findings, { version, webhook, access, scope: opts.scope, hahaha: opts.hahaha }, { now, stuckAfterSeconds: opts.stuckAfterSeconds });
}
