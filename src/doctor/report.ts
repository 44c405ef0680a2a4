/**
 * `hahaha doctor`'s report, built from what was read from the cluster. Pure: no I/O, no clock (the
 * time is an input), no client library.
 *
 * Pods are examined one at a time ({@link examinePod}) into small findings, so that a large
 * cluster's pods need not be held in memory; {@link summarize} turns the findings and the
 * cluster's facts into the report. {@link buildReport} does both for a list of raw pods.
 */
import type { Catalog } from '../domain/catalog.ts';
import { catalogReads, findCatalogEntry } from '../domain/catalog.ts';
import { decide, hasFinished, isBeingDeleted, regularSidecars } from '../domain/decide.ts';
import { isOptedOut, nativeCandidates, planConversion, supportsNativeSidecars } from '../domain/native-conversion.ts';
import { isMalformed, type PodView, parsePod } from '../domain/pod-view.ts';
import { type Outcome, type Prediction, predictPod } from '../domain/predict.ts';
import { type AccessNeed, describeNeed, requiredAccess } from '../domain/required-access.ts';

/** The name of the webhook in the chart's MutatingWebhookConfiguration. */
export const WEBHOOK_NAME = 'native-sidecars.hahaha.nais.io';

/** What "needs action" means, as the report says it. */
export const NEEDS_ACTION_MEANS =
  "a stuck pod, a pod predicted to hang or fail its Job, a sidecar without a catalog entry, or hahaha's RBAC missing something it needs or granting more than it needs";

export interface ServerVersionFacts {
  readonly major: string;
  readonly minor: string;
  readonly gitVersion: string;
}

/** Whether a MutatingWebhookConfiguration holds hahaha's webhook; unknown when it cannot be listed. */
export type WebhookFacts =
  | { readonly state: 'present'; readonly configurations: readonly string[] }
  | { readonly state: 'absent' }
  | { readonly state: 'unknown'; readonly why: string };

/** Who hahaha runs as: its ServiceAccount. */
export interface HahahaIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly leaseName: string;
}

export interface AccessAnswer {
  readonly need: AccessNeed;
  readonly allowed: boolean;
}

/** SubjectAccessReview answers for hahaha's ServiceAccount, or why none could be asked. */
export type AccessFacts =
  | { readonly checked: true; readonly needed: readonly AccessAnswer[]; readonly notNeeded: readonly AccessAnswer[] }
  | { readonly checked: false; readonly why: string };

/** The user name the API server gives a ServiceAccount's tokens. */
export function serviceAccountUser(id: HahahaIdentity): string {
  return `system:serviceaccount:${id.namespace}:${id.serviceAccount}`;
}

/** The groups a ServiceAccount's tokens carry. */
export function serviceAccountGroups(id: HahahaIdentity): string[] {
  return ['system:serviceaccounts', `system:serviceaccounts:${id.namespace}`, 'system:authenticated'];
}

/** What hahaha needs, watching all namespaces with leader election on (the chart's default). */
export function hahahaNeeds(id: HahahaIdentity): AccessNeed[] {
  return requiredAccess({ namespaces: [], leaderElect: true, leaseNamespace: id.namespace, leaseName: id.leaseName });
}

/** Access hahaha must not have: with it, a compromised hahaha could read secrets or change or delete any pod. */
export const NOT_NEEDED: readonly AccessNeed[] = [
  { verb: 'get', group: '', resource: 'secrets', why: 'hahaha never reads secrets' },
  { verb: 'delete', group: '', resource: 'pods', why: 'hahaha never deletes pods' },
  { verb: 'patch', group: '', resource: 'pods', why: 'hahaha never changes pods (the webhook patches through its admission response)' },
  { verb: 'update', group: '', resource: 'pods', why: 'hahaha never changes pods' },
];

// ---- one pod ----------------------------------------------------------------------------------

export interface StuckSidecar {
  readonly container: string;
  readonly image: string;
  readonly outcome: Outcome;
  /** Why the sidecar is still running (or what hahaha would do and why it may not have). */
  readonly why: string;
  readonly fix?: string;
}

export interface StuckPod {
  readonly namespace: string;
  readonly pod: string;
  /** ISO time the last main container terminated; absent when the kubelet did not report it. */
  readonly mainFinishedAt?: string;
  /** Seconds since then, at the report's time. */
  readonly stuckSeconds?: number;
  readonly sidecars: readonly StuckSidecar[];
}

export interface PredictedProblem {
  readonly namespace: string;
  readonly pod: string;
  readonly sidecar: string;
  readonly outcome: 'hangs' | 'fails-pod';
  readonly exitCode?: number;
  readonly why: string;
  readonly fix?: string;
}

