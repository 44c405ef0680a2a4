/**
 * `hahaha doctor` against the local cluster with the admin kubeconfig: a Job whose main container
 * has finished while an unknown sidecar keeps running is listed as stuck (table and JSON, exit 1);
 * a selector that matches no pod gives exit 0, which also proves the chart's ServiceAccount
 * hahaha-system/hahaha has exactly the RBAC hahaha needs. A user who may not list pods gets one
 * line and exit 3.
 *
 * The pods carry `nais.io/naisjob: "false"` and a label of this run only, so the suite's hahaha
 * (and its webhook) leave them alone and only this test's doctor selects them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DoctorReport } from '../../src/doctor/report.ts';
import { apply, containerState, eventually, getPod, jobPod, KUBECONFIG, main, naisjob, namespace, ROOT, sidecar, tokenKubeconfig } from './harness.ts';

const ID = `${process.pid}`;
const SELECTOR = `e2e-doctor=${ID}`;

/** Runs `hahaha doctor` as a user would: the CLI's one line and exit code for a known failure. */
function doctor(args: string[], kubeconfig = KUBECONFIG): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}bin/hahaha.js`, 'doctor', ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), KUBECONFIG: kubeconfig },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const skip = existsSync(KUBECONFIG) ? false : `no ${KUBECONFIG}: start the local cluster with npm run cluster:up`;

describe('hahaha doctor on the local cluster', { skip }, () => {
  let ns = '';
  let cleanup = async () => {};
  let podName = '';
  const tmp = mkdtempSync(join(tmpdir(), 'hahaha-doctor-e2e-'));

  before(async () => {
    ({ ns, cleanup } = await namespace('doctor'));
    await apply(
      naisjob(ns, 'stuck', {
        containers: [main('stuck', 'sleep 1'), sidecar('my-agent', 'deaf')],
        labels: { 'nais.io/naisjob': 'false', 'e2e-doctor': ID },
      }),
    );
    podName = (await jobPod(ns, 'stuck')).metadata.name;
    await eventually(`main container of ${ns}/${podName} to finish`, async () => {
      const pod = await getPod(ns, podName);
      return containerState(pod, 'stuck')?.terminated !== undefined && containerState(pod, 'my-agent')?.running !== undefined;
    });
  });

  after(async () => {
    await cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('lists the stuck pod in its table, with the sidecar and why, and exits 1', async () => {
    const out = await doctor(['-l', SELECTOR, '--stuck-after', '0']);
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stdout, new RegExp(`${ns}/${podName}\\s+\\S+\\s+my-agent\\s+hangs\\s+no catalog entry matches my-agent`));
    assert.match(out.stdout, /1\s+example\.invalid\/my-agent:e2e\s+my-agent/);
    assert.match(out.stdout, /Needs action: 1 stuck pod, 1 sidecar image without a catalog entry\./);
    assert.equal(out.stderr, '', 'no progress lines for one page');
  });

  it('gives the same as one JSON object with -o json', async () => {
    const out = await doctor(['-l', SELECTOR, '-n', ns, '--stuck-after', '0', '-o', 'json']);
    assert.equal(out.code, 1, out.stderr);
    const r = JSON.parse(out.stdout) as DoctorReport;
    assert.equal(r.scope.namespace, ns);
    assert.equal(r.stuck.length, 1);
    assert.equal(r.stuck[0]?.pod, podName);
    assert.ok((r.stuck[0]?.stuckSeconds ?? -1) >= 0);
    assert.deepEqual(
      r.stuck[0]?.sidecars.map((s) => [s.container, s.outcome]),
      [['my-agent', 'hangs']],
    );
    assert.deepEqual(r.unsupported, [{ image: 'example.invalid/my-agent:e2e', containers: ['my-agent'], pods: 1 }]);
    assert.equal(r.cluster.nativeSidecars, true);
    assert.equal(r.cluster.webhook, 'present');
    assert.equal(r.needsAction, true);
  });

  it('does not count it as stuck within --stuck-after', async () => {
    const out = await doctor(['-l', SELECTOR, '--stuck-after', '3600', '-o', 'json']);
    const r = JSON.parse(out.stdout) as DoctorReport;
    assert.equal(r.stuck.length, 0);
    assert.equal(r.justFinished, 1);
    assert.equal(out.code, 1, 'the unknown sidecar still needs action');
  });

  it("exits 0 for a selector matching no pod: nothing stuck, and hahaha's ServiceAccount has exactly its RBAC", async () => {
    const out = await doctor(['-l', `${SELECTOR}-none`, '-o', 'json']);
    const r = JSON.parse(out.stdout) as DoctorReport;
    assert.equal(r.rbac.checked, true);
    assert.deepEqual(r.rbac.missing, []);
    assert.deepEqual(r.rbac.moreThanNeeded, []);
    assert.equal(out.code, 0, out.stdout);
    const table = await doctor(['-l', `${SELECTOR}-none`]);
    assert.equal(table.code, 0);
    assert.match(table.stdout, /exactly what it needs/);
    assert.match(table.stdout, /^Nothing needs action/m);
  });

  it("reports missing RBAC for a ServiceAccount without hahaha's roles", async () => {
    const out = await doctor(['-l', `${SELECTOR}-none`, '--hahaha-namespace', ns, '--hahaha-service-account', 'default', '-o', 'json']);
    assert.equal(out.code, 1);
    const r = JSON.parse(out.stdout) as DoctorReport;
    assert.ok(r.rbac.missing.some((m) => m.access === 'list pods cluster-wide'));
    assert.ok(r.rbac.missing.some((m) => m.access === `create leases.coordination.k8s.io in ${ns}`));
  });

  it('exits 3 with one line when the user may not list pods', async () => {
    const kubeconfig = await tokenKubeconfig(ns, 'default', tmp);
    const out = await doctor(['-l', SELECTOR], kubeconfig);
    assert.equal(out.code, 3, out.stderr);
    assert.equal(out.stdout, '');
    assert.match(
      out.stderr,
      /^hahaha: doctor: list pods in all namespaces: not allowed: .*forbidden.*\(use credentials that may do this, or narrow it with --namespace\)\n$/,
    );
  });
});
