/**
 * Start-up failures of `hahaha run` before it reaches the cluster: a bad or missing kubeconfig
 * (exit 2), no credentials at all (exit 3, at once, instead of a client library's silent
 * localhost:8080), a metrics port in use or a host not on this machine (exit 2), a too old Node
 * (exit 2), bad usage (exit 2). Each prints one line and no stack; only a bug prints a stack.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { reportFailure } from '../../src/cli.ts';
import { ClusterError, ConfigError } from '../../src/config/errors.ts';
import { loadKubeConfig } from '../../src/config/kubeconfig.ts';
import { assertKnownFailure, BIN, hahaha, inProcess, type Outcome } from './cli-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'hahaha-startup-errors-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const kubeconfig = (lines: string[]) => ['apiVersion: v1', 'kind: Config', ...lines, ''].join('\n');
const CLUSTER = 'clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]';
const USER = 'users: [{name: u, user: {token: t}}]';
const CONTEXT = 'contexts: [{name: a, context: {cluster: c, user: u}}]';
/** Valid but unreachable (port 9, discard): start-up gets as far as listening. */
const UNREACHABLE = file('unreachable', kubeconfig([CLUSTER, USER, CONTEXT, 'current-context: a']));

/** [what, KUBECONFIG contents (undefined: no such file), exit code, patterns] */
const kubeconfigCases: [string, string | undefined, number, RegExp[]][] = [
  ['a missing file', undefined, 2, [/kubeconfig .*missing: cannot read: no such file \(set KUBECONFIG to a kubeconfig file, or unset it/]],
  ['garbage', 'garbage: [\n  - {', 2, [/kubeconfig .*garbage: not a valid kubeconfig: /]],
  ['an empty file', '', 2, [/kubeconfig .*an-empty-file: not a valid kubeconfig: /]],
  ['binary bytes', '\u0000\u0001\u0002PK\u0003\u0004', 2, [/kubeconfig .*binary-bytes: not a valid kubeconfig/]],
  ['plain text', 'hello world\n', 2, [/kubeconfig .*plain-text: has no contexts \(add one with kubectl config set-context/]],
  ['no contexts', kubeconfig([CLUSTER, USER]), 2, [/has no contexts/]],
  [
    'no current-context',
    kubeconfig([CLUSTER, USER, CONTEXT]),
    2,
    [/has no current-context \(contexts: a\) \(choose one with kubectl config use-context NAME\)/],
  ],
  [
    'a current-context that does not exist',
    kubeconfig([CLUSTER, USER, CONTEXT, 'current-context: b']),
    2,
    [/current-context "b" is not one of its contexts \(a\)/],
  ],
  [
    'a context naming a missing cluster',
    kubeconfig([USER, 'clusters: []', CONTEXT, 'current-context: a']),
    2,
    [/context "a" names cluster "c", which is not defined/],
  ],
  [
    'a context naming a missing user',
    kubeconfig([CLUSTER, 'users: []', CONTEXT, 'current-context: a']),
    2,
    [/context "a" names user "u", which is not defined/],
  ],
  [
    'a cluster without server',
    kubeconfig(['clusters: [{name: c, cluster: {}}]', USER, CONTEXT, 'current-context: a']),
    2,
    [/not a valid kubeconfig: clusters\[0\]\.cluster\.server is missing/],
  ],
  [
    'a server that is not a URL',
    kubeconfig(['clusters: [{name: c, cluster: {server: "ftp://x"}}]', USER, CONTEXT, 'current-context: a']),
    2,
    [/cluster "c" has server "ftp:\/\/x", not an http\(s\) URL/],
  ],
  [
    'a user with an auth-provider',
    kubeconfig([CLUSTER, 'users: [{name: u, user: {auth-provider: {name: oidc}}}]', CONTEXT, 'current-context: a']),
    2,
    [/"u": uses auth-provider "oidc", which hahaha does not support \(use an exec credential plugin\)/],
  ],
  [
    'a client certificate without its key',
    kubeconfig([CLUSTER, 'users: [{name: u, user: {client-certificate-data: Zm9v}}]', CONTEXT, 'current-context: a']),
    2,
    [/"u": has a client certificate or a client key but not both/],
  ],
  [
    'a credential plugin of an unknown apiVersion',
    kubeconfig([CLUSTER, 'users: [{name: u, user: {exec: {command: x, apiVersion: client.authentication.k8s.io/v1alpha1}}}]', CONTEXT, 'current-context: a']),
    2,
    [/"u": exec\.apiVersion "client\.authentication\.k8s\.io\/v1alpha1" is not client\.authentication\.k8s\.io\/v1 or v1beta1/],
  ],
  [
    'a CA file that does not exist',
    kubeconfig(['clusters: [{name: c, cluster: {server: "https://127.0.0.1:9", certificate-authority: no-such-ca.crt}}]', USER, CONTEXT, 'current-context: a']),
    2,
    [/"c": certificate-authority .*no-such-ca\.crt: cannot read: ENOENT/],
  ],
  [
    'a proxy-url',
    kubeconfig(['clusters: [{name: c, cluster: {server: "https://127.0.0.1:9", proxy-url: "http://proxy:3128"}}]', USER, CONTEXT, 'current-context: a']),
    2,
    [/cluster "c" uses proxy-url, which hahaha does not support/],
  ],
];

describe('kubeconfig errors (hahaha run)', () => {
  // Every case through the CLI's error boundary in-process; three also through bin/hahaha.js.
  const paths = new Map(kubeconfigCases.map(([what, text]) => [what, text === undefined ? join(dir, 'missing') : file(what.replaceAll(' ', '-'), text)]));
  const asChild = new Set(['a missing file', 'garbage', 'no current-context']);
  const children = new Map([...asChild].map((what) => [what, hahaha(['run'], { KUBECONFIG: paths.get(what) ?? '' })]));
  for (const [what, , code, patterns] of kubeconfigCases) {
    it(`refuses ${what} with exit ${code} and one line${asChild.has(what) ? ' (bin/hahaha.js)' : ''}`, async () => {
      const expected = [/^hahaha: kubeconfig /, ...patterns];
      assertKnownFailure(await inProcess(['run'], { KUBECONFIG: paths.get(what) ?? '' }), code, expected);
      const child = children.get(what);
      if (child !== undefined) assertKnownFailure(await child, code, expected);
    });
  }

  it('refuses a bad ~/.kube/config the same way, naming it', () => {
    const home = mkdtempSync(join(tmpdir(), 'hahaha-home-'));
    mkdirSync(join(home, '.kube'));
    writeFileSync(join(home, '.kube', 'config'), 'hello\n');
    assert.throws(
      () => loadKubeConfig({ env: {}, home, serviceAccountDir: join(dir, 'no-sa') }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /kubeconfig .*\.kube\/config: has no contexts/);
        return true;
      },
    );
  });

  it('says which source it used', () => {
    const used = loadKubeConfig({ env: { KUBECONFIG: UNREACHABLE } });
    assert.equal(used.source, `KUBECONFIG=${UNREACHABLE}`);
    assert.equal(used.context, 'a');
    assert.equal(used.server, 'https://127.0.0.1:9');
  });

  it('uses the in-cluster service account when there is no kubeconfig, and refuses one without the service env', () => {
    const root = mkdtempSync(join(tmpdir(), 'hahaha-sa-'));
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'token');
    writeFileSync(join(sa, 'ca.crt'), '');
    const home = join(root, 'home');
    // The service address is read from the lookup's env; process.env is set too, as in a pod.
    const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const saved = process.env;
    process.env = { ...saved, ...env };
    try {
      const used = loadKubeConfig({ env, home, serviceAccountDir: sa });
      assert.equal(used.source, 'in-cluster service account');
      assert.equal(used.server, 'https://10.0.0.1:443');
    } finally {
      process.env = saved;
    }
    assert.throws(
      () => loadKubeConfig({ env: {}, home, serviceAccountDir: sa }),
      (err: unknown) => err instanceof ClusterError && /KUBERNETES_SERVICE_HOST/.test(err.message),
    );
  });
});

