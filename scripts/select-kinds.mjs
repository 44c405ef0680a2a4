#!/usr/bin/env node
// Reads a multi-document YAML stream on stdin and prints only the documents of the given kinds.
// Used to apply just the RBAC objects of the rendered Helm chart to the local cluster.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const kinds = new Set(process.argv.slice(2));
const docs = parseAllDocuments(readFileSync(0, 'utf8'));
const kept = docs.filter((d) => d.contents !== null && kinds.has(d.toJS()?.kind));
process.stdout.write(kept.map((d) => d.toString()).join('---\n'));