/** What one pod contributes to the report. */
export interface PodFinding {
  readonly namespace: string;
  readonly pod: string;
  /** Left out of every section: finished, being deleted, not a batch pod, malformed. */
  readonly skipped?: string;
  /** hahaha will never act on it: no main container can be found, or it is malformed. */
  readonly ignored?: 'no-main-container' | 'malformed';
  readonly stuck?: StuckPod;
  /** Reap decided less than `stuckAfterSeconds` ago: hahaha may still be stopping the sidecars. */
  readonly justFinished?: boolean;
  readonly predicted: readonly PredictedProblem[];
  readonly unsupported: readonly { readonly container: string; readonly image: string }[];
  /** Sidecars the webhook would make native had the pod been created with it. */
  readonly wouldConvert: readonly string[];
  /** Sidecars it would convert but for the pod's opt-out annotation. */
  readonly optedOut: readonly string[];
}

export interface ExamineContext {
  readonly catalog: Catalog;
  readonly nativeSidecarsSupported: boolean;
  /** Epoch milliseconds: the report's time. */
  readonly now: number;
  /** A pod whose main container finished less than this ago is not counted as stuck yet. */
  readonly stuckAfterSeconds: number;
}

const EMPTY = { predicted: [], unsupported: [], wouldConvert: [], optedOut: [] } as const;

/** The pod without its status: what the webhook saw when the pod was created. */
function withoutStatus(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const { status: _status, ...rest } = raw as Record<string, unknown>;
  return rest;
}

/** Why a sidecar still runs after its main container finished, from its prediction. */
function stuckWhy(p: Prediction): string {
  if (p.outcome === 'hangs') return p.why;
  // hahaha has a way to stop it: it has not (yet), so hahaha may not run, watch this pod, or be allowed to.
  return `hahaha can stop it (${p.why}) but has not: check that hahaha runs, selects this pod and has its RBAC`;
}

/** Examines one pod as listed from the API server (raw JSON or a client model). */
export function examinePod(raw: unknown, ctx: ExamineContext): PodFinding {
  const parsed = parsePod(raw, catalogReads(ctx.catalog));
  const id = { namespace: parsed.namespace, pod: parsed.name };
  if (isMalformed(parsed)) return { ...id, ...EMPTY, ignored: 'malformed', skipped: `malformed: ${parsed.reason}` };
  const pod: PodView = parsed;
  if (isBeingDeleted(pod)) return { ...id, ...EMPTY, skipped: 'being deleted' };
  if (hasFinished(pod)) return { ...id, ...EMPTY, skipped: `finished (${pod.phase})` };
  if (pod.restartPolicy === 'Always') return { ...id, ...EMPTY, skipped: 'restartPolicy Always: not a batch pod' };

  const decision = decide(pod, ctx.catalog);
  const prediction = predictPod(pod, ctx.catalog);
  const predictionOf = (container: string) => prediction.sidecars.find((s) => s.container === container)?.predicted;
  const imageOf = (container: string) => pod.containers.find((c) => c.name === container)?.image ?? '';

  const unsupported = regularSidecars(pod)
    .filter((c) => findCatalogEntry(ctx.catalog, c) === undefined)
    .map((c) => ({ container: c.name, image: c.image }));

  const plan = planConversion(withoutStatus(raw), pod.namespace, ctx.catalog, { nativeSidecarsSupported: ctx.nativeSidecarsSupported });
  const wouldConvert = plan.convert ? [...plan.containers] : [];
  const optedOut = isOptedOut(pod) ? nativeCandidates(pod, ctx.catalog) : [];

  let stuck: StuckPod | undefined;
  let justFinished = false;
  if (decision.decision === 'reap') {
    const containers = [...decision.targets.map((t) => t.container), ...decision.unsupported];
    const stuckSeconds = decision.mainFinishedAt === undefined ? undefined : Math.max(0, Math.floor((ctx.now - decision.mainFinishedAt) / 1000));
    if (stuckSeconds !== undefined && stuckSeconds < ctx.stuckAfterSeconds) {
      justFinished = true;
    } else {
      stuck = {
        ...id,
        ...(decision.mainFinishedAt !== undefined && { mainFinishedAt: new Date(decision.mainFinishedAt).toISOString() }),
        ...(stuckSeconds !== undefined && { stuckSeconds }),
        sidecars: containers.map((container) => {
          const p = predictionOf(container) ?? { outcome: 'unknown' as const, why: 'no prediction' };
          return { container, image: imageOf(container), outcome: p.outcome, why: stuckWhy(p), ...(p.fix !== undefined && { fix: p.fix }) };
        }),
      };
    }
  }

  const predicted: PredictedProblem[] = [];
  if (decision.decision === 'wait') {
    for (const s of prediction.sidecars) {
      const p = s.predicted;
      if (p.outcome !== 'hangs' && p.outcome !== 'fails-pod') continue;
      predicted.push({
        ...id,
        sidecar: s.container,
        outcome: p.outcome,
        ...(p.exitCode !== undefined && { exitCode: p.exitCode }),
        why: p.why,
        ...(p.fix !== undefined && { fix: p.fix }),
      });
    }
  }

  return {
    ...id,
    ...(decision.decision === 'ignore' && decision.code === 'no-main-container' && { ignored: decision.code }),
    ...(stuck !== undefined && { stuck }),
    ...(justFinished && { justFinished }),
    predicted,
    unsupported,
    wouldConvert,
    optedOut,
  };
}

