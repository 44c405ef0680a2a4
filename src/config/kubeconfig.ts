/**
 * Finds the Kubernetes credentials the way kubectl does (KUBECONFIG, a list of files merged with
 * the first value winning, else ~/.kube/config, else the in-cluster ServiceAccount), checks what
 * it found and says which source it used. It never falls back to http://localhost:8080.
 *
 * The result is plain data, {@link ClusterAccess}: the server, the TLS material and how to
 * authenticate. `kube/kube-client.ts` turns it into connections.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ClusterError, ConfigError, oneLine, quote } from './errors.ts';

/** Where in-cluster credentials live in a pod with a ServiceAccount token mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A client-go credential plugin (`users[].user.exec`). */
export interface ExecPlugin {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly apiVersion: string;
  /** Directory relative commands and paths are resolved against (the kubeconfig's). */
  readonly dir: string;
  readonly provideClusterInfo: boolean;
}

export type ClusterAuth =
  | { readonly kind: 'none' }
  | { readonly kind: 'token'; readonly token: string }
  /** Re-read periodically: projected ServiceAccount tokens rotate. */
  | { readonly kind: 'tokenFile'; readonly path: string }
  | { readonly kind: 'basic'; readonly username: string; readonly password: string }
  | { readonly kind: 'exec'; readonly plugin: ExecPlugin };

export interface ClusterTls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecureSkipVerify: boolean;
  readonly serverName?: string;
}

export interface ClusterAccess {
  /** The API server's base URL without a trailing slash. */
  readonly server: string;
  readonly tls: ClusterTls;
  readonly auth: ClusterAuth;
}

export interface Credentials {
  readonly access: ClusterAccess;
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
  if (existsSync(tokenFile)) return inCluster(env, saDir, tokenFile);

  throw new ClusterError(
    `no Kubernetes credentials: KUBECONFIG is not set, ${userConfig} does not exist, and ${tokenFile} does not exist (not in a pod with a ServiceAccount) (set KUBECONFIG to a kubeconfig file, or run hahaha in a pod with its ServiceAccount)`,
  );
}

function inCluster(env: NodeJS.ProcessEnv, saDir: string, tokenFile: string): Credentials {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') {
    throw new ClusterError(
      `in-cluster credentials: ${tokenFile} exists but KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set (the kubelet sets both in a pod; outside one, set KUBECONFIG)`,
    );
  }
  const caFile = join(saDir, 'ca.crt');
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const ca = existsSync(caFile) ? readFileSync(caFile) : undefined;
  return {
    access: { server, tls: { insecureSkipVerify: false, ...(ca !== undefined && ca.length > 0 && { ca }) }, auth: { kind: 'tokenFile', path: tokenFile } },
    source: 'in-cluster service account',
    context: 'in-cluster',
    server,
  };
}

/** The parts of a kubeconfig that are read, each remembering the file it came from. */
interface Named<T> {
  readonly name: string;
  readonly value: T;
  readonly file: string;
}
type Fields = Record<string, unknown>;

interface Merged {
  readonly clusters: Map<string, Named<Fields>>;
  readonly users: Map<string, Named<Fields>>;
  readonly contexts: Map<string, Named<Fields>>;
  currentContext: string | undefined;
}

function fromFiles(files: readonly string[], source: string, fix: string): Credentials {
  const merged: Merged = { clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: undefined };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : oneLine((err as Error).message);
      throw new ConfigError(`kubeconfig ${file}: cannot read: ${why} (${fix})`);
    }
    const invalid = (why: string) => new ConfigError(`kubeconfig ${file}: not a valid kubeconfig: ${why} (${fix})`);
    if (text.trim() === '') throw invalid('the file is empty');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for exactly those
    const binary = /[\u0000-\u0008\u000e-\u001f]/.exec(text);
    if (binary !== null) throw invalid(`binary data (byte 0x${binary[0].charCodeAt(0).toString(16).padStart(2, '0')} at offset ${binary.index})`);
    let doc: unknown;
    try {
      doc = parseYaml(text, { maxAliasCount: 100 });
    } catch (err) {
      throw invalid(oneLine(String((err as Error).message).split('\n')[0] ?? ''));
    }
    mergeFile(merged, doc, file, invalid);
  }
  return describe(merged, source, files.join(delimiter), fix);
}

