/**
 * The one place that decides how long to wait before handling a pod again.
 * Exponential backoff from `baseMs`, doubling per consecutive failure, capped at `maxMs`,
 * with "equal jitter" (a random point in the upper half) so retries of many pods spread out.
 */
export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export function retryDelayMs(policy: RetryPolicy, failures: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
