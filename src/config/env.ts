/**
 * The daemon's configuration, read once from the environment, validated, and frozen.
 * Each option lists its environment variable, default and meaning.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, DEFAULT_CATALOG_PATH } from './catalog-file.ts';

export interface Config {
  /** WATCH_SELECTOR: label selector of the pods to watch. @default "nais.io/naisjob=true" (HAHAHA's) */
  readonly watchSelector: string;
  /** WATCH_NAMESPACES: comma-separated namespaces to watch. @default "" (all namespaces) */
  readonly watchNamespaces: readonly string[];
  /** SIDECAR_CATALOG (or `--config`): path of the sidecar catalog YAML. @default the bundled config/sidecars.yaml */
  readonly catalogPath: string;
  /** LOG_LEVEL: pino level (trace, debug, info, warn, error, fatal). @default "info" */
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** METRICS_PORT: port of /metrics, /healthz and /readyz. @default 8999 (HAHAHA's) */
  readonly metricsPort: number;
  /** METRICS_HOST: address the metrics server binds. @default "0.0.0.0" */
  readonly metricsHost: string;
  /** MAX_CONCURRENT_PODS: pods handled at once; sidecars of one pod are always handled together. @default 32 */
  readonly maxConcurrentPods: number;
  /** RETRY_BASE_SECONDS: first per-pod retry delay; doubles each failure, with jitter. @default 1 */
  readonly retryBaseSeconds: number;
  /** RETRY_MAX_SECONDS: cap of the per-pod retry delay. @default 300 */
  readonly retryMaxSeconds: number;
  /** VERIFY_TIMEOUT_SECONDS: how long the API may take to show a sidecar terminated after an attempt. @default 10 */
  readonly verifyTimeoutSeconds: number;
  /** SHUTDOWN_GRACE_SECONDS: on SIGTERM, how long in-flight attempts may still run. @default 20 */
  readonly shutdownGraceSeconds: number;
  /** INSTANCE_NAME: this replica's name in events and the lease. @default POD_NAME, else the host name */
  readonly instanceName: string;
  /** LEADER_ELECT: act only while holding the lease, so replicas never act twice. @default true */
  readonly leaderElect: boolean;
  /** LEASE_NAME: name of the coordination.k8s.io Lease. @default "hahaha" */
  readonly leaseName: string;
  /** LEASE_NAMESPACE: namespace of the Lease. @default POD_NAMESPACE, else the service account's, else "default" */
  readonly leaseNamespace: string;
  /** LEASE_DURATION_SECONDS: how long a lease is valid without renewal. @default 15 */
  readonly leaseDurationSeconds: number;
  /** RENEW_DEADLINE_SECONDS: a leader that cannot renew within this stops acting. @default 10 */
  readonly renewDeadlineSeconds: number;
  /** RETRY_PERIOD_SECONDS: how often candidates try to acquire or renew. @default 2 */
  readonly retryPeriodSeconds: number;
  /** WEBHOOK_ENABLED: serve the native sidecar admission webhook (every replica, leader or not). @default false */
  readonly webhookEnabled: boolean;
  /** WEBHOOK_PORT: HTTPS port of the webhook. @default 9443 */
  readonly webhookPort: number;
  /** WEBHOOK_HOST: address the webhook binds. @default "0.0.0.0" */
  readonly webhookHost: string;
  /** WEBHOOK_CERT_DIR: directory with tls.crt and tls.key, re-read when they change. @default "/tmp/k8s-webhook-server/serving-certs" (controller-runtime's) */
  readonly webhookCertDir: string;
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function defaultNamespace(): string {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const seconds = (max: number) => z.coerce.number({ message: 'must be a number' }).positive().max(max);
const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const schema = z
  .strictObject({
    WATCH_SELECTOR: z.string().trim().min(1).default('nais.io/naisjob=true'),
    WATCH_NAMESPACES: z
      .string()
      .default('')
      .transform((s) => s.split(',').map((n) => n.trim()).filter((n) => n !== ''))
      .refine((ns) => ns.every((n) => dns1123.test(n)), 'must be a comma-separated list of namespace names'),
    SIDECAR_CATALOG: z.string().min(1).default(DEFAULT_CATALOG_PATH),
    LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    METRICS_PORT: z.coerce.number({ message: 'must be a number' }).int().min(0).max(65535).default(8999),
    METRICS_HOST: z.string().min(1).default('0.0.0.0'),
    MAX_CONCURRENT_PODS: z.coerce.number({ message: 'must be a number' }).int().min(1).max(10_000).default(32),
    RETRY_BASE_SECONDS: seconds(3600).default(1),
    RETRY_MAX_SECONDS: seconds(86_400).default(300),
    VERIFY_TIMEOUT_SECONDS: seconds(600).default(10),
    SHUTDOWN_GRACE_SECONDS: seconds(600).default(20),
    INSTANCE_NAME: z.string().min(1).optional(),
    LEADER_ELECT: bool.default(true),
    LEASE_NAME: z.string().regex(dns1123, 'must be a DNS-1123 name').default('hahaha'),
    LEASE_NAMESPACE: z.string().regex(dns1123, 'must be a namespace name').optional(),
    LEASE_DURATION_SECONDS: seconds(3600).default(15),
    RENEW_DEADLINE_SECONDS: seconds(3600).default(10),
    RETRY_PERIOD_SECONDS: seconds(3600).default(2),
    WEBHOOK_ENABLED: bool.default(false),
    WEBHOOK_PORT: z.coerce.number({ message: 'must be a number' }).int().min(1).max(65535).default(9443),
    WEBHOOK_HOST: z.string().min(1).default('0.0.0.0'),
    WEBHOOK_CERT_DIR: z.string().min(1).default('/tmp/k8s-webhook-server/serving-certs'),
  })
  .refine((c) => c.RETRY_MAX_SECONDS >= c.RETRY_BASE_SECONDS, {
    message: 'must be at least RETRY_BASE_SECONDS',
    path: ['RETRY_MAX_SECONDS'],
  })
  .refine((c) => c.LEASE_DURATION_SECONDS > c.RENEW_DEADLINE_SECONDS, {
    message: 'must be greater than RENEW_DEADLINE_SECONDS',
    path: ['LEASE_DURATION_SECONDS'],
  })
  .refine((c) => c.RENEW_DEADLINE_SECONDS > c.RETRY_PERIOD_SECONDS, {
    message: 'must be greater than RETRY_PERIOD_SECONDS',
    path: ['RENEW_DEADLINE_SECONDS'],
  });

type Keys = keyof z.input<typeof schema>;
const KEYS: readonly Keys[] = Object.keys(schema.shape) as Keys[];

/**
 * Builds the config from an environment. Unknown variables are ignored; known ones that are set
 * but empty count as unset. Throws ConfigError naming each bad variable and why.
 */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: { catalogPath?: string } = {}): Config {
  const input: Record<string, string> = {};
  for (const key of KEYS) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `environment variable ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c = parsed.data;
  return Object.freeze({
    watchSelector: c.WATCH_SELECTOR,
    watchNamespaces: Object.freeze(c.WATCH_NAMESPACES),
    catalogPath: overrides.catalogPath ?? c.SIDECAR_CATALOG,
    logLevel: c.LOG_LEVEL,
    metricsPort: c.METRICS_PORT,
    metricsHost: c.METRICS_HOST,
    maxConcurrentPods: c.MAX_CONCURRENT_PODS,
    retryBaseSeconds: c.RETRY_BASE_SECONDS,
    retryMaxSeconds: c.RETRY_MAX_SECONDS,
    verifyTimeoutSeconds: c.VERIFY_TIMEOUT_SECONDS,
    shutdownGraceSeconds: c.SHUTDOWN_GRACE_SECONDS,
    instanceName: c.INSTANCE_NAME ?? env.POD_NAME ?? env.HOSTNAME ?? hostname(),
    leaderElect: c.LEADER_ELECT,
    leaseName: c.LEASE_NAME,
    leaseNamespace: c.LEASE_NAMESPACE ?? env.POD_NAMESPACE ?? defaultNamespace(),
    leaseDurationSeconds: c.LEASE_DURATION_SECONDS,
    renewDeadlineSeconds: c.RENEW_DEADLINE_SECONDS,
    retryPeriodSeconds: c.RETRY_PERIOD_SECONDS,
    webhookEnabled: c.WEBHOOK_ENABLED,
    webhookPort: c.WEBHOOK_PORT,
    webhookHost: c.WEBHOOK_HOST,
    webhookCertDir: c.WEBHOOK_CERT_DIR,
  });
}
