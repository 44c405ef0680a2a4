/**
 * How late the kubelet reports container exits, as hahaha sees it: the delay from a main
 * container's exit (its finishedAt) to the watch update that shows it (Reconciler.noteUpdate).
 * A kubelet behind its API rate limit in a burst of finishing pods reports seconds late, and a
 * sidecar's exit shows as late as a main container's did. The verify window grows by that much,
 * so that an ask that did stop a sidecar is not called ignored, and the sidecar asked a second
 * time, only because its exit has not shown yet.
 */

/**
 * The longest delay taken for the kubelet's reporting lag, and how long the largest one seen is
 * remembered. A longer delay means hahaha saw the pod late (its watch started later), which says
 * nothing about how fast the kubelet reports.
 */
export const REPORT_LAG_MAX_MS = 60_000;

/**
 * One pod's lag: from its main container's exit to `seenAt`, less the second finishedAt is
 * rounded to, at most `capMs`; nothing when hahaha saw that exit late (REPORT_LAG_MAX_MS).
 */
export function reportLagMs(seenAt: number, mainFinishedAt: number | undefined, capMs: number): number {
  if (mainFinishedAt === undefined) return 0;
  const lag = seenAt - mainFinishedAt;
  if (lag > REPORT_LAG_MAX_MS) return 0;
  return Math.min(capMs, Math.max(0, lag - 1000));
}

/**
 * The lags seen lately, per node: each kubelet reports at its own pace (its own API rate limit,
 * its own clock for finishedAt), so a slow or skewed node lengthens the windows of its own pods
 * only. In a burst a kubelet falls further behind while its first pods' stops are still being
 * verified, so each pod allows for the largest lag seen on its node in the last minute, its own
 * or another pod's, and a verify still waiting allows for one that grew.
 */
export class ReportLag {
  private readonly capMs: number;
  private readonly now: () => number;
  /** The largest lag of the last minute by node name ('' for a pod not bound to a node). */
  private readonly largest = new Map<string, { ms: number; at: number }>();

  constructor(capMs: number, now: () => number) {
    this.capMs = capMs;
    this.now = now;
  }

  /**
   * Records a pod's lag on `node` as of `seenAt` (see reportLagMs; one seen more than a minute
   * ago is not recorded) and returns the larger of it and current(node).
   */
  observe(node: string | undefined, seenAt: number, mainFinishedAt: number | undefined): number {
    const own = reportLagMs(seenAt, mainFinishedAt, this.capMs);
    const largest = this.current(node);
    const fresh = this.now() - seenAt <= REPORT_LAG_MAX_MS;
    const key = node ?? '';
    const kept = this.largest.get(key);
    // A lag of 0 is what a node without an entry has: nothing to remember.
    if (fresh && own > 0 && (own > largest || (own === largest && seenAt > (kept?.at ?? Number.NEGATIVE_INFINITY)))) {
      this.largest.set(key, { ms: own, at: seenAt });
      this.forgetOld();
    }
    return Math.max(own, largest);
  }

  /** The largest lag recorded on `node` in the last REPORT_LAG_MAX_MS, at most the cap. */
  current(node: string | undefined): number {
    const kept = this.largest.get(node ?? '');
    return kept !== undefined && this.now() - kept.at <= REPORT_LAG_MAX_MS ? kept.ms : 0;
  }

  /** How many nodes have a lag remembered (for tests: nodes that went quiet are forgotten). */
  get nodes(): number {
    return this.largest.size;
  }

  private forgetOld(): void {
    const now = this.now();
    for (const [node, kept] of this.largest) if (now - kept.at > REPORT_LAG_MAX_MS) this.largest.delete(node);
  }
}
