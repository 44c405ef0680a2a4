/**
 * The `hahaha` command: `run` (the default) starts the daemon; `explain` prints the decision for
 * one pod read as JSON, without a cluster.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_CATALOG_PATH, loadCatalog } from './config/catalog-file.ts';
import { loadConfig } from './config/env.ts';
import type { Attempt } from './domain/catalog.ts';
import { decide } from './domain/decide.ts';
import { conversionPatch, planConversion } from './domain/native-conversion.ts';
import { isMalformed, parsePod } from './domain/pod-view.ts';
import { createLogger } from './log.ts';

const HELP = `hahaha: shuts down the sidecars of Kubernetes Job pods once their main container has exited

Usage:
  hahaha [run] [--config FILE]          start the daemon (watches pods, needs a cluster)
  hahaha explain <FILE|-> [--config FILE]  print the decision for one pod (kubectl get pod -o json)
  hahaha --help | --version

Options:
  --config FILE   sidecar catalog (default: $SIDECAR_CATALOG, else ${DEFAULT_CATALOG_PATH})
  -h, --help      show help for the command

Environment (run): WATCH_SELECTOR, WATCH_NAMESPACES, SIDECAR_CATALOG, LOG_LEVEL, METRICS_PORT,
METRICS_HOST, MAX_CONCURRENT_PODS, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS, VERIFY_TIMEOUT_SECONDS,
SHUTDOWN_GRACE_SECONDS, INSTANCE_NAME, LEADER_ELECT, LEASE_NAME, LEASE_NAMESPACE,
LEASE_DURATION_SECONDS, RENEW_DEADLINE_SECONDS, RETRY_PERIOD_SECONDS, WEBHOOK_ENABLED, WEBHOOK_PORT,
WEBHOOK_HOST, WEBHOOK_CERT_DIR, KUBECONFIG.
See the README's configuration reference.
`;

const RUN_HELP = `Usage: hahaha run [--config FILE]

Watches pods matching WATCH_SELECTOR (default nais.io/naisjob=true) and, once a pod's main
container has terminated for good, shuts its remaining sidecars down as the catalog says.
Serves /metrics, /healthz and /readyz on METRICS_PORT (default 8999). Stops on SIGTERM/SIGINT.
Kubernetes credentials: in-cluster service account, else KUBECONFIG or ~/.kube/config.
`;

const EXPLAIN_HELP = `Usage: hahaha explain <FILE|-> [--config FILE]

Reads one Pod as JSON (e.g. kubectl get pod NAME -o json) from FILE or standard input and prints
what hahaha would do with it, as JSON:
  {"decision":"reap"|"wait"|"ignore","reason":...,"targets":[{"container":...,"attempts":[...]}],"unsupported":[...]}
A pod without status (a manifest not yet created) also gets what the admission webhook would do
(assuming Kubernetes 1.29 or newer):
  "convert":[<sidecars made native>],"admission":{"code"?:...,"reason":...,"patch":[<JSONPatch>]}
Needs no cluster. Exit code 0 when a decision was printed, 2 on bad input or config.
`;

function attemptJson(a: Attempt) {
  return a.kind === 'http'
    ? { kind: 'http', method: a.method, port: a.port, path: a.path }
    : { kind: 'exec', command: [...a.command] };
}

function explain(file: string, catalogPath: string): number {
  const catalog = loadCatalog(catalogPath);
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    process.stderr.write(`hahaha explain: cannot read ${file}: ${(err as Error).message}\n`);
    return 2;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    process.stderr.write(`hahaha explain: ${file === '-' ? 'standard input' : file} is not JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const pod = parsePod(raw);
  let out;
  if (isMalformed(pod)) {
    out = { decision: 'ignore', reason: `malformed pod: ${pod.reason}`, targets: [], unsupported: [] };
  } else {
    const d = decide(pod, catalog);
    out =
      d.decision === 'reap'
        ? {
            decision: 'reap',
            reason: d.reason,
            targets: d.targets.map((t) => ({ container: t.container, attempts: t.attempts.map(attemptJson) })),
            unsupported: [...d.unsupported],
          }
        : { decision: d.decision, reason: d.reason, targets: [], unsupported: [] };
  }
  if (isObject(raw) && raw.status === undefined) {
    const plan = planConversion(raw, isObject(raw.metadata) && typeof raw.metadata.namespace === 'string' ? raw.metadata.namespace : 'default', catalog, {
      nativeSidecarsSupported: true,
    });
    out = {
      ...out,
      convert: plan.convert ? [...plan.containers] : [],
      admission: {
        ...(!plan.convert && { code: plan.code }),
        reason: plan.reason,
        ...(plan.kept.length > 0 && { kept: plan.kept }),
        patch: conversionPatch(raw, plan),
      },
    };
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}

async function run(catalogOverride: string | undefined): Promise<number> {
  const config = loadConfig(process.env, catalogOverride === undefined ? {} : { catalogPath: catalogOverride });
  const log = createLogger(config.logLevel, { instance: config.instanceName });
  // Loaded here so that `explain` does not pay for the Kubernetes client.
  const { startDaemon } = await import('./daemon.ts');
  const daemon = await startDaemon(config, log);
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'received signal');
    void daemon.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await daemon.done;
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    process.stderr.write(`hahaha: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command = 'run', ...rest] = positionals;
  if (values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return 0;
  }
  if (command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    switch (command) {
      case 'run':
        if (values.help) {
          process.stdout.write(positionals.length === 0 ? HELP : RUN_HELP);
          return 0;
        }
        if (rest.length > 0) throw new UsageError(`run takes no arguments, got ${rest.join(' ')}`);
        return await run(values.config);
      case 'explain': {
        if (values.help) {
          process.stdout.write(EXPLAIN_HELP);
          return 0;
        }
        if (rest.length !== 1 || rest[0] === undefined) throw new UsageError('explain needs exactly one FILE, or - for standard input');
        return explain(rest[0], values.config ?? process.env.SIDECAR_CATALOG ?? DEFAULT_CATALOG_PATH);
      }
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`hahaha: ${err.message}\n\n${HELP}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`hahaha: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

class UsageError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`hahaha: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
