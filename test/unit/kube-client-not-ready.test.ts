/**
 * How KubeClient tells a 403 of an API server that is not ready to authorize (its RBAC caches
 * still loading after a start) from RBAC's real answer, against a local HTTP server that answers
 * as a kube-apiserver does: the roles-not-found reason needs no question; a plain 403 is believed
 * only when `/readyz` answers 200; one `/readyz` answer serves the 403s that arrive together.
 * `hahaha doctor` says so instead of "not allowed", and a SelfSubjectAccessReview's denial is no
 * answer then. The real API server's side is in
 * test/e2e/serial/apiserver-restart.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ApiAccessReviewer } from '../../src/kube/access-review.ts';
import { DoctorApi } from '../../src/kube/doctor-api.ts';
import { ApiError, type KubeClient } from '../../src/kube/kube-client.ts';
import { clientOf } from './local-api-server.ts';

const FORBIDDEN = {
  kind: 'Status',
  status: 'Failure',
  reason: 'Forbidden',
  code: 403,
  message: 'events is forbidden: User "system:serviceaccount:hahaha-system:hahaha" cannot create resource "events" in API group "" in the namespace "team"',
};
const ROLES_LOADING = {
  ...FORBIDDEN,
  message: `${FORBIDDEN.message}: RBAC: [clusterrole.rbac.authorization.k8s.io "system:basic-user" not found, clusterrole.rbac.authorization.k8s.io "system:discovery" not found]`,
};

describe('KubeClient: a 403 from an API server not ready to authorize', () => {
  let readyz = 200;
  let readyzAsked = 0;
  let body: object = FORBIDDEN;
  const server = createServer((req, res) => {
    if (req.url === '/readyz') {
      readyzAsked += 1;
      res.statusCode = readyz;
      res.end(readyz === 200 ? 'ok' : '[-]informer-sync failed: reason withheld\nreadyz check failed');
      return;
    }
    if (req.url === '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews') {
      // What RBAC answers while it lacks the bindings: not allowed, no reason.
      res.statusCode = 201;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ kind: 'SelfSubjectAccessReview', status: { allowed: false } }));
      return;
    }
    res.statusCode = 403;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  });
  let client: KubeClient;
  let close: () => Promise<void>;

  before(async () => {
    ({ client, close } = await clientOf(server));
  });
  after(() => close());
  beforeEach(async () => {
    readyzAsked = 0;
    body = FORBIDDEN;
    // Past the time one /readyz answer is reused.
    await new Promise((resolve) => setTimeout(resolve, 1100));
  });

  const refusal = async (): Promise<ApiError> => {
    const err = await client.request('POST', '/api/v1/namespaces/team/events', { body: {} }).then(
      () => assert.fail('the request succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ApiError);
    return err;
  };

  it('believes a 403 when /readyz answers 200', async () => {
    readyz = 200;
    const err = await refusal();
    assert.equal(err.status, 403);
    assert.equal(err.notReady, undefined);
    assert.doesNotMatch(err.message, /not ready/);
    assert.equal(readyzAsked, 1);
  });

  it('a plain 403 while /readyz fails is the API server not being ready, and says why', async () => {
    readyz = 500;
    const err = await refusal();
    assert.equal(err.notReady, '/readyz answered HTTP 500');
    assert.match(err.message, /^HTTP 403: events is forbidden: .* \(the API server is not ready yet: \/readyz answered HTTP 500\)$/);
  });

  it('a 403 that lists the roles every cluster has as not found needs no question to /readyz', async () => {
    readyz = 200;
    body = ROLES_LOADING;
    const err = await refusal();
    assert.equal(err.notReady, 'RBAC has not loaded the ClusterRoles every cluster has');
    assert.equal(readyzAsked, 0);
  });

  it('the 403s of a burst share one /readyz answer', async () => {
    readyz = 500;
    const errs = await Promise.all(Array.from({ length: 20 }, () => refusal()));
    assert.ok(errs.every((e) => e.notReady === '/readyz answered HTTP 500'));
    assert.equal(readyzAsked, 1);
  });

  it('doctor says the API server is not ready instead of "not allowed", and reports a ready one\'s 403 as missing access', async () => {
    const doctor = new DoctorApi(client);
    readyz = 500;
    await assert.rejects(
      doctor.version(),
      /doctor: GET \/version: the API server at .* is not ready to authorize yet \(\/readyz answered HTTP 500\): .*run doctor again/,
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    readyz = 200;
    await assert.rejects(doctor.version(), /doctor: GET \/version: not allowed: /);
    assert.deepEqual(await doctor.webhookConfigurations('x'), { forbidden: FORBIDDEN.message });
  });

  it("a SelfSubjectAccessReview's denial from an API server not ready to authorize is no answer", async () => {
    const reviewer = new ApiAccessReviewer(client);
    const need = { verb: 'create', group: '', resource: 'pods', subresource: 'exec', why: 'stop sidecars' };
    readyz = 500;
    await assert.rejects(reviewer.review(need), /the API server is not ready to authorize yet \(\/readyz answered HTTP 500\)/);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    readyz = 200;
    assert.deepEqual(await reviewer.review(need), { allowed: false });
  });
});
