/**
 * The admission webhook of a hahaha process on the local machine, as the soak and bench:cluster
 * register it: a serving certificate for 127.0.0.1 signed by the local cluster's CA (as
 * scripts/hahaha-up.sh makes it), and the chart's MutatingWebhookConfiguration, rendered by helm,
 * with each webhook pointed at a URL (scripts/local-webhook.mjs) instead of the chart's Service.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** tls.key and tls.crt in `certDir`: an EC key and a certificate for 127.0.0.1 and localhost, signed by `pkiDir`'s ca.crt and ca.key. */
export async function servingCertificate(certDir: string, pkiDir: string): Promise<void> {
  mkdirSync(certDir, { recursive: true });
  await run('bash', [
    '-c',
    `set -euo pipefail
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1/tls.key" 2>/dev/null
    openssl req -new -key "$1/tls.key" -subj "/CN=hahaha-webhook" 2>/dev/null |
      openssl x509 -req -CA "$2/ca.crt" -CAkey "$2/ca.key" -CAcreateserial -days 30 \
        -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n') -out "$1/tls.crt" 2>/dev/null`,
    'certs',
    certDir,
    pkiDir,
  ]);
}

/** One hahaha process's webhook: its URL, and the prefix of its webhooks' names (the first's keep the chart's). */
export interface LocalWebhook {
  readonly name: string;
  readonly url: string;
}

/**
 * The chart's MutatingWebhookConfiguration(s) as a List to apply, rendered with `helmArgs` (e.g.
 * `--set watch.selector=…`), every webhook repeated for each of `targets` and pointed at its URL,
 * trusted through `caFile` (the cluster CA that signed servingCertificate's certificate).
 */
export async function localWebhookConfigurations(
  helmBin: string,
  targets: readonly LocalWebhook[],
  caFile: string,
  helmArgs: readonly string[] = [],
): Promise<{ apiVersion: 'v1'; kind: 'List'; items: any[] }> {
  const [first] = targets;
  if (first === undefined) throw new Error('localWebhookConfigurations: no webhook to point at');
  const rendered = (
    await run(join(helmBin, 'helm'), ['template', 'hahaha', `${ROOT}charts/hahaha`, '--namespace', 'hahaha-system', ...helmArgs], {
      maxBuffer: 16 * 1024 * 1024,
    })
  ).stdout;
  const local = run(process.execPath, [`${ROOT}scripts/local-webhook.mjs`, first.url, caFile], { maxBuffer: 16 * 1024 * 1024 });
  local.child.stdin?.end(rendered);
  const list = JSON.parse((await local).stdout) as { apiVersion: 'v1'; kind: 'List'; items: any[] };
  for (const item of list.items) {
    const base = item.webhooks as any[];
    item.webhooks = targets.flatMap((t, i) =>
      base.map((w) => ({ ...w, name: i === 0 ? w.name : `${t.name}-${w.name}`, clientConfig: { ...w.clientConfig, url: t.url } })),
    );
  }
  return list;
}
