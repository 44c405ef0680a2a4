/**
 * Sharing what repeats across watched pods. Pods parsed from the watch each carry their own
 * copies of everything; the cache keeps one of each string that repeats (namespaces, images,
 * container names, label values, flags, phases) and one of each part that repeats whole (a
 * sidecar's spec and its argv, the annotations, a container state every container of the pod
 * shares, the empty lists). The views are read-only, so a shared part is never written through
 * one pod. Names, uids and resourceVersions are unique and are left as they are. Pure apart from
 * the table it is given.
 */
import { findMainContainers } from './decide.ts';
import type { ContainerSpecView, ContainerState, ContainerStatusView, PodView } from './pod-view.ts';

/**
 * FNV-1a over a view part's structure: strings, numbers, booleans, lists and plain objects, as
 * the views are made of.
 */
function hash(v: unknown, h = 0x811c9dc5): number {
  if (typeof v === 'string') {
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 0x01000193);
    return Math.imul(h ^ 0xff, 0x01000193);
  }
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined) return hash(String(v), Math.imul(h ^ 0xfe, 0x01000193));
  if (Array.isArray(v)) {
    for (const x of v) h = hash(x, h);
    return Math.imul(h ^ 0xfd, 0x01000193);
  }
  for (const [k, x] of Object.entries(v as object)) h = hash(x, hash(k, h));
  return Math.imul(h ^ 0xfc, 0x01000193);
}

/** Structural equality of two view parts. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => same(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = Object.keys(ra);
  return keys.length === Object.keys(rb).length && keys.every((k) => Object.hasOwn(rb, k) && same(ra[k], rb[k]));
}

/** The shared instances: of strings by their text, of parts by their structure. */
export interface Intern {
  /** The one shared instance of a string. */
  string(s: string): string;
  /** An equal part kept before, or `v` itself, kept from now on. `v` must not change afterwards. */
  part<T extends object>(v: T): T;
}

/**
 * A table that forgets everything once it holds `max` strings or `max` parts: it only saves
 * memory, so forgetting costs a copy per part, never a wrong answer. Parts are keyed by a hash of
 * their structure and compared whole on a hit, so no key text is kept; on a collision with an
 * unequal part the new one is simply not shared.
 */
export function internTable(max = 50_000): Intern {
  let strings = new Map<string, string>();
  let parts = new Map<number, object>();
  return {
    string(s) {
      const known = strings.get(s);
      if (known !== undefined) return known;
      if (strings.size >= max) strings = new Map();
      strings.set(s, s);
      return s;
    },
    part(v) {
      const h = hash(v) & 0x3fffffff;
      const known = parts.get(h);
      if (known !== undefined) return (same(known, v) ? known : v) as typeof v;
      if (parts.size >= max) parts = new Map();
      parts.set(h, v);
      return v;
    },
  };
}

const NONE: readonly never[] = Object.freeze([]);
const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

function record(r: Readonly<Record<string, string>>, intern: Intern): Readonly<Record<string, string>> {
  const keys = Object.keys(r);
  if (keys.length === 0) return EMPTY;
  const out: Record<string, string> = {};
  for (const k of keys) out[intern.string(k)] = intern.string(r[k] as string);
  return out;
}

/** A container's spec, its strings shared; its argv and env shared whole. */
function own(c: ContainerSpecView, intern: Intern): ContainerSpecView {
  return {
    name: intern.string(c.name),
    image: intern.string(c.image),
    ...(c.restartPolicy !== undefined && { restartPolicy: intern.string(c.restartPolicy) }),
    ...(c.argv !== undefined && { argv: intern.part(c.argv.map(intern.string)) }),
    ...(c.env !== undefined && { env: intern.part(record(c.env, intern)) }),
  };
}

/**
 * The pod's statuses. A status equal to the one before it (the pod's previous version) is that
 * one; a state equal to one of an earlier container of the pod is that one (the containers of a
 * pod usually start in the same second). States carry timestamps, so they rarely repeat across
 * pods and are not kept in the table.
 */
function statuses(list: readonly ContainerStatusView[], before: readonly ContainerStatusView[] | undefined, intern: Intern): readonly ContainerStatusView[] {
  if (list.length === 0) return NONE;
  const seen: ContainerState[] = [];
  return list.map((s, i) => {
    const was = before?.[i];
    if (was !== undefined && same(was, s)) return was;
    let state = seen.find((x) => same(x, s.state));
    if (state === undefined) {
      state = s.state.kind === 'running' || s.state.reason === undefined ? s.state : { ...s.state, reason: intern.string(s.state.reason) };
      seen.push(state);
    }
    return { name: intern.string(s.name), state, restartCount: s.restartCount };
  });
}

/** `before` when it equals `now`, else `make()`: what an update did not change stays as it was. */
function unchanged<T>(before: T | undefined, now: T, make: () => T): T {
  return before !== undefined && same(before, now) ? before : make();
}

/**
 * The same pod, what repeats shared through `intern`, and what did not change since `before`
 * (the version of the pod kept until now) kept as it was. The specs of the pod's main containers
 * belong to its Job and are kept per pod, outside the table; the other containers' specs repeat
 * across pods (the injected sidecars) and are shared.
 */
export function compactPod(pod: PodView, intern: Intern, before?: PodView): PodView {
  const owner = pod.owner;
  // Only when the specs changed (most updates are status updates): which containers are main.
  const specs = (list: readonly ContainerSpecView[]) => {
    const mains = findMainContainers(pod);
    return list.map((c) => (Array.isArray(mains) && mains.includes(c.name) ? own(c, intern) : intern.part(own(c, intern))));
  };
  return {
    ...pod,
    namespace: intern.string(pod.namespace),
    labels: unchanged(before?.labels, pod.labels, () => record(pod.labels, intern)),
    annotations: unchanged(before?.annotations, pod.annotations, () => intern.part(record(pod.annotations, intern))),
    restartPolicy: intern.string(pod.restartPolicy),
    ...(pod.nodeName !== undefined && { nodeName: intern.string(pod.nodeName) }),
    phase: intern.string(pod.phase),
    containers: unchanged(before?.containers, pod.containers, () => specs(pod.containers)),
    initContainers: pod.initContainers.length === 0 ? NONE : unchanged(before?.initContainers, pod.initContainers, () => specs(pod.initContainers)),
    containerStatuses: statuses(pod.containerStatuses, before?.containerStatuses, intern),
    ...(owner !== undefined && {
      owner: unchanged(before?.owner, owner, () => ({ ...owner, apiVersion: intern.string(owner.apiVersion), kind: intern.string(owner.kind) })),
    }),
  };
}

/**
 * Whether `kept`, made by compactPod with `before`, shows nothing `before` did not: only its
 * resourceVersion may differ. compactPod keeps every part an update did not change as the same
 * instance, so the parts compare by identity.
 */
export function sameView(kept: PodView, before: PodView): boolean {
  return (
    kept.uid === before.uid &&
    kept.phase === before.phase &&
    kept.deletionTimestamp === before.deletionTimestamp &&
    kept.restartPolicy === before.restartPolicy &&
    kept.nodeName === before.nodeName &&
    kept.labels === before.labels &&
    kept.annotations === before.annotations &&
    kept.owner === before.owner &&
    kept.containers === before.containers &&
    kept.initContainers === before.initContainers &&
    kept.containerStatuses.length === before.containerStatuses.length &&
    kept.containerStatuses.every((s, i) => s === before.containerStatuses[i])
  );
}