describe('no credentials at all', () => {
  it('exits 3 at once with one line instead of trying localhost:8080 forever', {
    skip: existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token') && 'runs in a pod',
  }, async () => {
    const out = await hahaha(['run'], {});
    assertKnownFailure(out, 3, [
      /^hahaha: no Kubernetes credentials: KUBECONFIG is not set, .*\.kube\/config does not exist, and .*serviceaccount\/token does not exist/,
      /\(set KUBECONFIG to a kubeconfig file, or run hahaha in a pod with its ServiceAccount\)$/,
    ]);
    assert.doesNotMatch(out.stderr + out.stdout, /localhost:8080/);
    assert.ok(out.ms < 10_000, `took ${out.ms} ms`);
  });
});

describe('metrics listener errors', () => {
  const busy = createServer();
  let port = 0;
  before(async () => {
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    port = (busy.address() as { port: number }).port;
  });
  after(() => busy.close());
  const base = { KUBECONFIG: UNREACHABLE, LEADER_ELECT: 'false', LOG_LEVEL: 'fatal' };

  it('METRICS_PORT already in use: exit 2, one line naming the address and METRICS_PORT', async () => {
    const out = await hahaha(['run'], { ...base, METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port) });
    assertKnownFailure(out, 2, [
      new RegExp(`^hahaha: metrics server: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use \\(set METRICS_PORT to a free port`),
    ]);
  });

  it('METRICS_HOST not an address of this machine: exit 2, one line naming METRICS_HOST', async () => {
    const out = await hahaha(['run'], { ...base, METRICS_HOST: '192.0.2.1', METRICS_PORT: '0' });
    assertKnownFailure(out, 2, [/^hahaha: metrics server: cannot listen on 192\.0\.2\.1:0: no network interface has this address \(set METRICS_HOST/]);
  });
});

