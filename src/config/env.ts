/**
 * The daemon's configuration, read once from the environment, validated, and frozen.
 * Each option lists its environment variable, default and meaning; every bound is checked here,
 * and an invalid value stops start-up with one line naming the variable, the constraint and the value.
 */

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseLabelSelector, SelectorError } from '../domain/label-selector.ts';
import { DEFAULT_CATALOG_PATH } from './catalog-file.ts';
import { ConfigError, quote } from './errors.ts';

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
  /** DRY_RUN: decide and record only; never exec, port-forward or patch. @default false */
  readonly dryRun: boolean;
  /**
   * EPHEMERAL_SIGNAL_IMAGE: when set, an exec whose command is missing from a distroless image
   * runs in an ephemeral container of this image (pinned by digest). @default unset (off)
   */
  readonly ephemeralSignalImage?: string;
}

const SA_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function defaultNamespace(): string {
  try {
    return readFileSync(SA_NAMESPACE_FILE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

/** A variable's value broke its constraint; the message follows the variable's name. */
class Invalid extends Error {}

type Parser<T> = (raw: string) => T;

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const hostName = /^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$/;
const NAMESPACE_RULE = "namespace names (lowercase letters, digits and '-', at most 63 characters)";

/** Whole numbers only: `0x10`, `1e3`, `1.5`, `+1` and blanks are refused, not coerced. */
function integer(min: number, max: number, range = `from ${min} to ${max}`): Parser<number> {
  return (raw) => {
    const n = /^[0-9]{1,10}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new Invalid(`must be an integer ${range}, got ${quote(raw)}`);
    }
    return n;
  };
}

/** Plain decimal seconds (`2`, `0.5`); `why` says where the bounds come from. */
function seconds(min: number, max: number, why: string): Parser<number> {
  return (raw) => {
    const n = /^[0-9]{1,10}(\.[0-9]{1,6})?$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new Invalid(`must be a number of seconds from ${min} to ${max} (${why}), got ${quote(raw)}`);
    }
    return n;
  };
}

function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (raw) => {
    if (!(values as readonly string[]).includes(raw)) throw new Invalid(`must be one of ${values.join(', ')}, got ${quote(raw)}`);
    return raw as T;
  };
}

const bool: Parser<boolean> = (raw) => {
  if (!['true', 'false', '1', '0', 'yes', 'no'].includes(raw)) throw new Invalid(`must be true or false, got ${quote(raw)}`);
  return raw === 'true' || raw === '1' || raw === 'yes';
};

function text(rule: string, test: (s: string) => boolean = (s) => s.trim() !== ''): Parser<string> {
  return (raw) => {
    if (!test(raw)) throw new Invalid(`must be ${rule}, got ${quote(raw)}`);
    return raw;
  };
}

const namespaceName = (s: string) => s.length <= 63 && dns1123Label.test(s);