/** Adds one file's entries; an entry already named by an earlier file wins, as with kubectl. */
function mergeFile(merged: Merged, doc: unknown, file: string, invalid: (why: string) => ConfigError): void {
  // A YAML scalar (plain text) is a file with nothing in it, as kubectl sees it.
  if (!isFields(doc)) return;
  const sections = [
    ['clusters', 'cluster', merged.clusters],
    ['users', 'user', merged.users],
    ['contexts', 'context', merged.contexts],
  ] as const;
  for (const [section, field, into] of sections) {
    const list = doc[section];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw invalid(`${section} is not a list`);
    for (const [i, entry] of list.entries()) {
      if (!isFields(entry) || typeof entry.name !== 'string' || entry.name === '') throw invalid(`${section}[${i}].name is missing`);
      const value = entry[field] ?? {};
      if (!isFields(value)) throw invalid(`${section}[${i}].${field} is not a mapping`);
      if (section === 'clusters' && (typeof value.server !== 'string' || value.server === '')) throw invalid(`${section}[${i}].cluster.server is missing`);
      if (!into.has(entry.name)) into.set(entry.name, { name: entry.name, value, file });
    }
  }
  const current = doc['current-context'];
  if (merged.currentContext === undefined && typeof current === 'string' && current !== '') merged.currentContext = current;
}

/** A path from a kubeconfig: relative ones are relative to that file's directory, as kubectl reads them. */
function besideFile(file: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(file), path);
}

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that the current context leads to a cluster with a server, as kubectl would. */
function describe(merged: Merged, source: string, label: string, fix: string): Credentials {
  const contexts = [...merged.contexts.keys()];
  const bad = (why: string, howTo = fix) => new ConfigError(`kubeconfig ${label}: ${why} (${howTo})`);
  if (contexts.length === 0) throw bad('has no contexts', `add one with kubectl config set-context, or ${fix}`);
  const name = merged.currentContext;
  if (name === undefined) throw bad(`has no current-context (contexts: ${contexts.join(', ')})`, 'choose one with kubectl config use-context NAME');
  const context = merged.contexts.get(name);
  if (context === undefined) {
    throw bad(`current-context ${quote(name)} is not one of its contexts (${contexts.join(', ')})`, 'choose one with kubectl config use-context NAME');
  }
  const clusterName = String(context.value.cluster ?? '');
  const cluster = merged.clusters.get(clusterName);
  if (cluster === undefined) throw bad(`context ${quote(name)} names cluster ${quote(clusterName)}, which is not defined`);
  const server = String(cluster.value.server);
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw bad(`cluster ${quote(cluster.name)} has server ${quote(server)}, not an http(s) URL`);
  }
  const userName = typeof context.value.user === 'string' ? context.value.user : '';
  const user = userName === '' ? undefined : merged.users.get(userName);
  if (userName !== '' && user === undefined) throw bad(`context ${quote(name)} names user ${quote(userName)}, which is not defined`);

  const fields = new FieldReader(label, fix);
  const userTls = user === undefined ? {} : fields.userTls(user);
  const tls: ClusterTls = {
    insecureSkipVerify: cluster.value['insecure-skip-tls-verify'] === true,
    ...fields.material(cluster, 'certificate-authority', 'ca'),
    ...userTls,
    ...(typeof cluster.value['tls-server-name'] === 'string' && cluster.value['tls-server-name'] !== '' && { serverName: cluster.value['tls-server-name'] }),
  };
  if (typeof cluster.value['proxy-url'] === 'string' && cluster.value['proxy-url'] !== '') {
    throw bad(`cluster ${quote(cluster.name)} uses proxy-url, which hahaha does not support`, 'reach the API server directly, e.g. from inside the cluster');
  }
  return {
    access: { server: server.replace(/\/+$/, ''), tls, auth: user === undefined ? { kind: 'none' } : fields.auth(user) },
    source,
    context: name,
    server,
  };
}

