import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { AccessCheck } from '../../src/controller/access-check.ts';
import { type AccessNeed, describeNeed, requiredAccess } from '../../src/domain/required-access.ts';

const scope = { namespaces: [], leaderElect: true, leaseNamespace: 'hahaha-system', leaseName: 'hahaha' };

describe('requiredAccess', () => {
  it("is the chart's ClusterRole and Role, cluster-wide", () => {
    assert.deepEqual(requiredAccess(scope).map(describeNeed), [
      'get pods cluster-wide',
      'list pods cluster-wide',
      'watch pods cluster-wide',
      'get pods/exec cluster-wide',
      'create pods/exec cluster-wide',
      'get pods/portforward cluster-wide',
      'create pods/portforward cluster-wide',
      'create events cluster-wide',
      'patch events cluster-wide',
      'create leases.coordination.k8s.io in hahaha-system',
      'get leases.coordination.k8s.io hahaha in hahaha-system',
      'update leases.coordination.k8s.io hahaha in hahaha-system',
    ]);
  });

  it('per watched namespace, and no lease without leader election', () => {
    const needs = requiredAccess({ ...scope, namespaces: ['a', 'b'], leaderElect: false }).map(describeNeed);
    assert.equal(needs.length, 18);
    assert.ok(needs.includes('create pods/exec in b'));
    assert.ok(!needs.some((n) => n.includes('leases')));
  });
});

describe('AccessCheck', () => {
  it('says exactly what is missing, and why', async () => {
    const denied = (n: AccessNeed) => n.verb === 'create' && n.subresource === 'exec';
    const check = new AccessCheck({ review: async (n) => ({ allowed: !denied(n) }) }, requiredAccess(scope), pino({ level: 'silent' }));
    assert.equal(check.missing, undefined);
    await check.start();
    check.stop();
    assert.deepEqual(check.missing, ['create pods/exec cluster-wide (to stop sidecars through pods/exec)']);
  });

  it('an API that cannot answer leaves the result unknown rather than blocking', async () => {
    const check = new AccessCheck({ review: async () => Promise.reject(new Error('connect ECONNREFUSED')) }, requiredAccess(scope), pino({ level: 'silent' }));
    await check.start();
    check.stop();
    assert.equal(check.missing, undefined);
  });
});

describe('AccessCheck rechecks', () => {
  it('soon after a first check that found something missing (5, 10, 20, 40 s, then every minute), every ten minutes once nothing is', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const at: number[] = [];
    let now = 0;
    const grantAfter = 5;
    const check = new AccessCheck(
      {
        review: async (n) => {
          if (n.verb === 'get' && n.resource === 'pods' && n.subresource === undefined) at.push(now);
          return { allowed: !(n.verb === 'create' && n.subresource === 'exec') || at.length > grantAfter };
        },
      },
      requiredAccess(scope),
      pino({ level: 'silent' }),
    );
    const advance = async (ms: number) => {
      now += ms;
      t.mock.timers.tick(ms);
      for (let i = 0; i < 20; i++) await Promise.resolve();
    };
    await check.start();
    for (let s = 0; s < 10 * 60 + 180; s++) await advance(1000);
    check.stop();
    // Missing at 0, 5, 15, 35, 75 s; granted at the 6th check (135 s), then ten minutes later.
    assert.deepEqual(at, [0, 5_000, 15_000, 35_000, 75_000, 135_000, 735_000]);
    assert.deepEqual(check.missing, []);
  });
});
