/**
 * `npm run soak`: thousands of Jobs with a mix of sidecars through two hahaha replicas while the
 * harness injects faults, on a local cluster of its own (SOAK_CLUSTER_DIR, default
 * $TMPDIR/hahaha-soak-cluster; never the default .cluster), torn down at the end.
 *
 * Jobs (SOAK_JOBS, default 2000; at most SOAK_CONCURRENCY, default 40, at a time) are drawn from a
 * shuffled deck of kinds (test/soak/mix.ts): linkerd, istio, cloudsql look-alike with
 * --quitquitquit and the real cloud-sql-proxy, fluentd, vks, the real configmap-reload and its
 * killall-able look-alike, three sidecars at once, an istio whose first endpoint hangs, and `deaf`
 * sidecars that no signal stops; native-capable ones are either converted by the webhook or opted
 * out with the annotation, so that hahaha reaps them. Every SOAK_FAULT_EVERY finished Jobs
 * (default: a twentieth of them, at least 15) one fault, in turn: the API server SIGKILLed and
 * restarted; the leader (the Lease's holderIdentity) SIGKILLed and replaced; the leader SIGKILLed
 * while it has a pod in flight, and replaced; etcd compacted and the API server restarted, so that
 * resumed watches are too old (410). A fault comes at least 20 s after the last one ended and
 * waits (at most 90 s more) until no Job has been waiting over 10 s for its sidecars (or, for an
 * expected hang, for its warning), so that each fault meets a cluster recovered from the last;
 * the last SOAK_CONCURRENCY Jobs are created only once the last fault has begun, so that no fault
 * is skipped for want of Jobs on a fast run.
 *
 * Each finished Job is checked and deleted:
 *   - hung: a Job still running 60 s after its main container ended, that hahaha could have
 *     finished (a `deaf` sidecar left a regular container cannot be stopped: that is an expected
 *     hang, counted apart, and hahaha must have posted a Warning or SidecarPreflight for it);
 *   - double stops: a sidecar hahaha reaped that logged more than one shutdown request (counted at
 *     the sidecar, test/e2e/shutdown-requests.ts; the real programs log none and are not counted);
 *   - events lost: a sidecar hahaha reaped without its `Killing` event on the pod.
 * Prints one result line on stdout and exits 1 when a target (0 hung, 0 double stops, 0 events
 * lost, every expected hang warned about, every Job finished) is missed.
 * Knobs besides: SOAK_SEED (default 1) seeds the deck and the main containers' durations;
 * SOAK_KEEP_CLUSTER=1 leaves the cluster running; SOAK_OUT (default $TMPDIR/hahaha-soak.txt) gets
 * the result line and the details; SOAK_TIMEOUT_SECONDS (default 600 + 2 per Job) bounds the run;
 * SOAK_ALLOW_KNOWN_EVENT_LOSS=1 does not fail on events lost in the two known ways (see below).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeRequests, nodeLogShutdownRequests } from '../e2e/shutdown-requests.ts';
import { ApiError, type Replica, Replicas, SoakCluster, until } from './cluster.ts';
import { deck, jobManifest, type Kind, random } from './mix.ts';

const JOBS = Number(process.env.SOAK_JOBS ?? 2000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 40);
const FAULT_EVERY = Number(process.env.SOAK_FAULT_EVERY ?? Math.max(15, Math.floor(JOBS / 20)));
const SEED = Number(process.env.SOAK_SEED ?? 1);
const CLUSTER_DIR = process.env.SOAK_CLUSTER_DIR ?? join(tmpdir(), 'hahaha-soak-cluster');
const OUT = process.env.SOAK_OUT ?? join(tmpdir(), 'hahaha-soak.txt');
const HUNG_AFTER_MS = 60_000;
/** A Job waiting this long for its sidecars is still being reaped: the next fault waits for it. */
const SETTLE_AFTER_MS = 10_000;
/** The longest a fault waits for that (the hung check goes on meanwhile). */
const SETTLE_WAIT_MAX_MS = 90_000;
/** The least time between the end of one fault and the next: a leader's failover (15 s lease). */
const FAULT_GAP_MS = 20_000;
/** A hung Job is given up (deleted) this long after its main container ended. */
const GIVE_UP_AFTER_MS = 180_000;
/** How long after a pod finished its events may take to appear. */
const EVENT_GRACE_MS = 30_000;
const NS = 'soak';
const RUN_LABEL = 'soak.hahaha.nais.io/run';
const T0 = Date.now();

