/**
 * Start-up and periodic check that hahaha's credentials allow everything it needs
 * (domain/required-access.ts). What is missing is logged exactly, once per change, and reported
 * by /readyz, so a chart installed with a trimmed ClusterRole says what to add instead of
 * failing one reap at a time. While something is missing it is rechecked after 5, 10, 20 and 40 s,
 * then every minute (RBAC may be fixed under a running daemon, and a binding created with the
 * Deployment can reach the API server's authorizer a moment after hahaha's first check); every ten
 * minutes once nothing is.
 */
import type { Logger } from 'pino';
import { type AccessNeed, describeNeed } from '../domain/required-access.ts';
import type { AccessReviewer } from '../ports.ts';

const RECHECK_MISSING_FIRST_MS = 5_000;
const RECHECK_MISSING_MS = 60_000;
const RECHECK_OK_MS = 10 * 60_000;

export class AccessCheck {
  private readonly reviewer: AccessReviewer;
  private readonly needs: readonly AccessNeed[];
  private readonly log: Logger;
  private missingNow: string[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** The next recheck's delay while something is missing: doubles from 5 s up to a minute. */
  private missingDelay = RECHECK_MISSING_FIRST_MS;

  constructor(reviewer: AccessReviewer, needs: readonly AccessNeed[], log: Logger) {
    this.reviewer = reviewer;
    this.needs = needs;
    this.log = log.child({ component: 'access-check' });
  }

  /** What is missing (`verb resource in namespace: why`); undefined until the first check answered. */
  get missing(): readonly string[] | undefined {
    return this.missingNow;
  }

  /** Runs the first check (resolves when it has answered or failed) and schedules the next ones. */
  async start(): Promise<void> {
    await this.check();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async check(): Promise<void> {
    let missing: string[];
    try {
      const answers = await Promise.all(this.needs.map(async (n) => ({ n, a: await this.reviewer.review(n) })));
      missing = answers.filter(({ a }) => !a.allowed).map(({ n }) => `${describeNeed(n)} (to ${n.why})`);
    } catch (err) {
      this.log.warn({ error: (err as Error).message }, 'cannot check permissions (SelfSubjectAccessReview); will try again');
      this.schedule(RECHECK_MISSING_MS);
      return;
    }
    const before = this.missingNow?.join('\n');
    this.missingNow = missing;
    if (missing.join('\n') !== before) {
      if (missing.length > 0) {
        this.log.error(
          { missing },
          `hahaha's credentials lack ${missing.length} permission(s) it needs; grant them (the chart's ClusterRole and Role have them)`,
        );
      } else if (before !== undefined) {
        this.log.info('every permission hahaha needs is granted now');
      }
    }
    if (missing.length === 0) {
      this.missingDelay = RECHECK_MISSING_FIRST_MS;
      this.schedule(RECHECK_OK_MS);
      return;
    }
    this.schedule(this.missingDelay);
    this.missingDelay = Math.min(this.missingDelay * 2, RECHECK_MISSING_MS);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.check(), ms);
    this.timer.unref();
  }
}