describe('usage, Node version and bugs', () => {
  it('an unknown command: exit 2, one line', async () => {
    assertKnownFailure(await hahaha(['frobnicate']), 2, [/^hahaha: unknown command frobnicate \(see hahaha --help\)$/]);
  });

  it('an unknown option: exit 2, one line', async () => {
    assertKnownFailure(await hahaha(['run', '--frobnicate']), 2, [/^hahaha: Unknown option '--frobnicate'.*\(see hahaha --help\)$/]);
  });

  it('run with an argument: exit 2, one line', async () => {
    assertKnownFailure(await hahaha(['run', 'now']), 2, [/^hahaha: run takes no arguments, got now/]);
  });

  // The machine's own node, when it is older than 24, shows what a user with the wrong Node meets.
  const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p));
  const systemMajor = systemNode === undefined ? 0 : Number(execFileSync(systemNode, ['-p', 'process.versions.node.split(".")[0]']).toString());
  it('bin/hahaha.js on Node < 24: exit 2, one line naming the version and how to get Node 24', {
    skip: !(systemMajor > 0 && systemMajor < 24) && 'no Node older than 24 on this machine',
  }, async () => {
    const out = await new Promise<Outcome>((resolve) => {
      const child = spawn(systemNode ?? 'node', [BIN, 'explain', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => resolve({ code, stdout: '', stderr, ms: 0 }));
    });
    assertKnownFailure(out, 2, [
      new RegExp(`^hahaha: cannot start: this is Node ${systemMajor}\\.`),
      /needs Node 24 or newer/,
      /npm ci installs it as node_modules\/\.bin\/node/,
    ]);
  });

  it('a known failure prints one line; a bug prints its stack and asks for a report, exit 1', () => {
    const write = process.stderr.write;
    let stderr = '';
    process.stderr.write = ((chunk: string) => {
      stderr += chunk;
      return true;
    }) as typeof process.stderr.write;
    let known: number;
    let bug: number;
    try {
      known = reportFailure(new ClusterError('cluster: unreachable (check the network)'));
      bug = reportFailure(new TypeError('x is undefined'));
    } finally {
      process.stderr.write = write;
    }
    assert.equal(known, 3);
    assert.equal(bug, 1);
    const [first, ...rest] = stderr.split('\n');
    assert.equal(first, 'hahaha: cluster: unreachable (check the network)');
    assert.match(rest.join('\n'), /hahaha: unexpected error, a bug in hahaha:\nTypeError: x is undefined\n\s+at /);
    assert.match(stderr, /please report it/);
  });
});
