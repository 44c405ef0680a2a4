/**
 * `hahaha doctor`'s report: built purely from raw pod fixtures, the server version, the webhook's
 * presence and SubjectAccessReview answers; the table formatter; the gathering through a fake
 * cluster (pages, progress, answers without permission).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { formatDuration, formatReport, table } from '../../src/doctor/format.ts';
import { type DoctorCluster, gatherReport } from '../../src/doctor/gather.ts';
import {
  type AccessFacts,
  buildReport,
  type ClusterFacts,
  hahahaNeeds,
  NOT_NEEDED,
  serviceAccountGroups,
  serviceAccountUser,
} from '../../src/doctor/report.ts';
import { describeNeed } from '../../src/domain/required-access.ts';
import { annotated, container, deleting, linkerdShutdown, phase, rawPod, running, T0, terminated, withApp, withoutLabels } from './pod-fixtures.ts';

const catalog = loadCatalog(DEFAULT_CATALOG_PATH);
const HAHAHA = { namespace: 'hahaha-system', serviceAccount: 'hahaha', leaseName: 'hahaha' };
const SCOPE = { selector: 'nais.io/naisjob=true' };
const V1_37 = { major: '1', minor: '37', gitVersion: 'v1.37.2' };
const PRESENT: ClusterFacts['webhook'] = { state: 'present', configurations: ['hahaha'] };

/** hahaha has exactly what it needs. */
const EXACT: AccessFacts = {
  checked: true,
  needed: hahahaNeeds(HAHAHA).map((need) => ({ need, allowed: true })),
  notNeeded: NOT_NEEDED.map((need) => ({ need, allowed: false })),
};

const inNamespace = (ns: string) => (p: Record<string, any>) => {
  p.metadata.namespace = ns;
};

function report(pods: unknown[], o: { access?: AccessFacts; version?: typeof V1_37; webhook?: ClusterFacts['webhook']; stuckAfterSeconds?: number } = {}) {
  return buildReport({ pods, version: o.version ?? V1_37, webhook: o.webhook ?? PRESENT, access: o.access ?? EXACT, scope: SCOPE, hahaha: HAHAHA }, catalog, {
    now: T0 + 300_000,
    stuckAfterSeconds: o.stuckAfterSeconds ?? 60,
  });
}

/** A job pod whose main container `job` finished at T0 (5 minutes before the report). */
const finishedJob = (name: string, ...mods: ((p: Record<string, any>) => void)[]) =>
  rawPod(name, withApp('job'), container('job'), terminated('job', 0), ...mods);
/** A job pod whose main container `job` still runs. */
const runningJob = (name: string, ...mods: ((p: Record<string, any>) => void)[]) => rawPod(name, withApp('job'), container('job'), running('job'), ...mods);

