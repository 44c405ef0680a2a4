/**
 * The `hahaha` command: `run` (the default) starts the daemon; `explain` prints the decision for
 * one pod read as JSON, without a cluster.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { DEFAULT_CATALOG_PATH, loadCatalog } from './config/catalog-file.ts';
import { loadConfig } from './config/env.ts';
import { ConfigError, describeValue, ExitCode, KnownError, oneLine, quote } from './config/errors.ts';
import { kindJson } from './domain/attempt-kinds/index.ts';
import { type Attempt, type Catalog, catalogReads, imageNotMatchedReason } from './domain/catalog.ts';
import { decide } from './domain/decide.ts';
import { conversionPatch, planConversion } from './domain/native-conversion.ts';
import { isMalformed, isObject, parsePod } from './domain/pod-view.ts';
import { predictPod, worstOutcome } from './domain/predict.ts';
import { createLogger } from './log.ts';

const EXIT_CODES = `Exit codes: 0 done, 1 a bug in hahaha (with a stack trace; please report it) or, for doctor,
something needs action, 2 bad usage, input or configuration, 3 no Kubernetes credentials or the
cluster cannot be reached.
`;

const HELP = `hahaha: shuts down the sidecars of Kubernetes Job pods once their main container has exited

Usage:
  hahaha [run] [--config FILE]          start the daemon (watches pods, needs a cluster)
  hahaha explain <FILE|-> [--config FILE] [-o json|ndjson]
                                        what hahaha would do and what will happen to the Job, for a
                                        pod, a List, a Job or a CronJob (JSON or YAML; no cluster)
  hahaha doctor [-l SELECTOR] [-n NAMESPACE] [-o table|json]
                                        report stuck and at-risk job pods, sidecars without a catalog
                                        entry, native sidecar advice and hahaha's RBAC (needs a cluster)
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

const EXPLAIN_HELP = `Usage: hahaha explain <FILE|-> [--config FILE] [-o json|ndjson]

Reads what kubectl prints, JSON or YAML, from FILE or standard input, and prints what hahaha
would do, as JSON:
  - one Pod (kubectl get pod NAME -o json|yaml):
      {"decision":"reap"|"wait"|"ignore","reason":...,
       "targets":[{"container":...,"attempts":[...],"skipped"?:[...],"predicted":{...}}],
       "unsupported":[...],"predicted":{"job":"complete"|"fails-pod"|"hangs"|"unknown","sidecars":[...]}}
    each sidecar's predicted outcome once the main container succeeds: complete, fails-pod (with
    the exit code), hangs or unknown, why, and the fix;
  - a List (kubectl get pods -o json): one decision per item, as a JSON array, or one JSON
    object per line with -o ndjson;
  - a Job or CronJob manifest: its pod template, decided as a pod about to be created.
A pod without status (a manifest, a template) also gets what the admission webhook would do
(assuming Kubernetes 1.29 or newer):
  "convert":[<sidecars made native>],"admission":{"code"?:...,"reason":...,"patch":[<JSONPatch>]}
Needs no cluster. Exit code 0 when decisions were printed, 2 on bad input (not JSON or YAML, not
a Pod, List, Job or CronJob, a malformed pod) or a bad catalog, with one line on standard error.
`;

const ONE_POD = 'pass a pod, a List of pods, a Job or a CronJob, e.g. kubectl get pod NAME -o json';

function attemptJson(a: Attempt) {
  return kindJson(a);
}

/** Reads JSON, or YAML (one document or several, which count as a list). */
function readDocuments(text: string, bad: (why: string, fix?: string) => Error): unknown[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return [JSON.parse(text)];
    } catch (err) {
      throw bad(`is not JSON: ${oneLine((err as Error).message)}`);
    }
  }
  const docs = parseAllDocuments(text, { prettyErrors: false });
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const d of docList) {
    const first = d.errors[0];
    if (first !== undefined) throw bad(`is neither JSON nor YAML: ${oneLine(first.message)}`);
  }
  const values = docList.filter((d) => d.contents !== null).map((d) => d.toJS({ maxAliasCount: 100 }) as unknown);
  if (values.length === 0) throw bad('is empty');
  return values;
}

interface Subject {
  /** How the subject is named in errors: `item 3`, `Job x`. */
  readonly label: string;
  readonly raw: unknown;
}