function log(msg: string): void {
  process.stderr.write(`[soak +${((Date.now() - T0) / 1000).toFixed(0)}s] ${msg}\n`);
}

interface Tracked {
  name: string;
  kind: Kind;
  createdAt: number;
  pod?: { namespace: string; name: string; uid: string };
  spec?: any;
  /** The pod's last status seen. */
  status?: any;
  mainEndedAt?: number;
  finishedAt?: number;
  phase?: string;
  hung: boolean;
  expectedHang: boolean;
  checking: boolean;
  done: boolean;
}

const counts = {
  created: 0,
  done: 0,
  hung: 0,
  doubleStops: 0,
  eventsLost: 0,
  eventsLostToKills: 0,
  eventsLostToFailedPosts: 0,
  eventsWrong: 0,
  expectedHangs: 0,
  hangWarningsMissing: 0,
  stuck: 0,
  reapedSidecars: 0,
  countedSidecars: 0,
  unasked: 0,
  reasked: 0,
  nativeSidecars: 0,
  unconverted: 0,
  succeeded: 0,
  failed: 0,
  failedUnexpectedly: 0,
};
const faults = new Map<string, number>();
/** The replicas the harness SIGKILLed. */
const killed: Replica[] = [];
/** Per killed replica, the `<pod>/<container>` stops it had started (from its log: reap decisions and attempts). */
const acceptedByKilled = new Map<string, Set<string>>();
/**
 * Whether a SIGKILLed replica had started stopping this container: its event is posted only once
 * the API shows the container terminated, so a replica killed in between takes the event with it.
 */
function stoppedByKilledReplica(pod: string, container: string): boolean {
  return killed.some((r) => {
    let accepted = acceptedByKilled.get(r.name);
    if (accepted === undefined) {
      accepted = new Set();
      for (const line of readFileSync(r.logFile, 'utf8').split('\n')) {
        try {
          const rec = JSON.parse(line) as { pod?: string; container?: string; decision?: string; targets?: string[] };
          if (rec.pod === undefined) continue;
          if (rec.container !== undefined) accepted.add(`${rec.pod}/${rec.container}`);
          if (rec.decision === 'reap') for (const c of rec.targets ?? []) accepted.add(`${rec.pod}/${c}`);
        } catch {
          // a line cut off by the SIGKILL
        }
      }
      acceptedByKilled.set(r.name, accepted);
    }
    return accepted.has(`${pod}/${container}`);
  });
}
/**
 * Whether a replica logged that it could not post this container's event (the API server was
 * down): hahaha counts such a post in hahaha_total_unsuccessful_event_posts and does not retry it.
 */
