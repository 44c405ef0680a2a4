import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { parseLabelSelector } from '../../src/domain/label-selector.ts';
import { reviewPodCreate } from '../../src/webhook/admission-review.ts';

const catalog = loadCatalog(DEFAULT_CATALOG_PATH);

function review(object: unknown, overrides: Record<string, unknown> = {}) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'req-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team',
      operation: 'CREATE',
      object,
      ...overrides,
    },
  };
}

const jobPod = {
  metadata: { generateName: 'job-', labels: { app: 'job', 'nais.io/naisjob': 'true' } },
  spec: {
    restartPolicy: 'Never',
    containers: [
      { name: 'job', image: 'a' },
      { name: 'vks-sidecar', image: 'b' },
    ],
  },
};

describe('reviewPodCreate', () => {
  it('answers a pod CREATE with the request uid, allowed, and a base64 JSONPatch', () => {
    const r = reviewPodCreate(review(jobPod), catalog, true);
    assert.ok(r.ok);
    const response = (r.response as { response: { uid: string; allowed: boolean; patchType: string; patch: string } }).response;
    assert.equal(response.uid, 'req-1');
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, 'JSONPatch');
    const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
    assert.deepEqual(
      ops.map((o: { op: string }) => o.op),
      ['test', 'remove', 'add', 'add'],
    );
    assert.equal(r.request.pod, 'job-*');
  });

  it('allows without a patch when nothing is converted (API server too old)', () => {
    const r = reviewPodCreate(review(jobPod), catalog, false);
    assert.ok(r.ok);
    assert.equal(r.plan.convert, false);
    assert.deepEqual(r.response, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'req-1', allowed: true } });
  });

  it('allows anything that is not a pod CREATE unchanged, and says why', () => {
    for (const o of [{ operation: 'UPDATE' }, { subResource: 'status' }, { kind: { kind: 'Secret' }, resource: { resource: 'secrets' } }]) {
      const r = reviewPodCreate(review(jobPod, o), catalog, true);
      assert.equal(r.ok, false);
      if (!r.ok) assert.deepEqual(r.response, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'req-1', allowed: true } });
    }
  });

  it('cannot answer a review without a request uid', () => {
    for (const bad of [null, {}, { request: {} }, { request: { uid: '' } }]) {
      const r = reviewPodCreate(bad, catalog, true);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.response, undefined);
    }
  });

  it('converts only pods the watch selector selects, even if the webhook configuration sends others', () => {
    const selected = reviewPodCreate(review(jobPod), catalog, true, parseLabelSelector('nais.io/naisjob=true'));
    assert.ok(selected.ok && selected.plan.convert);
    const other = reviewPodCreate(review(jobPod), catalog, true, parseLabelSelector('team=x'));
    assert.ok(other.ok && !other.plan.convert && other.plan.code === 'not-selected');
  });

  it('never rejects a malformed pod', () => {
    const r = reviewPodCreate(review({ metadata: {}, spec: { containers: 7 } }), catalog, true);
    assert.ok(r.ok);
    assert.equal(r.plan.convert, false);
    assert.equal((r.response as { response: { allowed: boolean } }).response.allowed, true);
  });
});
