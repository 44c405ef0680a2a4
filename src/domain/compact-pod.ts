/**
 * Sharing the strings that repeat across watched pods: namespaces, images, container names,
 * label values, flags, phases. Pods parsed from the watch each carry their own copies; the cache
 * keeps one. Names and uids are unique and are left as they are. Pure apart from the table it is
 * given.
 */
import type { ContainerSpecView, ContainerState, ContainerStatusView, PodView } from './pod-view.ts';

/** Returns the one shared instance of a string. */
export type Intern = (s: string) => string;

/** An interning table that forgets everything once it holds `max` strings (it only saves memory). */
export function internTable(max = 50_000): Intern {
  let table = new Map<string, string>();
  return (s) => {
    const known = table.get(s);
    if (known !== undefined) return known;
    if (table.size >= max) table = new Map();
    table.set(s, s);
    return s;
  };
}

function record(r: Readonly<Record<string, string>>, intern: Intern): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(r)) out[intern(k)] = intern(v);
  return out;
}

function container(c: ContainerSpecView, intern: Intern): ContainerSpecView {
  return {
    name: intern(c.name),
    image: intern(c.image),
    ...(c.restartPolicy !== undefined && { restartPolicy: intern(c.restartPolicy) }),
    ...(c.argv !== undefined && { argv: c.argv.map(intern) }),
    ...(c.env !== undefined && { env: record(c.env, intern) }),
  };
}

function state(s: ContainerState, intern: Intern): ContainerState {
  if (s.kind === 'running' || s.reason === undefined) return s;
  return { ...s, reason: intern(s.reason) };
}

function status(s: ContainerStatusView, intern: Intern): ContainerStatusView {
  return { name: intern(s.name), state: state(s.state, intern), restartCount: s.restartCount };
}

/** The same pod, its repeated strings shared through `intern`. */
export function compactPod(pod: PodView, intern: Intern): PodView {
  return {
    ...pod,
    namespace: intern(pod.namespace),
    labels: record(pod.labels, intern),
    annotations: record(pod.annotations, intern),
    restartPolicy: intern(pod.restartPolicy),
    phase: intern(pod.phase),
    containers: pod.containers.map((c) => container(c, intern)),
    initContainers: pod.initContainers.map((c) => container(c, intern)),
    containerStatuses: pod.containerStatuses.map((s) => status(s, intern)),
    ...(pod.owner !== undefined && { owner: { ...pod.owner, apiVersion: intern(pod.owner.apiVersion), kind: intern(pod.owner.kind) } }),
  };
}
