/**
 * The slice of a Pod that deciding needs, parsed from raw API JSON.
 *
 * Keeping only this slice (rather than whole V1Pod objects) bounds the daemon's memory to a few
 * hundred bytes per watched pod. Parsing is pure and total: any JSON value yields either a
 * PodView or a {@link MalformedPod} that says what is wrong.
 */

/** Annotation naming the main containers (comma-separated); overrides the `app` label. */
export const MAIN_CONTAINERS_ANNOTATION = 'hahaha.nais.io/main-containers';
/**
 * Annotation written by hahaha's admission webhook: the sidecars it turned into native sidecars
 * (comma-separated). Set to "false" by a user, it opts the pod out of the conversion.
 */
export const NATIVE_SIDECARS_ANNOTATION = 'hahaha.nais.io/native-sidecars';
/** Label naming the main container of a Naisjob pod (and the job in metrics). */
export const APP_LABEL = 'app';

export type ContainerState =
  | { readonly kind: 'waiting'; readonly reason?: string }
  | { readonly kind: 'running'; readonly startedAt?: number }
  | {
      readonly kind: 'terminated';
      readonly exitCode: number;
      readonly reason?: string;
      /** Epoch milliseconds; absent when the kubelet did not report it. */
      readonly finishedAt?: number;
    };

export interface ContainerSpecView {
  readonly name: string;
  readonly image: string;
  /** Container-level restart policy; `Always` on an init container marks a native sidecar. */
  readonly restartPolicy?: string;
  /** `command` then `args`, as the catalog's flag conditions read them; absent when both are empty. */
  readonly argv?: readonly string[];
  /** Environment variables with a literal `value` (valueFrom ones are unknown here); absent when none. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ContainerStatusView {
  readonly name: string;
  readonly state: ContainerState;
  readonly restartCount: number;
}

export interface PodView {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** Epoch milliseconds of metadata.deletionTimestamp, when the pod is being deleted. */
  readonly deletionTimestamp?: number;
  /** The controller that owns the pod (a Job, for Naisjob pods), from metadata.ownerReferences. */
  readonly owner?: OwnerView;
  readonly restartPolicy: string;
  /** The node the pod is bound to (spec.nodeName), once it is. */
  readonly nodeName?: string;
  readonly containers: readonly ContainerSpecView[];
  readonly initContainers: readonly ContainerSpecView[];
  readonly phase: string;
  readonly containerStatuses: readonly ContainerStatusView[];
}

export interface OwnerView {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

/** The owner reference marked `controller: true`, if any. */
function controllerOf(refs: unknown): OwnerView | undefined {
  if (!Array.isArray(refs)) return undefined;
  for (const r of refs) {
    if (!isObject(r) || r.controller !== true) continue;
    const [apiVersion, kind, name, uid] = [str(r.apiVersion), str(r.kind), str(r.name), str(r.uid)];
    if (apiVersion && kind && name && uid) return { apiVersion, kind, name, uid };
  }
  return undefined;
}

export interface MalformedPod {
  readonly malformed: true;
  /** Best-effort identity for logs; empty strings when the JSON does not carry it. */
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly reason: string;
}

/** Labels and annotations kept in a PodView; everything else is dropped to save memory. */
const KEPT_LABELS = new Set([APP_LABEL, 'nais.io/naisjob', 'batch.kubernetes.io/job-name', 'job-name']);
const KEPT_ANNOTATIONS = new Set([MAIN_CONTAINERS_ANNOTATION, NATIVE_SIDECARS_ANNOTATION]);

type Json = Record<string, unknown>;

/** A JSON object (not null, not a list): what every reader of raw API JSON checks first. */
export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Timestamps arrive as RFC 3339 strings; a Date is accepted too. */
function time(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  if (typeof v !== 'string') return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

function pick(v: unknown, keep: { has(key: string): boolean }): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(v)) return out;
  for (const [k, val] of Object.entries(v)) {
    if (keep.has(k) && typeof val === 'string') out[k] = val;
  }
  return out;
}

