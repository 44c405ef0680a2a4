/**
 * Start-up checks against the real API server: a ServiceAccount that lacks one permission of the
 * chart's ClusterRole makes hahaha say exactly which (log and /readyz) within 10 s, and an
 * invalid WATCH_SELECTOR stops it at once with the reason.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { get, startHahaha } from '../unit/chart-assets.ts';
import { apply, eventually, kubectl, namespace, ROOT, rbacInEffect, tokenKubeconfig } from './harness.ts';

describe('start-up checks', { concurrency: true }, () => {
  it('a ServiceAccount missing `create pods/exec` is reported exactly, in the log and /readyz, within 10 s', async (t) => {
    const { ns, cleanup } = await namespace('e2e-startup');
    const id = randomUUID().slice(0, 8);
    const role = `e2e-startup-${id}`;
    const dir = mkdtempSync(join(tmpdir(), 'hahaha-e2e-startup-'));
    t.after(async () => {
      await kubectl(['delete', 'clusterrole,clusterrolebinding', role, '--ignore-not-found']);
      rmSync(dir, { recursive: true, force: true });
      await cleanup();
    });
    // The chart's ClusterRole without `create` on pods/exec.
    await apply([
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'trimmed', namespace: ns } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: role },
        rules: [
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['pods/exec'], verbs: ['get'] },
          { apiGroups: [''], resources: ['pods/portforward'], verbs: ['get', 'create'] },
          { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: role },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: 'trimmed', namespace: ns }],
      },
    ]);
    const kubeconfig = await tokenKubeconfig(ns, 'trimmed', dir);
    // hahaha's first check must see the binding, or it reports more than the one missing permission.
    await rbacInEffect(kubeconfig, 'create', 'pods/portforward');
    const hahaha = await startHahaha({ KUBECONFIG: kubeconfig, LEADER_ELECT: 'false', WATCH_SELECTOR: `e2e-startup=${id}` });
    t.after(() => hahaha.stop());
    // eventually() fails after 10 s: the cause is reported within 10 s of hahaha serving.
    let last = '(no answer yet)';
    const body = await eventually(
      '/readyz to name the missing permission',
      async () => {
        const r = await get(hahaha.port, '/readyz');
        last = `${r.status} ${r.text}`;
        return r.status === 503 && r.text.includes('create pods/exec') ? r.text : undefined;
      },
      10_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last /readyz: ${last}; logs:\n${hahaha.logs.join('\n')}`);
    });
    // Other reasons may be listed too while they last (the first pod list on a busy API server).
    const missing = body
      .trim()
      .split('\n')
      .filter((l: string) => l.startsWith('missing permission'));
    assert.deepEqual(missing, ['missing permission: create pods/exec cluster-wide (to stop sidecars through pods/exec)'], body);
    const logged = hahaha.logs.find((l) => l.includes('lack 1 permission'));
    assert.ok(logged, 'the error is logged');
    assert.deepEqual(JSON.parse(logged).missing, ['create pods/exec cluster-wide (to stop sidecars through pods/exec)']);
  });

  it('an invalid WATCH_SELECTOR stops start-up at once with the reason', async () => {
    const child = spawn(process.execPath, [`${ROOT}bin/hahaha.js`, 'run'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: '/tmp',
        KUBECONFIG: `${ROOT}.cluster/kubeconfig`,
        WATCH_SELECTOR: 'nais.io/naisjob in (true',
        METRICS_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const started = Date.now();
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.ok(Date.now() - started < 10_000);
    assert.equal(code, 2);
    assert.match(stderr, /WATCH_SELECTOR must be a label selector: unbalanced "\(", got "nais.io\/naisjob in \(true"/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });
});
