/**
 * Finds the Kubernetes credentials the way client-node's `loadFromDefault` does (KUBECONFIG, else
 * ~/.kube/config, else the in-cluster ServiceAccount), but checks what it found and says which
 * source it used. Where client-node would silently fall back to http://localhost:8080, this throws.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ClusterError, ConfigError, oneLine, quote } from './errors.ts';

/** Where in-cluster credentials live in a pod with a ServiceAccount token mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface Credentials {
  readonly kubeConfig: KubeConfig;
  /** Which source was used, for the start-up log: `KUBECONFIG=/a/b`, `~/.kube/config (/root/.kube/config)` or `in-cluster service account`. */
  readonly source: string;
  readonly context: string;
  readonly server: string;
}

export interface CredentialLookup {
  /** Read for KUBECONFIG, KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT. */
  readonly env: NodeJS.ProcessEnv;
  /** @default os.homedir() */
  readonly home?: string;
  /** @default {@link SERVICE_ACCOUNT_DIR} */
  readonly serviceAccountDir?: string;
}

const NO_KUBECONFIG_FIX = 'set KUBECONFIG to a kubeconfig file, or unset it to use ~/.kube/config or the in-cluster service account';

/** Reads the credentials; throws ConfigError for a bad kubeconfig, ClusterError when there are none. */
export function loadKubeConfig(lookup: CredentialLookup = { env: process.env }): Credentials {
  const { env } = lookup;
  const files = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (files.length > 0) return fromFiles(files, `KUBECONFIG=${files.join(delimiter)}`, NO_KUBECONFIG_FIX);

  const home = lookup.home ?? homedir();
  const userConfig = join(home, '.kube', 'config');
  if (existsSync(userConfig)) {
    return fromFiles([userConfig], `~/.kube/config (${userConfig})`, 'fix the file, or set KUBECONFIG to another kubeconfig file');
  }

  const saDir = lookup.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const tokenFile = join(saDir, 'token');
  if (existsSync(tokenFile)) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (host === undefined || host === '' || port === undefined || port === '') {
      throw new ClusterError(
        `in-cluster credentials: ${tokenFile} exists but KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set (the kubelet sets both in a pod; outside one, set KUBECONFIG)`,
      );
    }
    const kc = new KubeConfig();
    // loadFromCluster reads the fixed ServiceAccount paths under a prefix; tests point it elsewhere.
    kc.loadFromCluster(saDir === SERVICE_ACCOUNT_DIR ? '' : saDir.slice(0, -SERVICE_ACCOUNT_DIR.length));
    return describe(kc, 'in-cluster service account');
  }

  throw new ClusterError(
    `no Kubernetes credentials: KUBECONFIG is not set, ${userConfig} does not exist, and ${tokenFile} does not exist (not in a pod with a ServiceAccount) (set KUBECONFIG to a kubeconfig file, or run hahaha in a pod with its ServiceAccount)`,
  );
}

function fromFiles(files: readonly string[], source: string, fix: string): Credentials {
  const kc = new KubeConfig();
  for (const [i, file] of files.entries()) {
    try {
      readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : oneLine((err as Error).message);
      throw new ConfigError(`kubeconfig ${file}: cannot read: ${why} (${fix})`);
    }
    try {
      if (i === 0) {
        kc.loadFromFile(file);
      } else {
        const more = new KubeConfig();
        more.loadFromFile(file);
        kc.mergeConfig(more);
      }
    } catch (err) {
      const first = String((err as Error).message).split('\n')[0] ?? '';
      throw new ConfigError(`kubeconfig ${file}: not a valid kubeconfig: ${oneLine(first)} (${fix})`);
    }
  }
  return describe(kc, source, files.join(delimiter), fix);
}

/** Checks that the current context leads to a cluster with a server, as kubectl would. */
function describe(kc: KubeConfig, source: string, label = source, fix = NO_KUBECONFIG_FIX): Credentials {
  const contexts = kc.getContexts().map((c) => c.name);
  const bad = (why: string, howTo = fix) => new ConfigError(`kubeconfig ${label}: ${why} (${howTo})`);
  if (contexts.length === 0) throw bad('has no contexts', `add one with kubectl config set-context, or ${fix}`);
  const name = kc.getCurrentContext();
  if (name === undefined || name === '') {
    throw bad(`has no current-context (contexts: ${contexts.join(', ')})`, 'choose one with kubectl config use-context NAME');
  }
  const context = kc.getContextObject(name);
  if (context === null || context === undefined) {
    throw bad(`current-context ${quote(name)} is not one of its contexts (${contexts.join(', ')})`, 'choose one with kubectl config use-context NAME');
  }
  const cluster = kc.getCluster(context.cluster);
  if (cluster === null || cluster === undefined) throw bad(`context ${quote(name)} names cluster ${quote(context.cluster)}, which is not defined`);
  let url: URL | undefined;
  try {
    url = new URL(cluster.server);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw bad(`cluster ${quote(cluster.name)} has server ${quote(String(cluster.server))}, not an http(s) URL`);
  }
  if (context.user !== undefined && context.user !== '' && kc.getUser(context.user) === null) {
    throw bad(`context ${quote(name)} names user ${quote(context.user)}, which is not defined`);
  }
  return { kubeConfig: kc, source, context: name, server: cluster.server };
}
