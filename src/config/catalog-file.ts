/**
 * Loads and validates the sidecar catalog YAML. Every error names the file, the entry and the
 * field, so an operator can fix a ConfigMap without reading code.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import type { Attempt, Catalog, CatalogEntry } from '../domain/catalog.ts';

/** The catalog shipped with hahaha (and, through the Helm chart, its default ConfigMap). */
export const DEFAULT_CATALOG_PATH = fileURLToPath(new URL('../../config/sidecars.yaml', import.meta.url));

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const timeoutSeconds = z.number().positive().max(300).default(5);

const httpAttempt = z.strictObject({
  http: z.strictObject({
    method: z.enum(['GET', 'POST', 'PUT']).default('POST'),
    port: z.number().int().min(1).max(65535),
    path: z.string().startsWith('/'),
    acceptStatus: z.array(z.number().int().min(100).max(599)).nonempty().default([200, 202, 204]),
  }),
  timeoutSeconds,
});

const execAttempt = z.strictObject({
  exec: z.strictObject({
    command: z.array(z.string().min(1)).nonempty(),
  }),
  timeoutSeconds,
});

const entrySchema = z.strictObject({
  name: z.string().min(1),
  containers: z.array(z.string().min(1)).nonempty(),
  image: z
    .string()
    .min(1)
    .refine((s) => {
      try {
        new RegExp(s);
        return true;
      } catch {
        return false;
      }
    }, 'is not a valid regular expression')
    .optional(),
  hint: z.string().min(1).optional(),
  native: z.boolean().default(false),
  attempts: z.array(z.union([httpAttempt, execAttempt])).nonempty(),
});

const fileSchema = z.strictObject({
  sidecars: z.array(entrySchema),
});

function describeIssue(file: string, doc: unknown, issue: z.core.$ZodIssue): string {
  const path = issue.path;
  let where = 'top level';
  if (path[0] === 'sidecars' && typeof path[1] === 'number') {
    const entries = (doc as { sidecars?: unknown[] }).sidecars ?? [];
    const entry = entries[path[1]] as { name?: unknown } | undefined;
    const entryName = typeof entry?.name === 'string' ? `"${entry.name}"` : `#${path[1] + 1}`;
    const field = path.slice(2).map(String).join('.');
    where = `entry ${entryName}${field === '' ? '' : `, field ${field}`}`;
  } else if (path.length > 0) {
    where = `field ${path.map(String).join('.')}`;
  }
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_union') {
    message = 'an attempt needs exactly one of http {method, port, path} or exec {command}, plus optional timeoutSeconds';
  }
  return `${file}: ${where}: ${message}`;
}

/** Validates an already-parsed catalog document. `file` only labels error messages. */
export function parseCatalog(doc: unknown, file: string): Catalog {
  const result = fileSchema.safeParse(doc);
  if (!result.success) {
    const lines = result.error.issues.map((i) => describeIssue(file, doc, i));
    throw new ConfigError(`invalid sidecar catalog:\n  ${lines.join('\n  ')}`);
  }
  const seenNames = new Set<string>();
  const entries: CatalogEntry[] = [];
  for (const e of result.data.sidecars) {
    if (seenNames.has(e.name)) {
      throw new ConfigError(`invalid sidecar catalog:\n  ${file}: entry "${e.name}", field name: duplicate entry name`);
    }
    seenNames.add(e.name);
    const attempts: Attempt[] = e.attempts.map((a) =>
      'http' in a
        ? { kind: 'http', ...a.http, timeoutSeconds: a.timeoutSeconds }
        : { kind: 'exec', command: a.exec.command, timeoutSeconds: a.timeoutSeconds },
    );
    entries.push({
      name: e.name,
      containers: e.containers,
      ...(e.image !== undefined && { image: new RegExp(e.image) }),
      ...(e.hint !== undefined && { hint: e.hint }),
      native: e.native,
      attempts,
    });
  }
  return { entries };
}

/** Reads, parses and validates a catalog file; throws ConfigError naming file, entry and field. */
export function loadCatalog(file: string): Catalog {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read sidecar catalog ${file}: ${(err as Error).message}`);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${file}: not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  return parseCatalog(doc.toJS(), file);
}
