/**
 * helm for the chart tests: the binary cluster/scripts/build.sh builds (HELM_VERSION of
 * cluster/versions.env), rendering into parsed objects, and the rule for a missing tool:
 * fail in CI (CI=true), skip elsewhere.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { CHART } from '../unit/chart-assets.ts';
import { BUILT, KUBECONFIG } from './harness.ts';

const run = promisify(execFile);

export const HELM = `${BUILT.HELM_BIN}/helm`;
export const IN_CI = process.env.CI === 'true';

/**
 * undefined when `path` exists; else the reason to skip (locally). In CI a missing tool is a
 * failure, so this throws there.
 */
export function missing(path: string, what: string, howTo: string): string | undefined {
  if (existsSync(path)) return undefined;
  const reason = `${what} not found at ${path}: ${howTo}`;
  if (IN_CI) throw new Error(reason);
  return reason;
}

export const HELM_MISSING = (): string | undefined => missing(HELM, 'helm', 'run cluster/scripts/build.sh helm');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

/** Runs helm; rejects with its stderr. */
export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(HELM, args, { maxBuffer: 32 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** helm against the local cluster (the admin kubeconfig): install, upgrade, uninstall. */
export async function helmOnCluster(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return helm([...args, '--kubeconfig', KUBECONFIG]);
}

/** --set-json arguments for a values object, one per top-level key. */
export function setJson(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ['--set-json', `${k}=${JSON.stringify(v)}`]);
}

/** `helm template` of the chart with the given --set-json values; returns the YAML text. */
export async function renderText(release: string, namespace: string, values: Record<string, unknown> = {}): Promise<string> {
  return (await helm(['template', release, CHART, '--namespace', namespace, ...setJson(values)])).stdout;
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}

export async function render(release: string, namespace: string, values: Record<string, unknown> = {}): Promise<K8sObject[]> {
  return parseObjects(await renderText(release, namespace, values));
}

/** The first object of `kind` (and, when given, whose name ends with `suffix`). */
export function find(objects: K8sObject[], kind: string, suffix = ''): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  if (o === undefined)
    throw new Error(`no ${kind}${suffix ? ` named *${suffix}` : ''} in the rendered chart (${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')})`);
  return o;
}

/** The objects the webhook adds to the chart, as "Kind/name" of a release whose full name is `fullname`. */
export function webhookObjects(fullname: string): string[] {
  return [`MutatingWebhookConfiguration/${fullname}`, `Secret/${fullname}-webhook-tls`, `Service/${fullname}-webhook`];
}

/**
 * The ClusterRole hahaha needs, exactly, as sorted `group|resource|verb` lines: what the chart
 * must render and what its ServiceAccount must be granted on the cluster.
 */
export const CLUSTER_RULES: readonly string[] = [
  'core|events|create',
  'core|events|patch',
  'core|pods/exec|create',
  'core|pods/exec|get',
  'core|pods/portforward|create',
  'core|pods/portforward|get',
  'core|pods|get',
  'core|pods|list',
  'core|pods|watch',
  'events.k8s.io|events|create',
  'events.k8s.io|events|patch',
];

/** Values that switch every optional template on (the webhook is on by default). */
export const ALL_OPTIONAL_ON = {
  serviceMonitor: { enabled: true },
  prometheusRule: { enabled: true },
  grafanaDashboard: { enabled: true },
  networkPolicy: { enabled: true, apiServer: { cidrs: ['127.0.0.1/32'] } },
} as const;
