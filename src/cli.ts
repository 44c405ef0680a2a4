/**
 * The `hahaha` command: `run` (the default) starts the daemon; `explain` prints the decision for
 * one pod read as JSON, without a cluster.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CATALOG_PATH, loadCatalog } from './config/catalog-file.ts';
import { loadConfig } from './config/env.ts';
import { ConfigError, ExitCode, KnownError, oneLine } from './config/errors.ts';
import { type Attempt, annotationsRead, imageNotMatchedReason } from './domain/catalog.ts';
import { decide } from './domain/decide.ts';
import { conversionPatch, planConversion } from './domain/native-conversion.ts';
import { isMalformed, parsePod } from './domain/pod-view.ts';
import { createLogger } from './log.ts';

const EXIT_CODES = `Exit codes: 0 done, 1 a bug in hahaha (with a stack trace; please report it), 2 bad usage,
input or configuration, 3 no Kubernetes credentials or the cluster cannot be reached.
`;

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

${EXIT_CODES}`;

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
Needs no cluster. Exit code 0 when a decision was printed, 2 on bad input (not JSON, not one
Pod, a malformed pod) or a bad catalog, with one line on standard error saying why.
`;

const ONE_POD = 'pass one pod, e.g. kubectl get pod NAME -o json';

function attemptJson(a: Attempt) {
  return a.kind === 'http'
    ? { kind: 'http', method: a.method, port: a.port, path: a.path }
    : { kind: 'exec', command: [...a.command] };
}

function explain(file: string, catalogPath: string): number {
  const catalog = loadCatalog(catalogPath);
  const input = file === '-' ? 'standard input' : file;
  const bad = (why: string, fix = ONE_POD) => new ConfigError(`explain ${input}: ${why} (${fix})`);
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : oneLine((err as Error).message);
    throw bad(`cannot read: ${why}`, `${ONE_POD}, as a file or - for standard input`);
  }
  if (text.trim() === '') throw bad('is empty');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw bad(`is not JSON: ${oneLine((err as Error).message)}`, `${ONE_POD}; YAML is not read`);
  }
  if (Array.isArray(raw)) throw bad(`is not a pod but a JSON array of ${raw.length} item(s)`);
  if (isObject(raw) && typeof raw.kind === 'string' && raw.kind.endsWith('List')) throw bad(`is not a pod but a ${raw.kind}`);
  // A manifest made from a template has only generateName; the webhook fills the name the same way.
  const meta = isObject(raw) && isObject(raw.metadata) ? raw.metadata : undefined;
  const named =
    isObject(raw) && meta !== undefined && raw.status === undefined && meta.name === undefined && typeof meta.generateName === 'string'
      ? { ...raw, metadata: { ...meta, name: `${meta.generateName}<generated>` } }
      : raw;
  const pod = parsePod(named, { annotations: annotationsRead(catalog) });
  if (isMalformed(pod)) throw bad(`is not a valid pod: ${pod.reason}`);
  const d = decide(pod, catalog);
  let out: Record<string, unknown> =
    d.decision === 'reap'
      ? {
          decision: 'reap',
          reason: d.reason,
          targets: d.targets.map((t) => ({
            container: t.container,
            attempts: t.attempts.map(attemptJson),
            ...(t.skipped.length > 0 && { skipped: t.skipped }),
          })),
          unsupported: [...d.unsupported],
        }
      : { decision: d.decision, reason: d.reason, targets: [], unsupported: [] };
  const notes = pod.containers.map((c) => imageNotMatchedReason(catalog, c)).filter((n) => n !== undefined);
  if (notes.length > 0) out = { ...out, notes };
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
  const { loadKubeConfig } = await import('./config/kubeconfig.ts');
  const credentials = loadKubeConfig({ env: process.env });
  log.info({ credentials: credentials.source, context: credentials.context, server: credentials.server }, 'using Kubernetes credentials');
  const { startDaemon } = await import('./daemon.ts');
  const daemon = await startDaemon(config, log, credentials.kubeConfig);
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'received signal');
    void daemon.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  await daemon.done;
  return 0;
}

/**
 * Runs one `hahaha` command and returns its exit code; never throws. A known failure prints one
 * line `hahaha: <what>: <why> (<fix>)` to standard error; anything else is a bug and prints its
 * stack, then a request to report it. See {@link ExitCode}.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await command(argv);
  } catch (err) {
    return reportFailure(err);
  }
}

/** Prints a failure the way {@link main} promises and returns its exit code. */
export function reportFailure(err: unknown): number {
  if (err instanceof KnownError) {
    process.stderr.write(`hahaha: ${err.message}\n`);
    return err.exitCode;
  }
  const detail = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  process.stderr.write(
    `hahaha: unexpected error, a bug in hahaha:\n${detail}\nhahaha: please report it to the hahaha maintainers with the command you ran, the output above and hahaha --version\n`,
  );
  return ExitCode.bug;
}

async function command(argv: string[]): Promise<number> {
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
    process.stderr.write(`hahaha: ${oneLine((err as Error).message)} (see hahaha --help)\n`);
    return ExitCode.config;
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
      process.stderr.write(`hahaha: ${err.message} (see hahaha --help)\n`);
      return ExitCode.config;
    }
    throw err;
  }
}

class UsageError extends Error {}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Runs {@link main} as the process: a failure exits at once, even with servers still open; after
 * `run` stopped cleanly or `explain` printed, the process ends on its own.
 */
export async function runProcess(argv: string[]): Promise<void> {
  const fatal = (err: unknown) => process.exit(reportFailure(err));
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  const code = await main(argv);
  if (code !== ExitCode.ok) process.exit(code);
  process.exitCode = code;
}

if (import.meta.main) await runProcess(process.argv.slice(2));