/** Reads a user's or cluster's fields, with errors naming the file and the field. */
class FieldReader {
  private readonly label: string;
  private readonly fix: string;

  constructor(label: string, fix: string) {
    this.label = label;
    this.fix = fix;
  }

  private bad(entry: Named<Fields>, why: string): ConfigError {
    return new ConfigError(`kubeconfig ${this.label}: ${entry.file === this.label ? '' : `${entry.file}: `}${quote(entry.name)}: ${why} (${this.fix})`);
  }

  /** `<field>-data` (base64) or `<field>` (a file, relative to the kubeconfig). */
  material<K extends 'ca' | 'cert' | 'key'>(entry: Named<Fields>, field: string, as: K): Partial<Record<K, Buffer>> {
    const data = entry.value[`${field}-data`];
    if (typeof data === 'string' && data !== '') return { [as]: Buffer.from(data, 'base64') } as Record<K, Buffer>;
    const path = entry.value[field];
    if (typeof path !== 'string' || path === '') return {};
    const full = besideFile(entry.file, path);
    try {
      return { [as]: readFileSync(full) } as Record<K, Buffer>;
    } catch (err) {
      throw this.bad(entry, `${field} ${full}: cannot read: ${oneLine((err as Error).message)}`);
    }
  }

  userTls(user: Named<Fields>): Pick<ClusterTls, 'cert' | 'key'> {
    const tls = { ...this.material(user, 'client-certificate', 'cert'), ...this.material(user, 'client-key', 'key') };
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw this.bad(user, 'has a client certificate or a client key but not both');
    return tls;
  }

  auth(user: Named<Fields>): ClusterAuth {
    const u = user.value;
    if (isFields(u['auth-provider'])) {
      throw this.bad(user, `uses auth-provider ${quote(String(u['auth-provider'].name ?? ''))}, which hahaha does not support (use an exec credential plugin)`);
    }
    if (typeof u.token === 'string' && u.token !== '') return { kind: 'token', token: u.token };
    if (typeof u.tokenFile === 'string' && u.tokenFile !== '') {
      return { kind: 'tokenFile', path: besideFile(user.file, u.tokenFile) };
    }
    if (typeof u.username === 'string' && u.username !== '') return { kind: 'basic', username: u.username, password: String(u.password ?? '') };
    if (u.exec !== undefined && u.exec !== null) return { kind: 'exec', plugin: this.execPlugin(user, u.exec) };
    return { kind: 'none' };
  }

  private execPlugin(user: Named<Fields>, exec: unknown): ExecPlugin {
    if (!isFields(exec) || typeof exec.command !== 'string' || exec.command === '') throw this.bad(user, 'exec.command is missing');
    const args = exec.args ?? [];
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw this.bad(user, 'exec.args is not a list of strings');
    const env: Record<string, string> = {};
    for (const [i, e] of (Array.isArray(exec.env) ? exec.env : []).entries()) {
      if (!isFields(e) || typeof e.name !== 'string') throw this.bad(user, `exec.env[${i}].name is missing`);
      env[e.name] = String(e.value ?? '');
    }
    const apiVersion = typeof exec.apiVersion === 'string' ? exec.apiVersion : '';
    if (!/^client\.authentication\.k8s\.io\/v1(beta1)?$/.test(apiVersion)) {
      throw this.bad(user, `exec.apiVersion ${quote(apiVersion)} is not client.authentication.k8s.io/v1 or v1beta1`);
    }
    return { command: exec.command, args, env, apiVersion, dir: dirname(user.file), provideClusterInfo: exec.provideClusterInfo === true };
  }
}
