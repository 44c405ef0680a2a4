/**
 * Leader election on a Lease, with controller-runtime's semantics and defaults (15 s lease,
 * 10 s renew deadline, 2 s retry period):
 * - a candidate takes the lease when it is free (no holder) or has not been renewed for a lease
 *   duration, measured on the local clock from when this candidate last saw it change (so clock
 *   skew between replicas does not matter);
 * - the leader renews every retry period with a single update from the version it last wrote
 *   (a get first only when that fails), so an idle leader costs 30 requests a minute and a
 *   standby 30 gets; when it cannot renew within the renew deadline it
 *   stops leading at once (the deadline is shorter than the lease, so it stops before anyone
 *   else can take over);
 * - `release()` clears the holder so a standby takes over on its next try, without waiting.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LeaseConflict, type LeaseLock, type LeaseRecord } from '../ports.ts';

/**
 * The Lease holder identity of this process: its instance name, `_` and a new UUID, as
 * controller-runtime makes one (host name `_` UUID). The holder is compared by identity alone, so
 * two replicas given the same INSTANCE_NAME would otherwise both take the Lease as their own and
 * both lead. A process restarted in the same pod is a new holder too: after a crash it waits for
 * its predecessor's lease to expire, which cannot be told apart from another replica's.
 */
export function leaseIdentity(instanceName: string, id: string = randomUUID()): string {
  return `${instanceName}_${id}`;
}

export interface ElectorOptions {
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  readonly now?: () => number;
}

export class LeaderElector {
  private readonly lock: LeaseLock;
  private readonly opts: ElectorOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private expiresAt: number | undefined;
  private observed: { record: LeaseRecord; version: string; at: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(lock: LeaseLock, opts: ElectorOptions, log: Logger) {
    this.lock = lock;
    this.opts = opts;
    this.log = log.child({ component: 'leader-election', lease: lock.describe(), identity: opts.identity });
    this.now = opts.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops campaigning; a leader releases the lease so a standby can take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    this.wake?.();
    await this.loop;
    if (this.leading) {
      this.setLeading(false);
      await this.release();
    }
  }

  /** One try: acquire or renew. Exposed for tests; the loop calls it every retry period. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const mine: LeaseRecord = {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.round(this.opts.leaseDurationMs / 1000),
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };
    // The leader renews with one request, optimistically from the version it last wrote (as
    // client-go does); only when that fails does it read the lease first.
    const observed = this.observed;
    if (this.leading && observed !== undefined && observed.record.holderIdentity === this.opts.identity) {
      const next = { ...mine, acquireTime: observed.record.acquireTime, leaseTransitions: observed.record.leaseTransitions };
      try {
        const version = await this.lock.update(next, observed.version);
        this.observed = { record: next, version, at: now };
        return true;
      } catch (err) {
        if (!(err instanceof LeaseConflict)) this.log.debug({ err }, 'optimistic lease renewal failed; reading the lease');
      }
    }
    const current = await this.lock.get();
    if (current === undefined) {
      const version = await this.lock.create(mine);
      this.observed = { record: mine, version, at: now };
      return true;
    }
    if (this.observed === undefined || this.observed.version !== current.version) {
      this.observed = { ...current, at: now };
    }
    const { record } = current;
    const heldByOther = record.holderIdentity !== '' && record.holderIdentity !== this.opts.identity;
    this.expiresAt = this.leaseExpiry(record, this.observed.at);
    if (heldByOther && this.expiresAt > now) return false;

    const next: LeaseRecord =
      record.holderIdentity === this.opts.identity
        ? { ...mine, acquireTime: record.acquireTime, leaseTransitions: record.leaseTransitions }
        : { ...mine, leaseTransitions: record.leaseTransitions + 1 };
    const version = await this.lock.update(next, current.version);
    this.observed = { record: next, version, at: now };
    return true;
  }

  /**
   * When another holder's lease counts as expired, on this candidate's clock. The reference is
   * the holder's renewTime, but never earlier than one retry period before this candidate saw
   * that renewal: a holder whose clock runs behind cannot make its lease look older than it is
   * by more than that, and since the renew deadline is shorter than the lease duration minus a
   * retry period (10 s < 15 s - 2 s by default), the old leader has stopped acting by then.
   */
  private leaseExpiry(record: LeaseRecord, observedAt: number): number {
    const reference = Math.max(record.renewTime, observedAt - this.opts.retryPeriodMs);
    return Math.min(reference, observedAt) + record.leaseDurationSeconds * 1000;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let ok = false;
      try {
        ok = await withTimeout(this.tryAcquireOrRenew(), this.opts.renewDeadlineMs);
      } catch (err) {
        if (!(err instanceof LeaseConflict)) this.log.warn({ err }, 'lease request failed');
      }
      if (ok) {
        this.lastRenew = this.now();
        this.armDeadline();
        if (!this.leading && !this.stopped) this.setLeading(true);
      } else if (this.leading && this.observed !== undefined && this.observed.record.holderIdentity !== this.opts.identity) {
        this.setLeading(false);
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        // A standby wakes right when the holder's lease expires instead of up to a retry
        // period later, so it takes over within the lease duration.
        let delay = this.opts.retryPeriodMs * (0.9 + Math.random() * 0.2);
        if (!this.leading && this.expiresAt !== undefined && this.expiresAt > this.now()) {
          delay = Math.min(delay, this.expiresAt - this.now() + 10);
        }
        this.timer = setTimeout(resolve, delay);
      });
    }
  }

  /**
   * Stops leading the moment the renew deadline passes, even while a request hangs. A timer may
   * fire a little before the deadline by the wall clock (it runs on the event loop's cached
   * clock): then it is armed again for the rest, so the check cannot be skipped for good.
   */
  private armDeadline(): void {
    clearTimeout(this.deadline);
    const remaining = Math.max(0, this.lastRenew + this.opts.renewDeadlineMs - this.now());
    this.deadline = setTimeout(() => {
      if (!this.leading) return;
      if (this.now() - this.lastRenew < this.opts.renewDeadlineMs) {
        this.armDeadline();
        return;
      }
      this.log.error('renew deadline passed without a successful renewal');
      this.setLeading(false);
    }, remaining);
    this.deadline.unref();
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    if (leading) {
      this.log.info('became leader');
      this.opts.onStartedLeading();
    } else {
      this.log.warn('stopped leading');
      this.opts.onStoppedLeading();
    }
  }

  private async release(): Promise<void> {
    try {
      const current = await this.lock.get();
      if (current === undefined || current.record.holderIdentity !== this.opts.identity) return;
      const now = this.now();
      await this.lock.update({ ...current.record, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now }, current.version);
      this.log.info('released the lease');
    } catch (err) {
      this.log.warn({ err }, 'could not release the lease');
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`lease request timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
