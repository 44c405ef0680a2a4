/**
 * hahaha's own kubeconfig handling against the local API server: each way of authenticating a
 * kubeconfig can express (client certificate files relative to the kubeconfig, a token file, a
 * credential plugin handing out a token or a client certificate, two KUBECONFIG files merged)
 * reaches the API server, proven by `hahaha doctor` reading pods, webhook configurations and
 * SubjectAccessReviews with it. A failing credential plugin is one line and exit 3.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DoctorReport } from '../../src/doctor/report.ts';
import { hahaha } from '../unit/cli-run.ts';
import { KUBECONFIG, kubectl, namespace } from './harness.ts';

const SELECTOR = `e2e-credentials=${process.pid}-none`;

/** `hahaha doctor` as a user runs it, with only PATH, an empty HOME and this KUBECONFIG. */
function doctor(kubeconfig: string) {
  return hahaha(['doctor', '-l', SELECTOR, '-o', 'json'], { KUBECONFIG: kubeconfig });
}

async function assertReaches(kubeconfig: string): Promise<void> {
  const out = await doctor(kubeconfig);
  assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
  const report = JSON.parse(out.stdout) as DoctorReport;
  assert.equal(report.rbac.checked, true);
  assert.equal(report.cluster.webhook, 'present');
}

const skip = existsSync(KUBECONFIG) ? false : `no ${KUBECONFIG}: start the local cluster with npm run cluster:up`;

describe('kubeconfig credentials against the local API server', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hahaha-credentials-e2e-'));
  let cluster: Record<string, unknown> = {};
  let admin: { 'client-certificate-data': string; 'client-key-data': string } = { 'client-certificate-data': '', 'client-key-data': '' };
  let ns = '';
  let cleanup = async () => {};
  let token = '';

  /** A kubeconfig for the local cluster with `user` as its user, written to `name`. */
  const kubeconfig = (name: string, user: Record<string, unknown>, clusterFields: Record<string, unknown> = cluster): string => {
    const file = join(dir, name);
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'local', cluster: clusterFields }],
        users: [{ name: 'u', user }],
        contexts: [{ name: 'c', context: { cluster: 'local', user: 'u' } }],
        'current-context': 'c',
      }),
      { mode: 0o600 },
    );
    return file;
  };
  /** A credential plugin script in `dir` that prints `status` as an ExecCredential. */
  const plugin = (name: string, status: Record<string, unknown>): string => {
    const file = join(dir, name);
    const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status });
    // The plugin checks that it was given the ExecCredential request, as client-go gives it.
    writeFileSync(
      file,
      `#!/bin/sh\ncase "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) echo "no KUBERNETES_EXEC_INFO" >&2; exit 1;; esac\ncat <<'EOF'\n${credential}\nEOF\n`,
    );
    chmodSync(file, 0o755);
    return file;
  };

  before(async () => {
    const raw = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json']));
    cluster = raw.clusters[0].cluster;
    admin = raw.users[0].user;
    ({ ns, cleanup } = await namespace('credentials'));
    // A ServiceAccount that may do what doctor does, for the token cases.
    await kubectl(['create', 'serviceaccount', 'reader', '-n', ns]);
    await kubectl(['create', 'clusterrolebinding', `e2e-credentials-${ns}`, '--clusterrole=cluster-admin', `--serviceaccount=${ns}:reader`]);
    token = (await kubectl(['create', 'token', 'reader', '-n', ns, '--duration=1h'])).trim();
  });

  after(async () => {
    await kubectl(['delete', 'clusterrolebinding', `e2e-credentials-${ns}`, '--ignore-not-found']);
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('client certificate and CA files named relative to the kubeconfig', async () => {
    mkdirSync(join(dir, 'certs'), { recursive: true });
    const pem = (field: string) => Buffer.from(String(field), 'base64');
    writeFileSync(join(dir, 'certs', 'ca.crt'), pem(String(cluster['certificate-authority-data'])));
    writeFileSync(join(dir, 'certs', 'admin.crt'), pem(admin['client-certificate-data']));
    writeFileSync(join(dir, 'certs', 'admin.key'), pem(admin['client-key-data']), { mode: 0o600 });
    const file = kubeconfig(
      'files.kubeconfig',
      { 'client-certificate': 'certs/admin.crt', 'client-key': 'certs/admin.key' },
      { server: cluster.server, 'certificate-authority': 'certs/ca.crt' },
    );
    await assertReaches(file);
  });

  it('a token file, named relative to the kubeconfig', async () => {
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    await assertReaches(kubeconfig('token-file.kubeconfig', { tokenFile: 'token' }));
  });

  it('a credential plugin that hands out a token (client.authentication.k8s.io/v1)', async () => {
    plugin('token-plugin.sh', { token, expirationTimestamp: new Date(Date.now() + 3_600_000).toISOString() });
    await assertReaches(
      kubeconfig('exec-token.kubeconfig', {
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './token-plugin.sh', interactiveMode: 'Never', provideClusterInfo: true },
      }),
    );
  });

  it('a credential plugin that hands out a client certificate', async () => {
    const pem = (field: string) => Buffer.from(field, 'base64').toString('utf8');
    plugin('cert-plugin.sh', { clientCertificateData: pem(admin['client-certificate-data']), clientKeyData: pem(admin['client-key-data']) });
    await assertReaches(
      kubeconfig('exec-cert.kubeconfig', { exec: { apiVersion: 'client.authentication.k8s.io/v1beta1', command: join(dir, 'cert-plugin.sh') } }),
    );
  });

  it('two KUBECONFIG files merged: contexts from the first, cluster and user from the second', async () => {
    const first = join(dir, 'first.kubeconfig');
    writeFileSync(
      first,
      JSON.stringify({ apiVersion: 'v1', kind: 'Config', contexts: [{ name: 'm', context: { cluster: 'local', user: 'u' } }], 'current-context': 'm' }),
    );
    const second = kubeconfig('second.kubeconfig', { token });
    await assertReaches(`${first}:${second}`);
  });

  it('a failing credential plugin: one line naming the plugin, exit 3', async () => {
    const file = join(dir, 'failing-plugin.sh');
    writeFileSync(file, '#!/bin/sh\necho "please log in first" >&2\nexit 1\n');
    chmodSync(file, 0o755);
    const out = await doctor(kubeconfig('exec-failing.kubeconfig', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: file } }));
    assert.equal(out.code, 3, out.stderr);
    assert.match(out.stderr, /^hahaha: doctor: .*credential plugin .*failing-plugin\.sh failed: please log in first/m);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
  });
});
