import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { LeaderElector, leaseIdentity } from '../../src/leader/elector.ts';
import { LeaseConflict, type LeaseLock, type LeaseRecord } from '../../src/ports.ts';

/** An in-memory Lease with optimistic concurrency, shared by candidates. */
class MemoryLease implements LeaseLock {
  record: LeaseRecord | undefined;
  version = 0;
  broken = false;
  async get() {
    if (this.broken) throw new Error('api down');
    return this.record === undefined ? undefined : { record: this.record, version: String(this.version) };
  }
  async create(record: LeaseRecord) {
    if (this.broken) throw new Error('api down');
    if (this.record !== undefined) throw new LeaseConflict('exists');
    this.record = record;
    this.version += 1;
    return String(this.version);
  }
  async update(record: LeaseRecord, version: string) {
    if (this.broken) throw new Error('api down');
    if (version !== String(this.version)) throw new LeaseConflict('stale');
    this.record = record;
    this.version += 1;
    return String(this.version);
  }
  describe() {
    return 'test/lease';
  }
}

const log = pino({ level: 'silent' });

/** Polls until `pred` holds (true) or `ms` pass (false): timing on a loaded 2-core machine varies. */
async function until(pred: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

function candidate(lock: LeaseLock, identity: string, clock: { now: number }, events: string[]) {
  return new LeaderElector(
    lock,
    {
      identity,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      now: () => clock.now,
      onStartedLeading: () => events.push(`${identity}:start`),
      onStoppedLeading: () => events.push(`${identity}:stop`),
    },
    log,
  );
}

describe('leader election', () => {
  it('the first candidate creates the lease; a second cannot take a fresh lease', async () => {
    const lock = new MemoryLease();
    const clock = { now: 1_000_000 };
    const a = candidate(lock, 'a', clock, []);
    const b = candidate(lock, 'b', clock, []);
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(lock.record?.holderIdentity, 'a');
    assert.equal(await b.tryAcquireOrRenew(), false);
    clock.now += 10_000;
    assert.equal(await b.tryAcquireOrRenew(), false);
  });

  it('two processes given the same instance name are two holders: the second stands by', async () => {
    const lock = new MemoryLease();
    const clock = { now: 1_000_000 };
    const [idA, idB] = [leaseIdentity('hahaha'), leaseIdentity('hahaha')];
    assert.match(idA, /^hahaha_[0-9a-f-]{36}$/);
    assert.notEqual(idA, idB);
    const a = candidate(lock, idA, clock, []);
    const b = candidate(lock, idB, clock, []);
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(await b.tryAcquireOrRenew(), false);
    clock.now += 2_000;
    assert.equal(await a.tryAcquireOrRenew(), true);
    assert.equal(await b.tryAcquireOrRenew(), false);
    assert.equal(lock.record?.holderIdentity, idA);
  });

  it('a standby takes over a lease not renewed for a lease duration (on its own clock)', async () => {
    const lock = new MemoryLease();
    const clock = { now: 1_000_000 };
    const a = candidate(lock, 'a', clock, []);
    const b = candidate(lock, 'b', clock, []);
    await a.tryAcquireOrRenew();
    assert.equal(await b.tryAcquireOrRenew(), false);
    clock.now += 14_999;
    assert.equal(await b.tryAcquireOrRenew(), false);
    clock.now += 1;
    assert.equal(await b.tryAcquireOrRenew(), true);
    assert.equal(lock.record?.holderIdentity, 'b');
    assert.equal(lock.record?.leaseTransitions, 1);
  });

  it('renewing keeps the acquire time and transitions', async () => {
    const lock = new MemoryLease();
    const clock = { now: 1_000_000 };
    const a = candidate(lock, 'a', clock, []);
    await a.tryAcquireOrRenew();
    clock.now += 2000;
    await a.tryAcquireOrRenew();
    assert.equal(lock.record?.acquireTime, 1_000_000);
    assert.equal(lock.record?.renewTime, 1_002_000);
    assert.equal(lock.record?.leaseTransitions, 0);
  });

  it('stop() releases the lease so a standby takes it at once', async (t) => {
    const lock = new MemoryLease();
    const clock = { now: 1_000_000 };
    const events: string[] = [];
    const a = candidate(lock, 'a', clock, events);
    t.after(() => a.stop());
    a.start();
    assert.ok(await until(() => a.isLeader), 'became leader');
    await a.stop();
    assert.deepEqual(events, ['a:start', 'a:stop']);
    assert.equal(lock.record?.holderIdentity, '');
    const b = candidate(lock, 'b', clock, []);
    assert.equal(await b.tryAcquireOrRenew(), true);
  });

  it('a deadline timer that fires early by the wall clock is armed again, not skipped for good', async (t) => {
    const lock = new MemoryLease();
    const clock = { now: 1_000_000 };
    const e = new LeaderElector(
      lock,
      {
        identity: 'a',
        leaseDurationMs: 300,
        renewDeadlineMs: 50,
        retryPeriodMs: 20,
        now: () => clock.now,
        onStartedLeading: () => {},
        onStoppedLeading: () => {},
      },
      log,
    );
    t.after(async () => {
      lock.broken = false;
      await e.stop();
    });
    e.start();
    assert.ok(await until(() => e.isLeader), 'became leader');
    lock.broken = true;
    // The clock stands still: the deadline timer fires while the deadline has not passed by it.
    await sleep(120);
    assert.equal(e.isLeader, true);
    clock.now += 1000;
    assert.ok(await until(() => !e.isLeader, 1000), 'stopped leading once the deadline passed');
  });

  it('a leader that cannot renew within the deadline stops leading', async (t) => {
    const lock = new MemoryLease();
    const events: string[] = [];
    const e = new LeaderElector(
      lock,
      {
        identity: 'a',
        leaseDurationMs: 300,
        renewDeadlineMs: 100,
        retryPeriodMs: 20,
        onStartedLeading: () => events.push('start'),
        onStoppedLeading: () => events.push('stop'),
      },
      log,
    );
    // Whatever an assertion does, the elector's loop must end with the test, or the file hangs.
    t.after(async () => {
      lock.broken = false;
      await e.stop();
    });
    e.start();
    assert.ok(await until(() => e.isLeader), 'became leader');
    lock.broken = true;
    assert.ok(await until(() => !e.isLeader), 'stopped leading');
    assert.deepEqual(events, ['start', 'stop']);
  });

  it('a leader renews with one update per retry period, and reads the lease only when that update conflicts', async (t) => {
    const lock = new MemoryLease();
    const calls: string[] = [];
    const counting: LeaseLock = {
      get: () => {
        calls.push('get');
        return lock.get();
      },
      create: (r) => {
        calls.push('create');
        return lock.create(r);
      },
      update: (r, v) => {
        calls.push('update');
        return lock.update(r, v);
      },
      describe: () => lock.describe(),
    };
    const events: string[] = [];
    const elector = new LeaderElector(
      counting,
      {
        identity: 'a',
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 10,
        onStartedLeading: () => events.push('start'),
        onStoppedLeading: () => events.push('stop'),
      },
      log,
    );
    t.after(() => elector.stop());
    elector.start();
    assert.ok(await until(() => calls.filter((c) => c === 'update').length >= 6));
    // get+create to acquire, then updates only.
    assert.deepEqual(calls.slice(0, 2), ['get', 'create']);
    assert.deepEqual(new Set(calls.slice(2)), new Set(['update']));

    // Someone else writes the lease (here: the same holder, as after a restart): the next
    // optimistic update conflicts, and the leader reads the lease and renews from it.
    lock.version += 1;
    const before = calls.length;
    assert.ok(await until(() => calls.length >= before + 4));
    assert.deepEqual(calls.slice(before, before + 3), ['update', 'get', 'update']);
    assert.equal(elector.isLeader, true);
    assert.deepEqual(events, ['start']);
  });
});