describe('doctor report: stuck pods', () => {
  it('lists a pod whose main container finished with an unknown sidecar still running: for how long, which sidecar, why', () => {
    const r = report([finishedJob('stuck', container('my-agent', 'example/agent:1'), running('my-agent'))]);
    assert.equal(r.stuck.length, 1);
    const [s] = r.stuck;
    assert.equal(`${s?.namespace}/${s?.pod}`, 'team/stuck');
    assert.equal(s?.stuckSeconds, 300);
    assert.equal(s?.mainFinishedAt, new Date(T0).toISOString());
    assert.equal(s?.sidecars[0]?.container, 'my-agent');
    assert.equal(s?.sidecars[0]?.outcome, 'hangs');
    assert.match(s?.sidecars[0]?.why ?? '', /no catalog entry matches my-agent/);
    assert.equal(r.needsAction, true);
    assert.deepEqual(r.actions, ['1 stuck pod', '1 sidecar image without a catalog entry']);
  });

  it('says a sidecar hahaha can stop but has not points at hahaha itself', () => {
    const r = report([finishedJob('stuck', linkerdShutdown, container('linkerd-proxy'), running('linkerd-proxy'))]);
    const sidecar = r.stuck[0]?.sidecars[0];
    assert.equal(sidecar?.outcome, 'complete');
    assert.match(sidecar?.why ?? '', /hahaha can stop it \(http POST :4191\/shutdown.*\) but has not: check that hahaha runs/);
  });

  it('gives a linkerd-proxy without its shutdown annotation the fix', () => {
    const r = report([finishedJob('stuck', container('linkerd-proxy'), running('linkerd-proxy'))]);
    const sidecar = r.stuck[0]?.sidecars[0];
    assert.equal(sidecar?.outcome, 'hangs');
    assert.match(sidecar?.fix ?? '', /config.linkerd.io\/proxy-admin-shutdown: enabled/);
  });

  it('does not count a pod whose main container finished less than --stuck-after ago', () => {
    const pod = finishedJob('recent', container('my-agent'), running('my-agent'));
    assert.equal(report([pod], { stuckAfterSeconds: 301 }).stuck.length, 0);
    assert.equal(report([pod], { stuckAfterSeconds: 301 }).justFinished, 1);
    assert.equal(report([pod], { stuckAfterSeconds: 300 }).stuck.length, 1);
  });

  it('lists the longest stuck first', () => {
    const r = report([
      finishedJob('newer', container('x'), running('x')),
      rawPod('older', withApp('job'), container('job'), terminated('job', 0, T0 - 3_600_000), container('x'), running('x')),
    ]);
    assert.deepEqual(
      r.stuck.map((s) => s.pod),
      ['older', 'newer'],
    );
  });

  it('leaves out pods that finished or are being deleted', () => {
    const r = report([finishedJob('done', container('x'), running('x'), phase('Succeeded')), finishedJob('going', container('x'), running('x'), deleting)]);
    assert.equal(r.scope.pods, 2);
    assert.equal(r.scope.skipped, 2);
    assert.equal(r.stuck.length, 0);
    assert.equal(r.unsupported.length, 0);
    assert.equal(r.needsAction, false);
  });
});

describe('doctor report: predicted outcomes of running pods', () => {
  it('lists a sidecar that will hang and one that will fail the Job, with why and fix', () => {
    const r = report([
      runningJob(
        'busy',
        container('linkerd-proxy'),
        running('linkerd-proxy'),
        container('secure-logs-configmap-reload'),
        running('secure-logs-configmap-reload'),
      ),
    ]);
    const rows = r.predicted.map((p) => [p.pod, p.sidecar, p.outcome, p.exitCode]);
    assert.deepEqual(rows, [
      ['busy', 'linkerd-proxy', 'hangs', undefined],
      ['busy', 'secure-logs-configmap-reload', 'fails-pod', 2],
    ]);
    assert.ok(r.predicted.every((p) => p.fix !== undefined && p.why !== ''));
    assert.equal(r.needsAction, true);
    assert.equal(r.unsupported.length, 0);
  });

  it('says nothing about a pod whose sidecars will complete', () => {
    const r = report([runningJob('fine', linkerdShutdown, container('linkerd-proxy'), running('linkerd-proxy'))]);
    assert.deepEqual(r.predicted, []);
    assert.equal(r.needsAction, false);
  });

  it('counts a pod without a findable main container apart, as one hahaha will never act on', () => {
    const r = report([rawPod('anon', withoutLabels, container('job'), running('job'), container('x'), running('x'))]);
    assert.deepEqual(r.ignored, { 'no-main-container': 1 });
    assert.equal(r.needsAction, false);
  });
});

describe('doctor report: unsupported sidecars', () => {
  it('groups them by image with the number of pods', () => {
    const agent = (name: string) => container(name, 'example/agent:7');
    const r = report([
      runningJob('a', agent('my-agent'), running('my-agent')),
      runningJob('b', agent('my-agent'), running('my-agent'), agent('other-agent'), running('other-agent')),
      runningJob('c', container('solo', 'example/solo:1'), running('solo')),
    ]);
    assert.deepEqual(r.unsupported, [
      { image: 'example/agent:7', containers: ['my-agent', 'other-agent'], pods: 2 },
      { image: 'example/solo:1', containers: ['solo'], pods: 1 },
    ]);
  });
});

