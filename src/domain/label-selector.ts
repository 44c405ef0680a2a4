/**
 * Label selectors as the API server parses them (k8s.io/apimachinery labels.Parse): a
 * comma-separated list of requirements, each `key`, `!key`, `key=value`, `key==value`,
 * `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key>1` or `key<1`. Pure.
 *
 * hahaha parses WATCH_SELECTOR itself so that a typo stops start-up with the reason instead of
 * the API server refusing every list ("Unknown API Status Code!") while the daemon looks alive.
 */

export type Operator = 'exists' | 'not-exists' | 'equals' | 'not-equals' | 'in' | 'notin' | 'gt' | 'lt';

export interface Requirement {
  readonly key: string;
  readonly op: Operator;
  readonly values: readonly string[];
}

export interface LabelSelector {
  readonly requirements: readonly Requirement[];
  /** Whether a set of labels satisfies every requirement. */
  matches(labels: Readonly<Record<string, string>>): boolean;
}

export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A qualified name: an optional DNS subdomain prefix (<= 253) and `/`, then a name (<= 63). */
export function keyError(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `key "${key}": the prefix must be a DNS subdomain (lower case, at most 253 characters)`;
  }
  if (name.length === 0 || name.length > 63 || !NAME.test(name)) {
    return `key "${key}": the name must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** A label value: empty, or at most 63 characters of the name alphabet. */
export function valueError(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !NAME.test(value)) {
    return `value "${value}": at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Splits on commas that are not inside parentheses. */
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0) throw new SelectorError(`unbalanced ")" at position ${i + 1}`);
  }
  if (depth !== 0) throw new SelectorError('unbalanced "("');
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

function parseRequirement(text: string): Requirement {
  if (text === '') throw new SelectorError('an empty requirement (two commas, or a comma at either end)');
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(text);
  if (set !== null) {
    const [, key = '', op = '', list = ''] = set;
    const values = list.split(',').map((v) => v.trim());
    if (values.length === 1 && values[0] === '') throw new SelectorError(`"${text}": ${op} needs at least one value`);
    return checked({ key, op: op as 'in' | 'notin', values });
  }
  if (text.startsWith('!')) return checked({ key: text.slice(1).trim(), op: 'not-exists', values: [] });
  const cmp = /^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*)$/.exec(text);
  if (cmp !== null) {
    const [, key = '', sym = '', value = ''] = cmp;
    const op: Operator = sym === '!=' ? 'not-equals' : sym === '>' ? 'gt' : sym === '<' ? 'lt' : 'equals';
    if (/[=!<>(),\s]/.test(value)) throw new SelectorError(`"${text}": the value "${value}" is not a single label value`);
    if ((op === 'gt' || op === 'lt') && !/^-?\d+$/.test(value)) throw new SelectorError(`"${text}": ${sym} needs an integer`);
    return checked({ key, op, values: [value] });
  }
  if (/^\S+$/.test(text)) return checked({ key: text, op: 'exists', values: [] });
  throw new SelectorError(`"${text}" is not a requirement (key, !key, key=value, key!=value, key in (...), key notin (...))`);
}

function checked(r: Requirement): Requirement {
  const k = keyError(r.key);
  if (k !== undefined) throw new SelectorError(k);
  if (r.op !== 'gt' && r.op !== 'lt') {
    for (const v of r.values) {
      const e = valueError(v);
      if (e !== undefined) throw new SelectorError(e);
    }
  }
  return r;
}

function satisfies(r: Requirement, labels: Readonly<Record<string, string>>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const v = labels[r.key];
  switch (r.op) {
    case 'exists':
      return has;
    case 'not-exists':
      return !has;
    case 'equals':
    case 'in':
      return has && r.values.includes(v as string);
    case 'not-equals':
    case 'notin':
      return !has || !r.values.includes(v as string);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(v as string)) return false;
      const n = Number(v);
      const bound = Number(r.values[0]);
      return r.op === 'gt' ? n > bound : n < bound;
    }
  }
}

/** Parses a selector; throws SelectorError saying what is wrong. An empty selector matches everything. */
export function parseLabelSelector(text: string): LabelSelector {
  const trimmed = text.trim();
  const requirements = trimmed === '' ? [] : splitRequirements(trimmed).map(parseRequirement);
  return {
    requirements,
    matches: (labels) => requirements.every((r) => satisfies(r, labels)),
  };
}