/** A value of unexpected type, as shown in a malformed pod's reason. */
function got(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const STATE_KINDS = ['waiting', 'running', 'terminated'];

/** Present: neither undefined nor null (JSON may carry null, objects built in code undefined). */
function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function parseState(v: unknown, field: string): ContainerState | string {
  // The API documents an absent state as waiting.
  if (!present(v)) return { kind: 'waiting', reason: 'NoState' };
  if (!isObject(v)) return `${field} must be an object, got ${got(v)}`;
  const kinds = Object.keys(v).filter((k) => present(v[k]));
  const unknown = kinds.filter((k) => !STATE_KINDS.includes(k));
  if (unknown.length > 0) return `${field} has unknown kind ${unknown.join(', ')} (known: ${STATE_KINDS.join(', ')})`;
  if (kinds.length > 1) return `${field} has more than one kind (${kinds.join(', ')}); the API sets one`;
  for (const k of kinds) {
    if (!isObject(v[k])) return `${field}.${k} must be an object, got ${got(v[k])}`;
  }
  if (isObject(v.terminated)) {
    const t = v.terminated;
    if (typeof t.exitCode !== 'number' || !Number.isInteger(t.exitCode)) {
      return `${field}.terminated.exitCode must be an integer, got ${t.exitCode === undefined ? 'nothing' : got(t.exitCode)}`;
    }
    const finishedAt = time(t.finishedAt);
    const reason = str(t.reason);
    return {
      kind: 'terminated',
      exitCode: t.exitCode,
      ...(reason !== undefined && { reason }),
      ...(finishedAt !== undefined && { finishedAt }),
    };
  }
  if (isObject(v.running)) {
    const startedAt = time(v.running.startedAt);
    return { kind: 'running', ...(startedAt !== undefined && { startedAt }) };
  }
  const reason = isObject(v.waiting) ? str(v.waiting.reason) : undefined;
  return { kind: 'waiting', ...(reason !== undefined && { reason }) };
}

/** The strings of a list; anything else yields none. */
function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function literalEnv(v: unknown, keep: ReadonlySet<string> | undefined): Record<string, string> | undefined {
  if (!Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const e of v) {
    if (isObject(e) && typeof e.name === 'string' && typeof e.value === 'string' && (keep === undefined || keep.has(e.name))) {
      out[e.name] = e.value;
      any = true;
    }
  }
  return any ? out : undefined;
}

function parseContainers(v: unknown, field: string, env: ReadonlySet<string> | undefined): ContainerSpecView[] | string {
  if (!present(v)) return [];
  if (!Array.isArray(v)) return `${field} must be a list, got ${got(v)}`;
  const out: ContainerSpecView[] = [];
  for (const [i, c] of v.entries()) {
    if (!isObject(c)) return `${field}[${i}] must be an object, got ${got(c)}`;
    if (typeof c.name !== 'string' || c.name === '') return `${field}[${i}] has no name`;
    if (present(c.image) && typeof c.image !== 'string') return `${field}[${i}].image must be a string, got ${got(c.image)}`;
    if (present(c.restartPolicy) && typeof c.restartPolicy !== 'string') {
      return `${field}[${i}].restartPolicy must be a string, got ${got(c.restartPolicy)}`;
    }
    const restartPolicy = str(c.restartPolicy);
    const argv = [...strings(c.command), ...strings(c.args)];
    const literal = literalEnv(c.env, env);
    out.push({
      name: c.name,
      image: str(c.image) ?? '',
      ...(restartPolicy !== undefined && { restartPolicy }),
      ...(argv.length > 0 && { argv }),
      ...(literal !== undefined && { env: literal }),
    });
  }
  return out;
}

function parseStatuses(v: unknown, field: string): ContainerStatusView[] | string {
  if (!present(v)) return [];
  if (!Array.isArray(v)) return `${field} must be a list, got ${got(v)}`;
  const out: ContainerStatusView[] = [];
  const seen = new Set<string>();
  for (const [i, s] of v.entries()) {
    if (!isObject(s)) return `${field}[${i}] must be an object, got ${got(s)}`;
    if (typeof s.name !== 'string' || s.name === '') return `${field}[${i}] has no name`;
    if (seen.has(s.name)) return `${field} has container ${s.name} twice`;
    seen.add(s.name);
    const state = parseState(s.state, `${field}[${i}].state`);
    if (typeof state === 'string') return state;
    if (present(s.restartCount) && (typeof s.restartCount !== 'number' || !Number.isInteger(s.restartCount) || s.restartCount < 0)) {
      return `${field}[${i}].restartCount must be a non-negative integer, got ${got(s.restartCount)}`;
    }
    out.push({ name: s.name, state, restartCount: typeof s.restartCount === 'number' ? s.restartCount : 0 });
  }
  return out;
}

/** The first container name used twice across containers and init containers (the API refuses such pods). */
function duplicateName(...lists: readonly (readonly ContainerSpecView[])[]): string | undefined {
  const seen = new Set<string>();
  for (const c of lists.flat()) {
    if (seen.has(c.name)) return c.name;
    seen.add(c.name);
  }
  return undefined;
}

/** Parses a Pod as the API serves it (`kubectl get pod -o json`, a list item or a watch object). */
export interface ParseOptions {
  /** Annotations to keep beyond hahaha's own (those the catalog's conditions read). */
  readonly annotations?: ReadonlySet<string>;
  /** The literal environment variables to keep (those the catalog's conditions read); all when absent. */
  readonly env?: ReadonlySet<string>;
}

export function parsePod(raw: unknown, opts: ParseOptions = {}): PodView | MalformedPod {
  const meta = isObject(raw) && isObject(raw.metadata) ? raw.metadata : {};
  const namespace = str(meta.namespace) ?? '';
  const name = str(meta.name) ?? '';
  const uid = str(meta.uid) ?? '';
  const malformed = (reason: string): MalformedPod => ({ malformed: true, namespace, name, uid, reason });

  if (!isObject(raw)) return malformed(`not a JSON object but ${Array.isArray(raw) ? 'a list' : got(raw)}`);
  if (present(raw.kind) && raw.kind !== 'Pod') return malformed(`kind is ${String(raw.kind)}, not Pod`);
  if (!isObject(raw.metadata)) return malformed('metadata is missing');
  if (name === '') return malformed('metadata.name is missing');
  if (!isObject(raw.spec)) return malformed('spec is missing');
  const containers = parseContainers(raw.spec.containers, 'spec.containers', opts.env);
  if (typeof containers === 'string') return malformed(containers);
  if (containers.length === 0) return malformed('spec.containers is empty');
  const initContainers = parseContainers(raw.spec.initContainers, 'spec.initContainers', opts.env);
  if (typeof initContainers === 'string') return malformed(initContainers);
  const twice = duplicateName(containers, initContainers);
  if (twice !== undefined) return malformed(`container name ${twice} is used twice in spec.containers and spec.initContainers`);
  if (present(raw.spec.restartPolicy) && typeof raw.spec.restartPolicy !== 'string') {
    return malformed(`spec.restartPolicy must be a string, got ${got(raw.spec.restartPolicy)}`);
  }
  if (present(raw.spec.nodeName) && typeof raw.spec.nodeName !== 'string') return malformed(`spec.nodeName must be a string, got ${got(raw.spec.nodeName)}`);
  const nodeName = str(raw.spec.nodeName) || undefined;
  if (present(raw.status) && !isObject(raw.status)) return malformed(`status must be an object, got ${got(raw.status)}`);
  const status = isObject(raw.status) ? raw.status : {};
  if (present(status.phase) && typeof status.phase !== 'string') return malformed(`status.phase must be a string, got ${got(status.phase)}`);
  const containerStatuses = parseStatuses(status.containerStatuses, 'status.containerStatuses');
  if (typeof containerStatuses === 'string') return malformed(containerStatuses);
  const deletionTimestamp = time(meta.deletionTimestamp);
  const owner = controllerOf(meta.ownerReferences);

  return {
    namespace,
    name,
    uid,
    resourceVersion: str(meta.resourceVersion) ?? '',
    labels: pick(meta.labels, KEPT_LABELS),
    annotations: pick(
      meta.annotations,
      opts.annotations === undefined ? KEPT_ANNOTATIONS : { has: (k: string) => KEPT_ANNOTATIONS.has(k) || opts.annotations?.has(k) === true },
    ),
    ...(deletionTimestamp !== undefined && { deletionTimestamp }),
    ...(owner !== undefined && { owner }),
    restartPolicy: str(raw.spec.restartPolicy) ?? 'Always',
    ...(nodeName !== undefined && { nodeName }),
    containers,
    initContainers,
    phase: str(status.phase) ?? 'Pending',
    containerStatuses,
  };
}

export function isMalformed(p: PodView | MalformedPod): p is MalformedPod {
  return 'malformed' in p;
}

/** `namespace/name`, the key the work queue and logs use. */
export function podKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}