// ---- the report -------------------------------------------------------------------------------

export interface DoctorScope {
  readonly selector: string;
  /** Absent: all namespaces. */
  readonly namespace?: string;
}

export interface ClusterFacts {
  readonly version: ServerVersionFacts;
  readonly webhook: WebhookFacts;
}

export interface DoctorReport {
  /** ISO time of the report. */
  readonly at: string;
  readonly scope: DoctorScope & {
    readonly pods: number;
    /** Listed pods left out: finished, being deleted, not batch pods, malformed. */
    readonly skipped: number;
    readonly stuckAfterSeconds: number;
  };
  readonly cluster: {
    readonly version: string;
    readonly nativeSidecars: boolean;
    readonly webhook: 'present' | 'absent' | 'unknown';
    readonly webhookDetail: string;
  };
  readonly stuck: readonly StuckPod[];
  /** Pods whose main container finished within stuckAfterSeconds: not counted as stuck yet. */
  readonly justFinished: number;
  readonly predicted: readonly PredictedProblem[];
  /** Sidecars without a catalog entry, by image, most pods first. */
  readonly unsupported: readonly { readonly image: string; readonly containers: readonly string[]; readonly pods: number }[];
  readonly native: {
    /** Namespaces with pods whose sidecars the webhook would have made native, most pods first. */
    readonly wouldHelp: readonly { readonly namespace: string; readonly pods: number; readonly sidecars: readonly string[] }[];
    readonly optedOut: readonly { readonly namespace: string; readonly pod: string; readonly sidecars: readonly string[] }[];
  };
  /** Pods hahaha will never act on, by reason: `no-main-container`, `malformed`. */
  readonly ignored: Readonly<Record<string, number>>;
  readonly rbac: {
    readonly subject: string;
    readonly checked: boolean;
    /** When not checked: why. */
    readonly why?: string;
    readonly missing: readonly { readonly access: string; readonly why: string }[];
    readonly moreThanNeeded: readonly { readonly access: string; readonly why: string }[];
  };
  readonly needsAction: boolean;
  /** One short line per kind of problem, e.g. "1 stuck pod". */
  readonly actions: readonly string[];
  readonly needsActionMeans: string;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function summarize(
  findings: Iterable<PodFinding>,
  facts: ClusterFacts & { readonly scope: DoctorScope; readonly hahaha: HahahaIdentity; readonly access: AccessFacts },
  ctx: Pick<ExamineContext, 'now' | 'stuckAfterSeconds'>,
): DoctorReport {
  let pods = 0;
  let skipped = 0;
  let justFinished = 0;
  const stuck: StuckPod[] = [];
  const predicted: PredictedProblem[] = [];
  const byImage = new Map<string, { containers: Set<string>; pods: number }>();
  const byNamespace = new Map<string, { pods: number; sidecars: Set<string> }>();
  const optedOut: { namespace: string; pod: string; sidecars: string[] }[] = [];
  const ignored: Record<string, number> = {};

  for (const f of findings) {
    pods += 1;
    if (f.ignored !== undefined) ignored[f.ignored] = (ignored[f.ignored] ?? 0) + 1;
    if (f.skipped !== undefined) {
      skipped += 1;
      continue;
    }
    if (f.stuck !== undefined) stuck.push(f.stuck);
    if (f.justFinished === true) justFinished += 1;
    predicted.push(...f.predicted);
    const images = new Set<string>();
    for (const u of f.unsupported) {
      const entry = byImage.get(u.image) ?? { containers: new Set(), pods: 0 };
      entry.containers.add(u.container);
      if (!images.has(u.image)) entry.pods += 1;
      images.add(u.image);
      byImage.set(u.image, entry);
    }
    if (f.wouldConvert.length > 0) {
      const ns = byNamespace.get(f.namespace) ?? { pods: 0, sidecars: new Set() };
      ns.pods += 1;
      for (const s of f.wouldConvert) ns.sidecars.add(s);
      byNamespace.set(f.namespace, ns);
    }
    if (f.optedOut.length > 0) optedOut.push({ namespace: f.namespace, pod: f.pod, sidecars: [...f.optedOut] });
  }

  const byKey = <T extends { namespace: string; pod: string }>(a: T, b: T) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod);
  stuck.sort((a, b) => (b.stuckSeconds ?? Number.MAX_SAFE_INTEGER) - (a.stuckSeconds ?? Number.MAX_SAFE_INTEGER) || byKey(a, b));
  predicted.sort((a, b) => byKey(a, b) || a.sidecar.localeCompare(b.sidecar));
  optedOut.sort(byKey);
  const unsupported = [...byImage]
    .map(([image, e]) => ({ image, containers: [...e.containers].sort(), pods: e.pods }))
    .sort((a, b) => b.pods - a.pods || a.image.localeCompare(b.image));
  const wouldHelp = [...byNamespace]
    .map(([namespace, e]) => ({ namespace, pods: e.pods, sidecars: [...e.sidecars].sort() }))
    .sort((a, b) => b.pods - a.pods || a.namespace.localeCompare(b.namespace));