function eventPostFailed(pod: string, container: string): boolean {
  return replicas.logFiles().some((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .some((line) => line.includes('could not post event') && line.includes(`"pod":"${pod}"`) && new RegExp(` container ${container}[ :]`).test(line)),
  );
}
/**
 * Events lost in one of the two known ways (with a SIGKILLed replica, or in a post that failed
 * while the API server was down) fail the run too, unless SOAK_ALLOW_KNOWN_EVENT_LOSS=1.
 */
const ALLOW_KNOWN_EVENT_LOSS = process.env.SOAK_ALLOW_KNOWN_EVENT_LOSS === '1';
const problems: string[] = [];
function problem(msg: string): void {
  problems.push(msg);
  log(`PROBLEM ${msg}`);
}

const cluster = new SoakCluster(CLUSTER_DIR, log);
const replicas = new Replicas(cluster, log);
const jobs = new Map<string, Tracked>();
let creatingDone = false;
/** Set when the main loop ends, done or not: the fault injector stops. */
let polling = true;

const isRegularSidecar = (t: Tracked, c: any) => c.name !== t.kind.main;
/** The sidecars the webhook converted: init containers with restartPolicy Always. */
const nativeSidecars = (t: Tracked): any[] => (t.spec?.initContainers ?? []).filter((c: any) => c.restartPolicy === 'Always');
/** The sidecars left for hahaha to reap: regular containers other than the main one. */
const reapedSidecars = (t: Tracked): any[] => (t.spec?.containers ?? []).filter((c: any) => isRegularSidecar(t, c));
const isDeaf = (c: any) => (c.command ?? []).join(' ').includes('fake-sidecar deaf');
/**
 * Look-alikes whose shutdown never works (an endpoint that never answers, one that refuses, a
 * process that ignores every signal): asking them again is no double stop, since the first ask
 * provably did not land; their requests are counted apart.
 */
const NEVER_STOPS = new Set(['hang', 'refuse', 'deaf']);
/** A look-alike that logs its shutdown requests (the real programs do not). */
const isCounted = (c: any) => (c.command ?? []).join(' ').includes('fake-sidecar');

async function createJobs(): Promise<void> {
  const kinds = deck(SEED);
  const rnd = random(SEED + 1);
  // Ends when the run does (a failure or the time budget): no Job would finish any more.
  while (counts.created < JOBS && polling) {
    const active = [...jobs.values()].filter((t) => !t.done).length;
    // The last CONCURRENCY Jobs wait for the last fault to start, so that every fault meets
    // Jobs in flight and none is skipped for want of Jobs (a fault waits for the cluster to
    // recover from the one before, and on a fast run the Jobs could all be done by then).
    const heldBack = faultsStarted < PLANNED_FAULTS && counts.created >= HOLD_BACK_FROM;
    if (active >= CONCURRENCY || heldBack) {
      await sleep(200);
      continue;
    }
    const kind = kinds[counts.created % kinds.length] as Kind;
    const name = `${kind.name}-${counts.created}`;
    const manifest = jobManifest(NS, name, kind, { [RUN_LABEL]: 'true' }, 1 + Math.floor(rnd() * 5));
    try {
      await cluster.api.call('POST', `/apis/batch/v1/namespaces/${NS}/jobs`, manifest);
    } catch (err) {
      // A create whose answer was lost in an API server restart, then retried.
      if (!(err instanceof ApiError && err.status === 409)) throw err;
    }
    jobs.set(name, { name, kind, createdAt: Date.now(), hung: false, expectedHang: false, checking: false, done: false });
    counts.created++;
  }
  creatingDone = true;
}

function podState(pod: any, container: string): any {
  return (pod.status?.containerStatuses ?? []).find((s: any) => s.name === container)?.state;
}

async function poll(): Promise<void> {
  const list = await cluster.api.call<{ items: any[] }>('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=${encodeURIComponent(`${RUN_LABEL}=true`)}`);
  const now = Date.now();
  for (const pod of list.items) {
    const t = jobs.get(pod.metadata.labels?.['batch.kubernetes.io/job-name']);
    if (t === undefined || t.done) continue;
    if (t.pod === undefined) {
      t.pod = { namespace: NS, name: pod.metadata.name, uid: pod.metadata.uid };
      t.spec = pod.spec;
      t.expectedHang = reapedSidecars(t).some(isDeaf);
    }
    if (t.pod.uid !== pod.metadata.uid) continue;
    t.status = pod.status;
    const main = podState(pod, t.kind.main)?.terminated;
    if (main && t.mainEndedAt === undefined) t.mainEndedAt = Date.parse(main.finishedAt);
    if (['Succeeded', 'Failed'].includes(pod.status?.phase) && t.finishedAt === undefined) {
      t.finishedAt = now;
      t.phase = pod.status.phase;
    }
    if (t.finishedAt === undefined && t.mainEndedAt !== undefined && !t.expectedHang && !t.hung && now - t.mainEndedAt > HUNG_AFTER_MS) {
      t.hung = true;
      counts.hung++;
      const running = (pod.status?.containerStatuses ?? []).filter((s: any) => s.state?.running).map((s: any) => s.name);
      problem(
        `hung: ${NS}/${t.pod.name} (${t.kind.name}) still running ${((now - t.mainEndedAt) / 1000).toFixed(0)} s after its main container ended; running: ${running.join(', ')}`,
      );
    }
  }
  for (const t of jobs.values()) {
    if (t.done || t.checking) continue;
    const ready =
      t.finishedAt !== undefined ||
      (t.expectedHang && t.mainEndedAt !== undefined) ||
      (t.mainEndedAt !== undefined && now - t.mainEndedAt > GIVE_UP_AFTER_MS) ||
      (t.mainEndedAt === undefined && now - t.createdAt > GIVE_UP_AFTER_MS * 2);
    if (!ready) continue;
    t.checking = true;
    void check(t)
      .catch((err: Error) => problem(`check of ${t.name} failed: ${err.message}`))
      .finally(() => finish(t));
  }
}

async function events(t: Tracked): Promise<any[]> {
  const sel = encodeURIComponent(`involvedObject.name=${t.pod?.name},involvedObject.uid=${t.pod?.uid}`);
  return (await cluster.api.call<{ items: any[] }>('GET', `/api/v1/namespaces/${NS}/events?fieldSelector=${sel}`)).items;
}

async function check(t: Tracked): Promise<void> {
  if (t.pod === undefined || t.mainEndedAt === undefined) {
    counts.stuck++;
    problem(`stuck: ${t.name} (${t.kind.name}): ${t.pod ? `pod ${t.pod.name}` : 'no pod'}, main container never seen ended`);
    return;
  }
  const pod = t.pod;
  if (t.expectedHang) {
    // hahaha cannot stop a deaf sidecar; it must say so: a SidecarPreflight at pod start, or a
    // Warning Killing once it tried (or found no catalog entry).
    const deaf = reapedSidecars(t).filter(isDeaf);
    const warned = await until(
      `the warnings for ${pod.name}`,
      async () => {
        const ev = await events(t);
        return deaf.every((c) =>
          ev.some(
            (e) =>
              e.type === 'Warning' &&
              ((e.reason === 'SidecarPreflight' && e.message.includes(`Sidecar ${c.name} `)) ||
                (e.reason === 'Killing' && e.message.startsWith(`Unsuccessfully shut down container ${c.name}:`))),
          ),
        );
      },
      HUNG_AFTER_MS,
      2000,
    ).catch(() => false);
    if (warned) counts.expectedHangs++;
    else {
      counts.hangWarningsMissing++;
      problem(`expected hang without a warning: ${pod.name} (${deaf.map((c) => c.name).join(', ')})`);
    }
    return;
  }
  if (t.finishedAt === undefined) return; // hung, already counted
  if (t.phase === 'Succeeded') counts.succeeded++;
  else {
    counts.failed++;
    if (!t.kind.mayFail) {
      counts.failedUnexpectedly++;
      problem(`failed unexpectedly: ${pod.name} (${t.kind.name})`);
    }
  }
  const reaped = reapedSidecars(t);
  const native = nativeSidecars(t);
  counts.reapedSidecars += reaped.length;
  counts.nativeSidecars += native.length;
  if (t.kind.native && native.length === 0) counts.unconverted++;
  // Events: one Killing event per reaped sidecar, recorded a moment after the pod finished.
  const missing = await until(
    `the Killing events of ${pod.name}`,
    async () => {
      const ev = await events(t);
      const lacking = reaped.filter((c) => !ev.some((e) => e.reason === 'Killing' && e.message.startsWith(`Shut down container ${c.name} (`)));
      return lacking.length === 0 || Date.now() > (t.finishedAt as number) + EVENT_GRACE_MS ? lacking : undefined;
    },
    EVENT_GRACE_MS + 30_000,
    1000,
  );
  // A sidecar that stopped but whose only Killing event says it could not be stopped has its
  // event, a wrong one: counted apart (hahaha gave up verifying, e.g. when it lost the lease).
  const final = await events(t);
  const wrong = missing.filter((c) => final.some((e) => e.reason === 'Killing' && e.message.startsWith(`Unsuccessfully shut down container ${c.name}:`)));
  if (wrong.length > 0) {
    counts.eventsWrong += wrong.length;
    const ev = final.map((e) => `${e.type} ${e.reason}: ${e.message}`);
    problem(
      `wrong event: ${pod.name} (${t.kind.name}): ${wrong.map((c) => c.name).join(', ')} stopped, but its Killing event says unsuccessfully; events: ${JSON.stringify(ev)}`,
    );
  }
  missing.splice(0, missing.length, ...missing.filter((c) => !wrong.includes(c)));
  if (missing.length > 0) {
    counts.eventsLost += missing.length;
    const ev = final.map((e) => `${e.type} ${e.reason}: ${e.message}`);
    const toKills = missing.filter((c) => stoppedByKilledReplica(pod.name, c.name));
    const toPosts = missing.filter((c) => !toKills.includes(c) && eventPostFailed(pod.name, c.name));
    counts.eventsLostToKills += toKills.length;
    counts.eventsLostToFailedPosts += toPosts.length;
    const why = [
      ...(toKills.length > 0 ? [`${toKills.map((c) => c.name).join(', ')}: being stopped by a replica that was SIGKILLed`] : []),
      ...(toPosts.length > 0 ? [`${toPosts.map((c) => c.name).join(', ')}: hahaha could not post the event`] : []),
    ]
      .map((w) => ` (${w})`)
      .join('');
    problem(`events lost: ${pod.name} (${t.kind.name}): no Killing event for ${missing.map((c) => c.name).join(', ')}${why}; events: ${JSON.stringify(ev)}`);
  }
  // Shutdown requests, as the sidecars logged them.
  for (const c of reaped.filter(isCounted)) {
    counts.countedSidecars++;
    const requests = nodeLogShutdownRequests(CLUSTER_DIR, pod, c.name);
    const perProcess = new Map<string, number>();
    for (const r of requests) perProcess.set(r.sidecar, (perProcess.get(r.sidecar) ?? 0) + 1);
    for (const [sidecar, n] of perProcess) if (NEVER_STOPS.has(sidecar) && n > 1) counts.reasked++;
    if ([...perProcess].some(([sidecar, n]) => n > 1 && !NEVER_STOPS.has(sidecar))) {
      counts.doubleStops++;
      problem(`double stop: ${pod.name} (${t.kind.name}) container ${c.name}: ${JSON.stringify(describeRequests(requests))}`);
    } else if (requests.length === 0) {
      counts.unasked++;
      problem(`never asked: ${pod.name} (${t.kind.name}) container ${c.name} ended without a shutdown request`);
    }
  }
}

async function finish(t: Tracked): Promise<void> {
  try {
    await cluster.api.call('DELETE', `/apis/batch/v1/namespaces/${NS}/jobs/${t.name}?propagationPolicy=Background`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) problem(`delete ${t.name}: ${(err as Error).message}`);
  }
  t.done = true;
  counts.done++;
  if (counts.done % 100 === 0) log(`${counts.done}/${JOBS} Jobs done`);
}

function fault(name: string): void {
  faults.set(name, (faults.get(name) ?? 0) + 1);
}

async function replace(r: Replica): Promise<void> {
  await replicas.kill(r);
  killed.push(r);
  await replicas.start(r.slot);
}

const FAULTS: [string, () => Promise<void>][] = [
  ['api-restart', () => cluster.restartApiServer(3000)],
  ['leader-kill', async () => replace(await replicas.waitForLeader(90_000))],
  [
    'kill-mid-reap',
    async () => {
      const leader = await replicas.waitForLeader(90_000);
      const inFlight = await until(
        'the leader to have a pod in flight',
        async () => ((await replicas.metric(leader.slot, 'hahaha_queue_in_flight')) ?? 0) > 0,
        60_000,
        20,
      ).catch(() => false);
      if (!inFlight) log('kill-mid-reap: no pod in flight within 60 s; killing the leader anyway');
      await replace(leader);
    },
  ],
  [
    'etcd-compact',
    async () => {
      const rev = await cluster.compactEtcd();
      log(`etcd compacted at revision ${rev}`);
      await cluster.restartApiServer(1000);
    },
  ],
];

/**
 * Jobs waiting for their sidecars longer than a reap takes: main container ended over
 * SETTLE_AFTER_MS ago and not hung (counted already), and either not finished or, for an
 * expected hang, not yet warned about. A deaf sidecar's reap holds hahaha's verify window
 * (10 s) each time it is asked, so the next fault would otherwise meet it again: in a CI run a
 * deaf vks pod's reap met a leader SIGKILL (15 s lease), then the next leader SIGKILLed mid-reap,
 * then an API restart, and its warning came after the 60 s the check waits.
 */
function unsettled(now: number): Tracked[] {
  return [...jobs.values()].filter(
    (t) => t.mainEndedAt !== undefined && !t.hung && now - t.mainEndedAt > SETTLE_AFTER_MS && (t.expectedHang ? !t.done : t.finishedAt === undefined),
  );
}

let lastFaultEnd = 0;

/** One fault each time FAULT_EVERY more Jobs are done, in turn, the last one well before the end. */
const PLANNED_FAULTS = Math.max(0, Math.floor((JOBS - FAULT_EVERY / 2) / FAULT_EVERY));
/** How many faults have begun; createJobs holds its last Jobs back until all have. */
let faultsStarted = 0;
/** The Jobs from this one on wait for the last fault (enough before it for its trigger to come). */
const HOLD_BACK_FROM = Math.max(JOBS - CONCURRENCY, PLANNED_FAULTS * FAULT_EVERY + Math.ceil(CONCURRENCY / 2));

async function injectFaults(): Promise<void> {
  try {
    await injectPlannedFaults();
  } finally {
    faultsStarted = PLANNED_FAULTS;
  }
}

async function injectPlannedFaults(): Promise<void> {
  for (let i = 0; i < PLANNED_FAULTS; i++) {
    while (polling && counts.done < (i + 1) * FAULT_EVERY) await sleep(200);
    if (!polling || counts.done >= JOBS) return;
    // Each fault on a cluster that has recovered from the last: a Job still being reaped after it
    // would otherwise take the next one too (with the short soak's faults 10-15 s apart, a slow
    // istio-hang pod met an API restart, two leader SIGKILLs with a 15 s lease each, and another
    // API restart, over 60 s in all). Waiting hides nothing: the hung check keeps running.
    // Right after a fault its victims have not waited long yet: give a failover time first.
    while (polling && Date.now() - lastFaultEnd < FAULT_GAP_MS) await sleep(200);
    const waitFrom = Date.now();
    while (polling && unsettled(Date.now()).length > 0 && Date.now() - waitFrom < SETTLE_WAIT_MAX_MS) await sleep(200);
    const still = unsettled(Date.now());
    if (still.length > 0) log(`fault after ${SETTLE_WAIT_MAX_MS / 1000} s with Jobs still being reaped: ${still.map((t) => t.name).join(', ')}`);
    else if (Date.now() - waitFrom > 1000) log(`fault waited ${((Date.now() - waitFrom) / 1000).toFixed(1)} s for the last one's reaps`);
    if (!polling || counts.done >= JOBS) return;
    const [name, inject] = FAULTS[i % FAULTS.length] as [string, () => Promise<void>];
    log(`fault ${name} (${counts.done} Jobs done)`);
    faultsStarted = i + 1;
    const t = Date.now();
    await inject();
    lastFaultEnd = Date.now();
    fault(name);
    log(`fault ${name} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
}

/** `(k at a SIGKILL, p in failed posts)` when some lost events have a known cause. */
function lostWhy(): string {
  const parts = [
    ...(counts.eventsLostToKills > 0 ? [`${counts.eventsLostToKills} at a SIGKILL`] : []),
    ...(counts.eventsLostToFailedPosts > 0 ? [`${counts.eventsLostToFailedPosts} in failed posts`] : []),
  ];
  return parts.length > 0 ? `(${parts.join(', ')})` : '';
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

async function main(): Promise<number> {
  log(`starting a cluster in ${CLUSTER_DIR}`);
  await cluster.up();
  log('cluster up; starting two hahaha replicas');
  await replicas.setUp();
  const first = await replicas.waitForLeader(60_000);
  log(`leader ${first.name}`);
  await cluster.kubectl(['create', 'namespace', NS]);
  await until(
    'the default ServiceAccount',
    async () => (await cluster.kubectl(['get', 'serviceaccount', 'default', '-n', NS, '--ignore-not-found'])).includes('default'),
    30_000,
  );
  const started = Date.now();
  let failure: unknown;
  const creator = createJobs().catch((err: unknown) => {
    failure = err;
    creatingDone = true;
  });
  const injector = injectFaults().catch((err: unknown) => {
    failure = err;
  });
  const budget = Date.now() + Number(process.env.SOAK_TIMEOUT_SECONDS ?? 600 + JOBS * 2) * 1000;
  while (failure === undefined && !(creatingDone && counts.done >= counts.created)) {
    if (Date.now() > budget) {
      failure = new Error(`timed out with ${counts.created - counts.done} Jobs unfinished`);
      break;
    }
    await poll().catch((err: Error) => log(`poll: ${err.message}`));
    await sleep(2000);
  }
  polling = false;
  await creator;
  await injector;
  const hangSidecars = [...jobs.values()].filter((t) => t.expectedHang || t.kind.name === 'istio-hang').length;
  if (hangSidecars > 0) faults.set('hang-sidecars', hangSidecars);
  const watch410 = replicas.countLogLines(/watch expired \(410 Gone\)/);
  const ok =
    failure === undefined &&
    counts.hung === 0 &&
    counts.doubleStops === 0 &&
    counts.eventsLost - (ALLOW_KNOWN_EVENT_LOSS ? counts.eventsLostToKills + counts.eventsLostToFailedPosts : 0) === 0 &&
    counts.hangWarningsMissing === 0 &&
    counts.stuck === 0 &&
    counts.done === JOBS;
  const line =
    `soak: jobs=${counts.done} hung>60s=${counts.hung} double-stops=${counts.doubleStops} events-lost=${counts.eventsLost}${lostWhy()} ` +
    `expected-hangs=${counts.expectedHangs} faults=${[...faults].map(([k, v]) => `${k}:${v}`).join(',')} duration=${duration(Date.now() - started)}`;
  const details = [
    line,
    `details: reaped sidecars=${counts.reapedSidecars} (counted at the sidecar: ${counts.countedSidecars}, never asked: ${counts.unasked}, hanging or refusing endpoints asked again: ${counts.reasked}), native sidecars=${counts.nativeSidecars}, ` +
      `native-capable left unconverted=${counts.unconverted}, pods succeeded=${counts.succeeded} failed=${counts.failed} (unexpectedly: ${counts.failedUnexpectedly}), ` +
      `stopped sidecars whose Killing event says unsuccessfully=${counts.eventsWrong}, expected hangs without warning=${counts.hangWarningsMissing}, stuck=${counts.stuck}, watch 410s seen by hahaha=${watch410}, seed=${SEED}, cluster ${CLUSTER_DIR}`,
    ...(failure === undefined ? [] : [`aborted: ${(failure as Error).message}`]),
    ...problems.slice(0, 50).map((p) => `- ${p}`),
    ...(problems.length > 50 ? [`- ... ${problems.length - 50} more`] : []),
  ];
  process.stderr.write(`${details.slice(1).join('\n')}\n`);
  process.stdout.write(`${line}\n`);
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${details.join('\n')}\n`);
  return ok ? 0 : 1;
}

let stopping = false;
async function tearDown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await replicas.stopAll().catch(() => {});
  if (process.env.SOAK_KEEP_CLUSTER) log(`cluster kept in ${CLUSTER_DIR} (stop it with HAHAHA_CLUSTER_DIR=${CLUSTER_DIR} npm run cluster:down)`);
  else await cluster.down();
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: tearing down`);
    void tearDown().finally(() => process.exit(130));
  });
}

let rc = 1;
try {
  rc = await main();
} catch (err) {
  log(`aborted: ${(err as Error).stack ?? String(err)}`);
} finally {
  await tearDown();
}
process.exit(rc);