describe('doctor report: where native sidecars would help', () => {
  const convertible = (name: string, ns: string, ...mods: ((p: Record<string, any>) => void)[]) =>
    runningJob(name, inNamespace(ns), container('vks-sidecar'), running('vks-sidecar'), ...mods);

  it('counts running pods the webhook would convert, by namespace, and lists pods that opted out', () => {
    const r = report([
      convertible('a1', 'team-a'),
      convertible('a2', 'team-a'),
      convertible('b1', 'team-b'),
      convertible('out', 'team-c', annotated('hahaha.nais.io/native-sidecars', 'false')),
    ]);
    assert.deepEqual(r.native.wouldHelp, [
      { namespace: 'team-a', pods: 2, sidecars: ['vks-sidecar'] },
      { namespace: 'team-b', pods: 1, sidecars: ['vks-sidecar'] },
    ]);
    assert.deepEqual(r.native.optedOut, [{ namespace: 'team-c', pod: 'out', sidecars: ['vks-sidecar'] }]);
    assert.equal(r.needsAction, false, 'advice only');
  });

  it('converts nothing on a cluster older than 1.29, and says native sidecars are not available', () => {
    const r = report([convertible('a1', 'team-a')], { version: { major: '1', minor: '28', gitVersion: 'v1.28.9' } });
    assert.deepEqual(r.native.wouldHelp, []);
    assert.equal(r.cluster.nativeSidecars, false);
  });
});

describe('doctor report: cluster and RBAC', () => {
  it('says where the webhook is, or that it is unknown without permission', () => {
    assert.match(report([]).cluster.webhookDetail, /native-sidecars.hahaha.nais.io in MutatingWebhookConfiguration hahaha/);
    const unknown = report([], { webhook: { state: 'unknown', why: 'no permission to list mutatingwebhookconfigurations' } });
    assert.equal(unknown.cluster.webhook, 'unknown');
    assert.equal(unknown.needsAction, false);
  });

  it('lists missing permissions and ones it must not have', () => {
    const access: AccessFacts = {
      checked: true,
      needed: hahahaNeeds(HAHAHA).map((need) => ({ need, allowed: !(need.verb === 'create' && need.subresource === 'exec') })),
      notNeeded: NOT_NEEDED.map((need) => ({ need, allowed: need.resource === 'secrets' })),
    };
    const r = report([], { access });
    assert.deepEqual(
      r.rbac.missing.map((m) => m.access),
      ['create pods/exec cluster-wide'],
    );
    assert.deepEqual(
      r.rbac.moreThanNeeded.map((m) => m.access),
      ['get secrets cluster-wide'],
    );
    assert.deepEqual(r.actions, ["hahaha's RBAC lacks 1 permission", "hahaha's RBAC grants 1 permission it does not need"]);
  });

  it('goes on when the user may not create SubjectAccessReviews', () => {
    const r = report([], { access: { checked: false, why: 'you may not create SubjectAccessReviews' } });
    assert.equal(r.rbac.checked, false);
    assert.equal(r.needsAction, false);
  });

  it('asks for the chart default: leader election with the lease named after the release', () => {
    const needs = hahahaNeeds(HAHAHA).map(describeNeed);
    assert.ok(needs.includes('update leases.coordination.k8s.io hahaha in hahaha-system'));
    assert.equal(serviceAccountUser(HAHAHA), 'system:serviceaccount:hahaha-system:hahaha');
    assert.deepEqual(serviceAccountGroups(HAHAHA), ['system:serviceaccounts', 'system:serviceaccounts:hahaha-system', 'system:authenticated']);
  });

  it('needs no action on a clean cluster', () => {
    const r = report([
      runningJob('fine', container('vks-sidecar', 'example/vks:1'), running('vks-sidecar'), annotated('hahaha.nais.io/native-sidecars', 'false')),
    ]);
    assert.equal(r.needsAction, false);
    assert.deepEqual(r.actions, []);
  });
});

