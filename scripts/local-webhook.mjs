#!/usr/bin/env node
// Reads the rendered Helm chart (a multi-document YAML stream) on stdin and prints its
// MutatingWebhookConfiguration(s) as JSON, with every webhook's clientConfig pointed at a URL
// instead of the chart's Service: the local cluster has no Service networking, so the API
// server calls the local hahaha process directly. Everything else (selectors, failurePolicy,
// timeouts, reinvocation) stays exactly as the chart renders it.
//   node scripts/local-webhook.mjs https://127.0.0.1:PORT/mutate-v1-pod CA_FILE < rendered.yaml
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const [url, caFile] = process.argv.slice(2);
if (!url || !caFile) {
  process.stderr.write('usage: local-webhook.mjs URL CA_FILE < rendered.yaml\n');
  process.exit(2);
}
const caBundle = readFileSync(caFile).toString('base64');
const items = parseAllDocuments(readFileSync(0, 'utf8'))
  .map((d) => d.toJS())
  .filter((o) => o?.kind === 'MutatingWebhookConfiguration');
if (items.length === 0) {
  process.stderr.write('the rendered chart has no MutatingWebhookConfiguration (is webhook.enabled false?)\n');
  process.exit(1);
}
for (const item of items) {
  if (item.metadata.annotations) delete item.metadata.annotations['cert-manager.io/inject-ca-from'];
  for (const w of item.webhooks) w.clientConfig = { url, caBundle };
}
process.stdout.write(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