  const { access, webhook, version } = facts;
  const missing = access.checked ? access.needed.filter((a) => !a.allowed).map((a) => ({ access: describeNeed(a.need), why: a.need.why })) : [];
  const moreThanNeeded = access.checked ? access.notNeeded.filter((a) => a.allowed).map((a) => ({ access: describeNeed(a.need), why: a.need.why })) : [];

  const actions: string[] = [];
  if (stuck.length > 0) actions.push(`${plural(stuck.length, 'stuck pod')}`);
  if (predicted.length > 0) actions.push(`${plural(predicted.length, 'sidecar')} predicted to hang or fail a Job`);
  if (unsupported.length > 0) actions.push(`${plural(unsupported.length, 'sidecar image')} without a catalog entry`);
  if (missing.length > 0) actions.push(`hahaha's RBAC lacks ${plural(missing.length, 'permission')}`);
  if (moreThanNeeded.length > 0) actions.push(`hahaha's RBAC grants ${plural(moreThanNeeded.length, 'permission')} it does not need`);

  return {
    at: new Date(ctx.now).toISOString(),
    scope: {
      selector: facts.scope.selector,
      ...(facts.scope.namespace !== undefined && { namespace: facts.scope.namespace }),
      pods,
      skipped,
      stuckAfterSeconds: ctx.stuckAfterSeconds,
    },
    cluster: {
      version: version.gitVersion,
      nativeSidecars: supportsNativeSidecars(version.major, version.minor),
      webhook: webhook.state,
      webhookDetail:
        webhook.state === 'present'
          ? `${WEBHOOK_NAME} in MutatingWebhookConfiguration ${webhook.configurations.join(', ')}`
          : webhook.state === 'absent'
            ? `no MutatingWebhookConfiguration has a webhook ${WEBHOOK_NAME}`
            : `unknown (${webhook.why})`,
    },
    stuck,
    justFinished,
    predicted,
    unsupported,
    native: { wouldHelp, optedOut },
    ignored,
    rbac: {
      subject: serviceAccountUser(facts.hahaha),
      checked: access.checked,
      ...(!access.checked && { why: access.why }),
      missing,
      moreThanNeeded,
    },
    needsAction: actions.length > 0,
    actions,
    needsActionMeans: NEEDS_ACTION_MEANS,
  };
}

/** The report for a list of raw pods: {@link examinePod} each, then {@link summarize}. */
export function buildReport(
  input: ClusterFacts & {
    readonly pods: Iterable<unknown>;
    readonly scope: DoctorScope;
    readonly hahaha: HahahaIdentity;
    readonly access: AccessFacts;
  },
  catalog: Catalog,
  ctx: Pick<ExamineContext, 'now' | 'stuckAfterSeconds'>,
): DoctorReport {
  const examine: ExamineContext = {
    catalog,
    nativeSidecarsSupported: supportsNativeSidecars(input.version.major, input.version.minor),
    ...ctx,
  };
  const findings = [...input.pods].map((raw) => examinePod(raw, examine));
  return summarize(findings, input, ctx);
}
