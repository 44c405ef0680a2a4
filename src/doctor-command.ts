/**
 * `hahaha doctor`: reads the cluster with the user's kubeconfig and prints what needs attention
 * (stuck pods, pods predicted to hang or fail, sidecars without a catalog entry, where native
 * sidecars would help, hahaha's RBAC) as tables, or as one JSON object with `-o json`.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CATALOG_PATH, loadCatalog } from './config/catalog-file.ts';
import { ConfigError, oneLine } from './config/errors.ts';
import { formatReport } from './doctor/format.ts';
import { gatherReport } from './doctor/gather.ts';
import { NEEDS_ACTION_MEANS, WEBHOOK_NAME } from './doctor/report.ts';
import { parseLabelSelector } from './domain/label-selector.ts';

const DEFAULTS = {
  selector: 'nais.io/naisjob=true',
  hahahaNamespace: 'hahaha-system',
  serviceAccount: 'hahaha',
  leaseName: 'hahaha',
  stuckAfter: 60,
};

export const DOCTOR_HELP = `Usage: hahaha doctor [-l SELECTOR] [-n NAMESPACE] [-o table|json] [options]

Reads the cluster with your kubeconfig (KUBECONFIG, else ~/.kube/config) and reports:
  - the API server's version, whether it runs native sidecars (Kubernetes 1.29 or newer) and
    whether hahaha's admission webhook (${WEBHOOK_NAME}) is configured;
  - stuck pods: the main container finished, sidecars still run (for how long, which, why);
  - running pods whose sidecars are predicted to hang or fail the Job once the main container ends;
  - sidecars without a catalog entry, by image, with the number of pods;
  - namespaces whose running pods the webhook would have given native sidecars, and pods that
    opted out of it;
  - whether hahaha's ServiceAccount has exactly the RBAC it needs (SubjectAccessReview).
Pods are listed 500 at a time; progress goes to standard error, the report to standard output.

Options:
  -l, --selector SELECTOR       pods to examine (default ${DEFAULTS.selector})
  -n, --namespace NAMESPACE     only this namespace (default: all namespaces)
  -o, --output table|json       the report as tables (default) or as one JSON object
      --stuck-after SECONDS     count a pod as stuck once its main container finished this long
                                ago; sooner, hahaha may still be stopping it (default ${DEFAULTS.stuckAfter})
      --hahaha-namespace NS     where hahaha runs (default ${DEFAULTS.hahahaNamespace})
      --hahaha-service-account SA  its ServiceAccount (default ${DEFAULTS.serviceAccount})
      --lease-name NAME         its leader election Lease (default ${DEFAULTS.leaseName})
      --config FILE             sidecar catalog (default: $SIDECAR_CATALOG, else the shipped one)
  -h, --help                    show this help

Exit codes: 0 nothing needs action, 1 something needs action (${NEEDS_ACTION_MEANS}),
2 bad usage, selector or catalog, 3 no credentials or the cluster cannot be reached or refuses
to list the pods. Without permission to list MutatingWebhookConfigurations or to create
SubjectAccessReviews, doctor says so in the report and goes on.
`;

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SEE_HELP = 'see hahaha doctor --help';

function dnsLabel(flag: string, value: string): string {
  if (value.length > 63 || !NAMESPACE.test(value)) {
    throw new ConfigError(`doctor: ${flag} "${value}" is not a valid name: at most 63 lower-case letters, digits and '-' (${SEE_HELP})`);
  }
  return value;
}

function parseDoctorArgs(args: string[]) {
  try {
    return parseArgs({
      args,
      allowPositionals: false,
      options: {
        selector: { type: 'string', short: 'l', default: DEFAULTS.selector },
        namespace: { type: 'string', short: 'n' },
        output: { type: 'string', short: 'o', default: 'table' },
        'stuck-after': { type: 'string', default: String(DEFAULTS.stuckAfter) },
        'hahaha-namespace': { type: 'string', default: DEFAULTS.hahahaNamespace },
        'hahaha-service-account': { type: 'string', default: DEFAULTS.serviceAccount },
        'lease-name': { type: 'string', default: DEFAULTS.leaseName },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    throw new ConfigError(`doctor: ${oneLine((err as Error).message)} (${SEE_HELP})`);
  }
}

/**
 * Runs `hahaha doctor ARGS`: prints the report and returns 0 (nothing needs action) or 1.
 * Throws ConfigError (exit 2) for bad arguments, ClusterError (exit 3) when the cluster cannot be
 * read; the CLI prints those as one line.
 */
export async function doctorCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const values = parseDoctorArgs(args);
  if (values.help) {
    process.stdout.write(DOCTOR_HELP);
    return 0;
  }
  const output = values.output;
  if (output !== 'table' && output !== 'json') throw new ConfigError(`doctor: --output "${output}" is not table or json (${SEE_HELP})`);
  const selector = values.selector;
  try {
    parseLabelSelector(selector);
  } catch (err) {
    throw new ConfigError(`doctor: --selector "${selector}" is not a label selector: ${oneLine((err as Error).message)} (${SEE_HELP})`);
  }
  const stuckText = values['stuck-after'];
  if (!/^\d{1,7}$/.test(stuckText)) throw new ConfigError(`doctor: --stuck-after "${stuckText}" is not a whole number of seconds (${SEE_HELP})`);
  const namespace = values.namespace === undefined ? undefined : dnsLabel('--namespace', values.namespace);
  const hahaha = {
    namespace: dnsLabel('--hahaha-namespace', values['hahaha-namespace']),
    serviceAccount: values['hahaha-service-account'],
    leaseName: values['lease-name'],
  };
  const catalog = loadCatalog(values.config ?? env.SIDECAR_CATALOG ?? DEFAULT_CATALOG_PATH);

  // Loaded here so that the rest of the CLI does not pay for the Kubernetes client.
  const { loadKubeConfig } = await import('./config/kubeconfig.ts');
  const { DoctorApi } = await import('./kube/doctor-api.ts');
  const { KubeClient } = await import('./kube/kube-client.ts');
  const credentials = loadKubeConfig({ env });
  const report = await gatherReport(new DoctorApi(new KubeClient(credentials.access, { userAgent: 'hahaha-doctor' })), {
    scope: { selector, ...(namespace !== undefined && { namespace }) },
    hahaha,
    catalog,
    stuckAfterSeconds: Number(stuckText),
    now: () => Date.now(),
    progress: (line) => process.stderr.write(`hahaha doctor: ${line}\n`),
  });
  process.stdout.write(output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.needsAction ? 1 : 0;
}
