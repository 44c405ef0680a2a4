/**
 * Native sidecar conversion at admission: which regular containers of a pod being created become
 * native sidecars (init containers with restartPolicy Always), and the JSONPatch that does it.
 * Pure: no I/O, no clock, no client library. The webhook and `hahaha explain` both use it.
 *
 * Each rule is a small named predicate; `planConversion` chains them in order.
 */
import { type Catalog, findCatalogEntry } from './catalog.ts';
import { findMainContainers, isNativeSidecar } from './decide.ts';
import { isMalformed, isObject, NATIVE_SIDECARS_ANNOTATION, type PodView, parsePod } from './pod-view.ts';

/** Machine-readable reasons a pod is left as it is; stable, used in logs and explain. */
export type ConversionSkipCode =
  | 'malformed'
  | 'not-selected'
  | 'opted-out'
  | 'native-sidecars-unsupported'
  | 'restart-always'
  | 'no-main-container'
  | 'main-is-sidecar'
  | 'shared-process-namespace'
  | 'nothing-to-convert';

export interface ConversionContext {
  /** Whether the cluster runs native sidecars: Kubernetes 1.29 or newer. */
  readonly nativeSidecarsSupported: boolean;
  /**
   * The watch selector, checked again against the pod's labels: the webhook configuration's
   * objectSelector should already have filtered, but a hand-edited configuration must not make
   * hahaha convert pods it does not watch. Absent: every pod is selected.
   */
  readonly selects?: (labels: Readonly<Record<string, string>>) => boolean;
}

/** A container that matches a `native: true` entry but is kept as it is, and why. */
export interface KeptContainer {
  readonly container: string;
  readonly reason: string;
}

export type ConversionPlan =
  | {
      readonly convert: false;
      readonly code: ConversionSkipCode;
      readonly reason: string;
      readonly kept: readonly KeptContainer[];
    }
  | {
      readonly convert: true;
      /** Regular containers to move, in their order in spec.containers. */
      readonly containers: readonly string[];
      /** The annotation's new value: every sidecar hahaha has converted in this pod, in order. */
      readonly annotation: string;
      readonly reason: string;
      readonly kept: readonly KeptContainer[];
    };

export interface JsonPatchOp {
  readonly op: 'add' | 'remove' | 'test';
  readonly path: string;
  readonly value?: unknown;
}

type Json = Record<string, unknown>;

const skip = (code: ConversionSkipCode, reason: string, kept: readonly KeptContainer[] = []): ConversionPlan => ({
  convert: false,
  code,
  reason,
  kept,
});

// ---- predicates -------------------------------------------------------------------------------

/** The pod (or its template) says `hahaha.nais.io/native-sidecars: "false"`. */
export function isOptedOut(pod: PodView): boolean {
  return pod.annotations[NATIVE_SIDECARS_ANNOTATION]?.trim().toLowerCase() === 'false';
}

/** Only batch pods end: with restartPolicy Always there is no "after the main container". */
export function isBatchPod(pod: PodView): boolean {
  return pod.restartPolicy === 'Never' || pod.restartPolicy === 'OnFailure';
}

/**
 * With a shared PID namespace the main container can see, signal or wait for the sidecar's
 * processes (`pkill envoy` at the end of a script is a common trick). A native sidecar that is
 * killed that way is restarted by the kubelet while the main container still runs, and a script
 * that waits for the sidecar to be gone would wait for ever: hahaha cannot tell from the spec, so
 * it converts nothing in such pods.
 */
export function sharesProcessNamespace(raw: Json): boolean {
  return isObject(raw.spec) && raw.spec.shareProcessNamespace === true;
}

/** Regular containers whose catalog entry is marked `native: true`. */
export function nativeCandidates(pod: PodView, catalog: Catalog): string[] {
  return pod.containers.filter((c) => findCatalogEntry(catalog, c)?.native === true).map((c) => c.name);
}

/**
 * The sidecars hahaha's webhook converted in this pod: native init containers named in the
 * annotation. The reaper reports them; a reinvocation of the webhook keeps them in the annotation.
 */
export function convertedSidecars(pod: PodView): string[] {
  const value = pod.annotations[NATIVE_SIDECARS_ANNOTATION];
  if (value === undefined || isOptedOut(pod)) return [];
  const named = new Set(value.split(',').map((s) => s.trim()));
  return pod.initContainers.filter((c) => isNativeSidecar(c) && named.has(c.name)).map((c) => c.name);
}

// ---- plan -------------------------------------------------------------------------------------