describe('doctor table output', () => {
  it('formats durations', () => {
    for (const [s, text] of [
      [0, '0s'],
      [59, '59s'],
      [300, '5m00s'],
      [3_725, '1h02m'],
      [90_000, '1d01h'],
    ] as const) {
      assert.equal(formatDuration(s), text);
    }
  });

  it('aligns columns and leaves the last one unpadded', () => {
    assert.equal(
      table(
        ['A', 'BB'],
        [
          ['long', 'x'],
          ['s', 'y'],
        ],
      ),
      '  A     BB\n  long  x\n  s     y',
    );
  });

  it('shows each section, the stuck pod and what needs action', () => {
    const text = formatReport(report([finishedJob('stuck', container('my-agent', 'example/agent:1'), running('my-agent'))]));
    for (const heading of ['Cluster', 'Stuck pods', 'predicted to hang or fail', 'without a catalog entry', 'native sidecars would help', "hahaha's RBAC"]) {
      assert.ok(text.includes(heading), `missing section ${heading}`);
    }
    assert.match(text, /team\/stuck\s+5m00s\s+my-agent\s+hangs\s+no catalog entry/);
    assert.match(text, /1\s+example\/agent:1\s+my-agent/);
    assert.match(text, /Needs action: 1 stuck pod, 1 sidecar image without a catalog entry\./);
    assert.match(text, /exactly what it needs/);
  });

  it('says nothing needs action, and what that would mean', () => {
    assert.match(formatReport(report([])), /^Nothing needs action \(that would be a stuck pod, .*\)\.$/m);
  });
});

describe('doctor gathering through the cluster interface', () => {
  function fakeCluster(pages: unknown[][], o: { webhookForbidden?: boolean; reviewForbidden?: boolean } = {}): DoctorCluster & { reviews: number } {
    return {
      reviews: 0,
      version: async () => V1_37,
      webhookConfigurations: async () => (o.webhookForbidden ? { forbidden: 'forbidden' } : ['hahaha']),
      async *podPages() {
        yield* pages;
      },
      async reviewAccess(_subject, need) {
        this.reviews += 1;
        if (o.reviewForbidden) return { forbidden: 'subjectaccessreviews is forbidden' };
        return { allowed: !NOT_NEEDED.includes(need) };
      },
    };
  }
  const options = (progress: string[]) => ({
    scope: SCOPE,
    hahaha: HAHAHA,
    catalog,
    stuckAfterSeconds: 60,
    now: () => T0 + 300_000,
    progress: (line: string) => progress.push(line),
  });

  it('examines every page and reports progress after each page of a long list', async () => {
    const page = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => runningJob(`${prefix}${i}`));
    const progress: string[] = [];
    const cluster = fakeCluster([page(500, 'a'), page(500, 'b'), page(3, 'c')]);
    const r = await gatherReport(cluster, options(progress));
    assert.equal(r.scope.pods, 1003);
    assert.deepEqual(progress, ['listed 500 pods…', 'listed 1000 pods…', 'listed 1003 pods…']);
    assert.equal(cluster.reviews, hahahaNeeds(HAHAHA).length + NOT_NEEDED.length);
    assert.equal(r.needsAction, false);
  });

  it('says nothing on standard error for a short list', async () => {
    const progress: string[] = [];
    await gatherReport(fakeCluster([[runningJob('one')]]), options(progress));
    assert.deepEqual(progress, []);
  });

  it('reports the webhook as unknown and RBAC as unchecked without permission, and goes on', async () => {
    const r = await gatherReport(
      fakeCluster([[finishedJob('stuck', container('x'), running('x'))]], { webhookForbidden: true, reviewForbidden: true }),
      options([]),
    );
    assert.equal(r.cluster.webhook, 'unknown');
    assert.equal(r.rbac.checked, false);
    assert.match(r.rbac.why ?? '', /may not create SubjectAccessReviews \(subjectaccessreviews is forbidden\)/);
    assert.equal(r.stuck.length, 1);
  });
});
