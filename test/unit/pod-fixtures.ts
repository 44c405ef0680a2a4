/**
 * Pod fixtures built from named modifiers, as raw API JSON (so parsing is exercised too):
 *   pod('job', withApp('job'), container('job'), terminated('job', 0), running('linkerd-proxy'))
 */
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { catalogReads } from '../../src/domain/catalog.ts';
import { isMalformed, type PodView, parsePod } from '../../src/domain/pod-view.ts';

/** Parse options as the daemon uses them with the shipped catalog (the annotations and env it reads kept). */
export const PARSE = catalogReads(loadCatalog(DEFAULT_CATALOG_PATH));

type Json = Record<string, any>;
export type Mod = (p: Json) => void;

export const T0 = Date.parse('2026-11-27T08:00:00Z');

/** The container names of the CONTEXT table's sidecars, each with an entry in the default catalog. */
export const CATALOG_SIDECARS = [
  'linkerd-proxy',
  'istio-proxy',
  'cloudsql-proxy',
  'cloud-sql-proxy',
  'secure-logs-fluentd',
  'secure-logs-configmap-reload',
  'vks-sidecar',
  'vault-agent',
  'daprd',
];
const iso = (ms: number) => new Date(ms).toISOString();

function specOf(p: Json, name: string): Json {
  let c = p.spec.containers.find((x: Json) => x.name === name);
  if (c === undefined) {
    c = { name, image: `example/${name}:1` };
    p.spec.containers.push(c);
  }
  return c;
}

function setState(p: Json, name: string, state: Json, restartCount = 0): void {
  specOf(p, name);
  const list: Json[] = p.status.containerStatuses;
  const existing = list.find((s) => s.name === name);
  if (existing !== undefined) {
    existing.state = state;
    existing.restartCount = restartCount;
  } else list.push({ name, state, restartCount, ready: 'running' in state, image: '' });
}

export function rawPod(name: string, ...mods: Mod[]): Json {
  const p: Json = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'team', uid: `uid-${name}`, resourceVersion: '1', labels: { 'nais.io/naisjob': 'true' } },
    spec: { restartPolicy: 'Never', nodeName: 'node-a', containers: [] },
    status: { phase: 'Running', containerStatuses: [] },
  };
  for (const m of mods) m(p);
  return p;
}

/** Binds the pod to another node (rawPod's pods are on node-a); undefined: not bound. */
export const onNode =
  (node: string | undefined): Mod =>
  (p) => {
    if (node === undefined) delete p.spec.nodeName;
    else p.spec.nodeName = node;
  };

export function pod(name: string, ...mods: Mod[]): PodView {
  const parsed = parsePod(rawPod(name, ...mods), PARSE);
  if (isMalformed(parsed)) throw new Error(`fixture is malformed: ${parsed.reason}`);
  return parsed;
}

export const withApp =
  (app: string): Mod =>
  (p) => {
    p.metadata.labels.app = app;
  };
export const withoutLabels: Mod = (p) => {
  p.metadata.labels = {};
};
export const annotated =
  (key: string, value: string): Mod =>
  (p) => {
    p.metadata.annotations = { ...(p.metadata.annotations ?? {}), [key]: value };
  };
export const container =
  (name: string, image = `example/${name}:1`): Mod =>
  (p) => {
    specOf(p, name).image = image;
  };
export const restartPolicy =
  (policy: string): Mod =>
  (p) => {
    p.spec.restartPolicy = policy;
  };
export const phase =
  (value: string): Mod =>
  (p) => {
    p.status.phase = value;
  };
export const deleting: Mod = (p) => {
  p.metadata.deletionTimestamp = iso(T0);
};
export const running =
  (name: string): Mod =>
  (p) =>
    setState(p, name, { running: { startedAt: iso(T0 - 60_000) } });
/** Running since `startedAt` (epoch ms; the kubelet reports whole seconds). */
export const runningSince =
  (name: string, startedAt: number): Mod =>
  (p) =>
    setState(p, name, { running: { startedAt: new Date(Math.floor(startedAt / 1000) * 1000).toISOString().replace('.000Z', 'Z') } });
export const waiting =
  (name: string, reason = 'ContainerCreating'): Mod =>
  (p) =>
    setState(p, name, { waiting: { reason } });
export const terminated =
  (name: string, exitCode: number, finishedAt = T0, restarts = 0): Mod =>
  (p) =>
    setState(p, name, { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', finishedAt: iso(finishedAt) } }, restarts);
export const nativeSidecar =
  (name: string): Mod =>
  (p) => {
    p.spec.initContainers = [...(p.spec.initContainers ?? []), { name, image: `example/${name}:1`, restartPolicy: 'Always' }];
    p.status.initContainerStatuses = [...(p.status.initContainerStatuses ?? []), { name, state: { running: {} }, restartCount: 0 }];
  };
export const uid =
  (value: string): Mod =>
  (p) => {
    p.metadata.uid = value;
  };
export const version =
  (rv: string): Mod =>
  (p) => {
    p.metadata.resourceVersion = rv;
  };
export const ownedByJob =
  (name: string): Mod =>
  (p) => {
    p.metadata.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: `uid-${name}`, controller: true, blockOwnerDeletion: true }];
  };
export const args =
  (name: string, ...values: string[]): Mod =>
  (p) => {
    specOf(p, name).args = values;
  };
/** linkerd's shutdown endpoint switched on, as its catalog entry requires. */
export const linkerdShutdown: Mod = (p) => {
  p.metadata.annotations = { ...(p.metadata.annotations ?? {}), 'config.linkerd.io/proxy-admin-shutdown': 'enabled' };
};