function rawLabels(raw: unknown): Record<string, string> {
  const labels = isObject(raw) && isObject(raw.metadata) && isObject(raw.metadata.labels) ? raw.metadata.labels : {};
  return Object.fromEntries(Object.entries(labels).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/**
 * Reads a pod as the API server sends it to an admission webhook. A pod created from a template
 * has no name yet (only generateName) and may carry no namespace; both are filled in for parsing.
 */
export function parseAdmissionPod(raw: unknown, namespace: string): PodView | { malformed: true; reason: string } {
  if (!isObject(raw) || !isObject(raw.metadata)) return { malformed: true, reason: 'not a pod object with metadata' };
  const meta = raw.metadata;
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : `${String(meta.generateName ?? '')}<generated>`;
  const parsed = parsePod({ ...raw, metadata: { ...meta, name, namespace: meta.namespace ?? namespace } });
  return isMalformed(parsed) ? { malformed: true, reason: parsed.reason } : parsed;
}

/** What the webhook does with a pod being created. `raw` is the pod object of the request. */
export function planConversion(raw: unknown, namespace: string, catalog: Catalog, ctx: ConversionContext): ConversionPlan {
  const pod = parseAdmissionPod(raw, namespace);
  if ('malformed' in pod) return skip('malformed', `malformed pod: ${pod.reason}`);
  if (ctx.selects !== undefined && !ctx.selects(rawLabels(raw))) return skip('not-selected', 'the pod does not match the watch selector');
  if (isOptedOut(pod)) return skip('opted-out', `the pod opted out with ${NATIVE_SIDECARS_ANNOTATION}: "false"`);
  if (!isBatchPod(pod)) return skip('restart-always', `restartPolicy ${pod.restartPolicy}: not a batch pod`);

  const candidates = nativeCandidates(pod, catalog);
  const earlier = convertedSidecars(pod);
  if (candidates.length === 0) {
    return skip('nothing-to-convert', earlier.length > 0 ? `already converted: ${earlier.join(', ')}` : 'no container matches a catalog entry marked native');
  }
  if (!ctx.nativeSidecarsSupported) {
    return skip('native-sidecars-unsupported', 'the API server is older than Kubernetes 1.29, which has no native sidecars');
  }
  const mains = findMainContainers(pod);
  if (typeof mains === 'string') return skip('no-main-container', `cannot tell the main container apart: ${mains}`);
  const mainSidecars = candidates.filter((c) => mains.includes(c));
  if (mainSidecars.length > 0) {
    return skip('main-is-sidecar', `${mainSidecars.join(', ')} is named as a main container; converting it would stop the Job from waiting for it`);
  }
  if (sharesProcessNamespace(raw as Json)) {
    return skip(
      'shared-process-namespace',
      'shareProcessNamespace is on: the main container may signal or wait for the sidecar, which a native sidecar would change',
    );
  }

  const kept: KeptContainer[] = [];
  const containers: string[] = [];
  for (const name of candidates) {
    const own = pod.containers.find((c) => c.name === name)?.restartPolicy;
    if (own !== undefined) {
      // A regular container with a restart policy of its own (container restart rules) has its
      // own lifecycle contract; overwriting it would silently change that.
      kept.push({ container: name, reason: `it sets its own restartPolicy ${own}` });
      continue;
    }
    containers.push(name);
  }
  if (containers.length === 0) return skip('nothing-to-convert', kept.map((k) => `${k.container}: ${k.reason}`).join('; '), kept);
  const annotation = [...earlier, ...containers].join(',');
  return { convert: true, containers, annotation, reason: `convert ${containers.join(', ')} to native sidecars`, kept };
}

// ---- patch ------------------------------------------------------------------------------------

/** JSON Pointer escaping of one path segment (RFC 6901). */
function pointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/**
 * The JSONPatch for a plan that converts: each converted container is removed from
 * spec.containers (guarded by a `test` of its name, highest index first) and appended, unchanged
 * but for `restartPolicy: Always`, to spec.initContainers in its original relative order; the
 * annotation records what was converted.
 */
export function conversionPatch(raw: unknown, plan: ConversionPlan): JsonPatchOp[] {
  if (!plan.convert) return [];
  const pod = raw as { metadata: Json; spec: { containers: Json[]; initContainers?: Json[] } };
  const moved = pod.spec.containers.map((c, index) => ({ c, index })).filter(({ c }) => plan.containers.includes(c.name as string));

  const ops: JsonPatchOp[] = [];
  for (const { c, index } of [...moved].reverse()) {
    ops.push({ op: 'test', path: `/spec/containers/${index}/name`, value: c.name });
    ops.push({ op: 'remove', path: `/spec/containers/${index}` });
  }
  const converted = moved.map(({ c }) => ({ ...c, restartPolicy: 'Always' }));
  if (Array.isArray(pod.spec.initContainers)) {
    for (const c of converted) ops.push({ op: 'add', path: '/spec/initContainers/-', value: c });
  } else {
    ops.push({ op: 'add', path: '/spec/initContainers', value: converted });
  }
  if (isObject(pod.metadata.annotations)) {
    ops.push({ op: 'add', path: `/metadata/annotations/${pointer(NATIVE_SIDECARS_ANNOTATION)}`, value: plan.annotation });
  } else {
    ops.push({ op: 'add', path: '/metadata/annotations', value: { [NATIVE_SIDECARS_ANNOTATION]: plan.annotation } });
  }
  return ops;
}

/**
 * Whether a Kubernetes version (as /version reports it: major "1", minor "29" or "29+") runs
 * native sidecars: on by default since 1.29.
 */
export function supportsNativeSidecars(major: string, minor: string): boolean {
  const ma = Number.parseInt(major, 10);
  const mi = Number.parseInt(minor, 10);
  if (!Number.isFinite(ma) || !Number.isFinite(mi)) return false;
  return ma > 1 || (ma === 1 && mi >= 29);
}
