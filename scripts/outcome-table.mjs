#!/usr/bin/env node
// Turns the rows the real-sidecar e2e test wrote ($RUN/outcomes.json, from
// test/e2e/real-sidecars.test.ts) into the README's outcome table, between the markers
// <!-- outcome-table:begin --> and <!-- outcome-table:end -->.
//   node scripts/outcome-table.mjs [outcomes.json]     (default .cluster/outcomes.json)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const file = process.argv[2] ?? `${process.env.HAHAHA_CLUSTER_DIR ?? `${root}.cluster`}/outcomes.json`;
const rows = JSON.parse(readFileSync(file, 'utf8'));
const order = (r) => `${r.sidecar} ${r.flags.includes('converted') ? 'z' : 'a'} ${r.image} ${r.flags}`;
rows.sort((a, b) => order(a).localeCompare(order(b)));
const kind = (image) => (/cloud-sql-proxy:[0-9.]+$|gce-proxy:[0-9.]+$|configmap-reload|linkerd\/proxy|distroless/.test(image) ? 'distroless' : 'with a shell');
const lines = [
  '| sidecar | image | flags / setup | how it was stopped | exit code | Job | s from main exit to Job condition |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.sidecar} | \`${r.image}\` (${kind(r.image)}) | ${r.flags} | ${r.attempt} | ${r.exitCode} | ${r.job} | ${r.seconds} |`),
];
const readme = `${root}README.md`;
const text = readFileSync(readme, 'utf8');
const begin = '<!-- outcome-table:begin -->';
const end = '<!-- outcome-table:end -->';
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < i) {
  process.stderr.write(`README.md has no ${begin} ... ${end} block\n`);
  process.exit(1);
}
writeFileSync(readme, `${text.slice(0, i + begin.length)}\n${lines.join('\n')}\n${text.slice(j)}`);
process.stderr.write(`wrote ${rows.length} rows from ${file} into README.md\n`);
