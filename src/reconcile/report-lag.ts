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
 * The lags seen lately: in a burst the kubelet falls further behind while the first pods' stops
 * are still being verified, so each pod allows for the largest lag seen in the last minute, its
 * own or another pod's, and a verify still waiting allows for one that grew.
 */
export class ReportLag {
  private readonly capMs: number;
  private readonly now: () => number;
  private largest = { ms: 0, at: Number.NEGATIVE_INFINITY };

  constructor(capMs: number, now: () => number) {
    this.capMs = capMs;
    this.now = now;
  }

  /**
   * Records a pod's lag as of `seenAt` (see reportLagMs; one seen more than a minute ago is not
   * recorded) and returns the larger of it and current().
   */
  observe(seenAt: number, mainFinishedAt: number | undefined): number {
    const own = reportLagMs(seenAt, mainFinishedAt, this.capMs);
    const largest = this.current();
    const fresh = this.now() - seenAt <= REPORT_LAG_MAX_MS;
    if (fresh && (own > largest || (own === largest && seenAt > this.largest.at))) this.largest = { ms: own, at: seenAt };
    return Math.max(own, largest);
  }

  /** The largest lag recorded in the last REPORT_LAG_MAX_MS, at most the cap. */
  current(): number {
    return this.now() - this.largest.at <= REPORT_LAG_MAX_MS ? this.largest.ms : 0;
  }
}