const namespaces: Parser<string[]> = (raw) => {
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) throw new Invalid(`must name at least one namespace (unset it to watch all), got ${quote(raw)}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (!namespaceName(n)) throw new Invalid(`must be a comma-separated list of ${NAMESPACE_RULE}, got ${quote(n)} in ${quote(raw)}`);
    if (seen.has(n)) throw new Invalid(`must not list a namespace twice (it would be watched twice), got ${quote(n)} twice in ${quote(raw)}`);
    seen.add(n);
  }
  return names;
};

const host = text('an IP address or a host name', (s) => isIP(s) !== 0 || (s.length <= 253 && hostName.test(s)));

/** A label selector as the API server parses it (a typo stops start-up instead of every list failing). */
const selector: Parser<string> = (raw) => {
  if (raw.trim() === '') throw new Invalid('must be a label selector, got a blank value');
  try {
    parseLabelSelector(raw);
  } catch (err) {
    if (err instanceof SelectorError) throw new Invalid(`must be a label selector: ${err.message}, got ${quote(raw)}`);
    throw err;
  }
  return raw.trim();
};

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const LEASE_WHY = 'below 1 s replicas would send many lease requests per second';

/** Every variable: its parser and default (undefined: derived later). The README's table lists the same. */
const VARIABLES = {
  WATCH_SELECTOR: { parse: selector, default: 'nais.io/naisjob=true' },
  WATCH_NAMESPACES: { parse: namespaces, default: [] as string[] },
  SIDECAR_CATALOG: { parse: text('a file path, not blank'), default: DEFAULT_CATALOG_PATH },
  LOG_LEVEL: { parse: oneOf(LOG_LEVELS), default: 'info' as const },
  METRICS_PORT: { parse: integer(0, 65535, 'from 1 to 65535 (or 0 for a free port)'), default: 8999 },
  METRICS_HOST: { parse: host, default: '0.0.0.0' },
  MAX_CONCURRENT_PODS: { parse: integer(1, 10_000), default: 32 },
  RETRY_BASE_SECONDS: { parse: seconds(1, 3600, 'each retry of a failing pod may post an event'), default: 1 },
  RETRY_MAX_SECONDS: { parse: seconds(1, 86_400, 'a pod is retried at least once a day'), default: 300 },
  VERIFY_TIMEOUT_SECONDS: { parse: seconds(1, 600, 'the API needs time to show a stopped container'), default: 10 },
  SHUTDOWN_GRACE_SECONDS: { parse: seconds(1, 600, "the pod's terminationGracePeriodSeconds must cover it"), default: 20 },
  INSTANCE_NAME: { parse: text('a name, not blank, at most 253 characters', (s) => s.trim() !== '' && s.length <= 253), default: undefined },
  LEADER_ELECT: { parse: bool, default: true },
  LEASE_NAME: {
    parse: text("a DNS-1123 name (lowercase letters, digits, '-' and '.', at most 253 characters)", (s) => s.length <= 253 && dns1123Subdomain.test(s)),
    default: 'hahaha',
  },
  LEASE_NAMESPACE: { parse: text(`one of the ${NAMESPACE_RULE}`, namespaceName), default: undefined },
  LEASE_DURATION_SECONDS: { parse: seconds(1, 3600, `${LEASE_WHY}; above an hour a standby waits too long`), default: 15 },
  RENEW_DEADLINE_SECONDS: { parse: seconds(1, 3600, LEASE_WHY), default: 10 },
  RETRY_PERIOD_SECONDS: { parse: seconds(1, 3600, LEASE_WHY), default: 2 },
  WEBHOOK_ENABLED: { parse: bool, default: false },
  WEBHOOK_PORT: { parse: integer(1, 65535), default: 9443 },
  WEBHOOK_HOST: { parse: host, default: '0.0.0.0' },
  WEBHOOK_CERT_DIR: { parse: text('a directory path, not blank'), default: '/tmp/k8s-webhook-server/serving-certs' },
  DRY_RUN: { parse: bool, default: false },
  EPHEMERAL_SIGNAL_IMAGE: {
    parse: text('an image pinned by digest (name@sha256:<64 hex>)', (s) => /^[^\s@]+@sha256:[0-9a-f]{64}$/.test(s)),
    default: undefined,
  },
} satisfies Record<string, { parse: Parser<unknown>; default: unknown }>;

type Variables = typeof VARIABLES;
type Values = { -readonly [K in keyof Variables]: ReturnType<Variables[K]['parse']> | Variables[K]['default'] };

/** Constraints between variables, each with its reason. */
function crossChecks(v: Values): string[] {
  const problems: string[] = [];
  if (v.RETRY_MAX_SECONDS < v.RETRY_BASE_SECONDS) {
    problems.push(`RETRY_MAX_SECONDS must be at least RETRY_BASE_SECONDS (it caps the doubling delay), got ${v.RETRY_MAX_SECONDS} < ${v.RETRY_BASE_SECONDS}`);
  }
  if (v.LEASE_DURATION_SECONDS <= v.RENEW_DEADLINE_SECONDS) {
    problems.push(
      `LEASE_DURATION_SECONDS must be greater than RENEW_DEADLINE_SECONDS (a leader must stop acting before its lease can pass to another replica), got ${v.LEASE_DURATION_SECONDS} <= ${v.RENEW_DEADLINE_SECONDS}`,
    );
  }
  if (v.RENEW_DEADLINE_SECONDS <= v.RETRY_PERIOD_SECONDS) {
    problems.push(
      `RENEW_DEADLINE_SECONDS must be greater than RETRY_PERIOD_SECONDS (a leader needs more than one renewal try before its deadline), got ${v.RENEW_DEADLINE_SECONDS} <= ${v.RETRY_PERIOD_SECONDS}`,
    );
  }
  if (v.WEBHOOK_ENABLED && v.WEBHOOK_PORT === v.METRICS_PORT) {
    problems.push(`WEBHOOK_PORT must differ from METRICS_PORT (both servers listen), got ${v.WEBHOOK_PORT} for both`);
  }
  return problems;
}

/**
 * Builds the config from an environment. Unknown variables are ignored; known ones that are set
 * but empty count as unset. Throws one ConfigError naming every bad variable, its constraint and
 * the value it got, on one line.
 */
export function loadConfig(env: NodeJS.ProcessEnv, overrides: { catalogPath?: string } = {}): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(VARIABLES) as [string, { parse: Parser<unknown>; default: unknown }][]) {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      values[name] = spec.default;
      continue;
    }
    try {
      values[name] = spec.parse(raw);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      problems.push(`${name} ${err.message}`);
    }
  }
  const c = values as Values;
  if (problems.length === 0) problems.push(...crossChecks(c));
  if (problems.length > 0) {
    throw new ConfigError(`invalid environment: ${problems.join('; ')} (see the Configuration table in the README)`);
  }
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
    dryRun: c.DRY_RUN,
    ...(c.EPHEMERAL_SIGNAL_IMAGE !== undefined && { ephemeralSignalImage: c.EPHEMERAL_SIGNAL_IMAGE }),
  });
}