/** The pods a document stands for: itself, a List's items, or a Job's / CronJob's pod template. */
function subjectsOf(doc: unknown, label: string, bad: (why: string, fix?: string) => Error): Subject[] {
  const at = label === 'input' ? '' : `${label}: `;
  if (Array.isArray(doc)) throw bad(`${at}is not a pod but a JSON array of ${doc.length} item(s)`);
  if (!isObject(doc)) throw bad(`${at}is not a JSON object but ${describeValue(doc)}`);
  const kind = typeof doc.kind === 'string' ? doc.kind : undefined;
  if (kind?.endsWith('List')) {
    if (!Array.isArray(doc.items)) throw bad(`${at}is a ${kind} without items`);
    if (doc.items.length === 0) throw bad(`${at}is a ${kind} with no items`);
    return doc.items.flatMap((item, i) => subjectsOf(item, `item ${i + 1}`, bad));
  }
  if (kind === 'Job' || kind === 'CronJob') {
    const meta = isObject(doc.metadata) ? doc.metadata : {};
    const spec = isObject(doc.spec) ? doc.spec : {};
    const jobSpec = kind === 'CronJob' ? (isObject(spec.jobTemplate) && isObject(spec.jobTemplate.spec) ? spec.jobTemplate.spec : {}) : spec;
    const template = isObject(jobSpec.template) ? jobSpec.template : undefined;
    if (template === undefined)
      throw bad(`${kind} ${String(meta.name ?? '')} has no pod template (spec${kind === 'CronJob' ? '.jobTemplate.spec' : ''}.template)`);
    const tmeta = isObject(template.metadata) ? template.metadata : {};
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...tmeta, namespace: meta.namespace ?? tmeta.namespace, generateName: `${String(meta.name ?? 'job')}-` },
      spec: template.spec,
    };
    return [{ label: `${kind} ${String(meta.name ?? '')}`, raw: pod }];
  }
  return [{ label, raw: doc }];
}

function explainOne(subject: Subject, catalog: Catalog, bad: (why: string, fix?: string) => Error): Record<string, unknown> {
  const raw = subject.raw;
  // A manifest made from a template has only generateName; the webhook fills the name the same way.
  const meta = isObject(raw) && isObject(raw.metadata) ? raw.metadata : undefined;
  const named =
    isObject(raw) && meta !== undefined && raw.status === undefined && meta.name === undefined && typeof meta.generateName === 'string'
      ? { ...raw, metadata: { ...meta, name: `${meta.generateName}<generated>` } }
      : raw;
  const pod = parsePod(named, catalogReads(catalog));
  if (isMalformed(pod)) throw bad(`${subject.label === 'input' ? '' : `${subject.label}: `}is not a valid pod: ${pod.reason}`);
  const d = decide(pod, catalog);
  const prediction = predictPod(pod, catalog);
  const predictedOf = (container: string) => prediction.sidecars.find((s) => s.container === container)?.predicted;
  let out: Record<string, unknown> = {
    ...(subject.label !== 'input' && { subject: subject.label }),
    pod: `${pod.namespace === '' ? '' : `${pod.namespace}/`}${pod.name}`,
  };
  out =
    d.decision === 'reap'
      ? {
          ...out,
          decision: 'reap',
          reason: d.reason,
          targets: d.targets.map((t) => ({
            container: t.container,
            attempts: t.attempts.map(attemptJson),
            ...(t.skipped.length > 0 && { skipped: t.skipped }),
            ...(predictedOf(t.container) !== undefined && { predicted: predictedOf(t.container) }),
          })),
          unsupported: [...d.unsupported],
        }
      : { ...out, decision: d.decision, reason: d.reason, targets: [], unsupported: [] };
  out = { ...out, predicted: prediction };
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
    if (plan.convert) {
      // As created, the converted sidecars are native: the Job's prediction is as they will be.
      const converted = new Set(plan.containers);
      const sidecars = prediction.sidecars.map((s) =>
        converted.has(s.container)
          ? {
              container: s.container,
              predicted: { outcome: 'complete' as const, why: 'made a native sidecar at admission: the kubelet stops it and its exit code does not count' },
            }
          : s,
      );
      out = { ...out, predicted: { job: worstOutcome(sidecars.map((s) => s.predicted)), sidecars } };
    }
  }
  return out;
}

function explain(file: string, catalogPath: string, format: string | undefined): number {
  if (format !== undefined && format !== 'json' && format !== 'ndjson') {
    throw new UsageError(`explain -o must be json or ndjson, got ${quote(format)}`);
  }
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
  const docs = readDocuments(text, bad);
  const several = docs.length > 1 || docs.some((d) => isObject(d) && typeof d.kind === 'string' && d.kind.endsWith('List'));
  const subjects = docs.flatMap((d, i) => subjectsOf(d, docs.length > 1 ? `document ${i + 1}` : 'input', bad));
  const results = subjects.map((s) => explainOne(s, catalog, bad));
  if (!several) process.stdout.write(`${JSON.stringify(results[0], null, 2)}\n`);
  else if (format === 'ndjson') process.stdout.write(results.map((r) => `${JSON.stringify(r)}\n`).join(''));
  else process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
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
  const daemon = await startDaemon(config, log, credentials.access);
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

const OPTIONS = {
  config: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

async function command(argv: string[]): Promise<number> {
  // doctor has flags of its own: it parses them itself. Loaded here so that explain does not pay for the client.
  if (argv[0] === 'doctor') {
    const { doctorCommand } = await import('./doctor-command.ts');
    return await doctorCommand(argv.slice(1), process.env);
  }
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: typeof OPTIONS }>>;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
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
        return explain(rest[0], values.config ?? process.env.SIDECAR_CATALOG ?? DEFAULT_CATALOG_PATH, values.output);
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
