/**
 * Loads and validates the sidecar catalog YAML. Every error names the file, the entry, the exact
 * field (`sidecars[2].attempts[0].http.method`), what it must be and what it got, so an operator
 * can fix a ConfigMap without reading code.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RE2JS } from 're2js';
import { LineCounter, parseDocument } from 'yaml';
import { ATTEMPT_KIND_NAMES, ATTEMPT_KINDS } from '../domain/attempt-kinds/index.ts';
import type {
  Attempt,
  AttemptCondition,
  AttemptRules,
  Catalog,
  CatalogEntry,
  ExitDelaySource,
  ImagePattern,
  PortSource,
  SettingSource,
} from '../domain/catalog.ts';
import { MAX_EXIT_DELAY_MS, parseGoDuration } from '../domain/resolve.ts';
import { ConfigError, describeValue, oneLine, quote } from './errors.ts';

export { ConfigError } from './errors.ts';

/** The catalog shipped with hahaha (and, through the Helm chart, its default ConfigMap). */
export const DEFAULT_CATALOG_PATH = fileURLToPath(new URL('../../config/sidecars.yaml', import.meta.url));

/**
 * Largest catalog file read, in bytes. The shipped one is under 6 KiB; a ConfigMap holds at most
 * 1 MiB, and parsing megabytes of YAML takes seconds and hundreds of MB of memory.
 */
export const MAX_CATALOG_BYTES = 256 * 1024;
/** YAML aliases (`*name`) resolved at most; each may expand a whole subtree (a "billion laughs" file). */
export const MAX_YAML_ALIASES = 100;
/** Longest `image` pattern accepted. */
export const MAX_IMAGE_PATTERN_LENGTH = 1000;

const DEFAULT_TIMEOUT_SECONDS = 5;
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** One problem at one place in the document. `path` is like `sidecars[2].attempts[0].http.method`. */
interface Problem {
  readonly path: string;
  readonly message: string;
}

type Json = Record<string, unknown>;

function isMapping(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects problems while walking the document; each check returns the value or undefined. */
class Checker {
  readonly problems: Problem[] = [];

  fail(path: string, message: string): undefined {
    this.problems.push({ path, message });
    return undefined;
  }

  mapping(v: unknown, path: string, keys: readonly string[], what: string): Json | undefined {
    if (!isMapping(v)) return this.fail(path, `must be a mapping (${what}), got ${describeValue(v)}`);
    const unknown = Object.keys(v).filter((k) => !keys.includes(k));
    if (unknown.length > 0) {
      this.fail(path, `unknown field(s) ${unknown.join(', ')}: allowed are ${keys.join(', ')}`);
    }
    return v;
  }

  string(v: unknown, path: string, rule = 'a non-blank string'): string | undefined {
    if (typeof v !== 'string') return this.fail(path, `must be ${rule}, got ${describeValue(v)}`);
    if (v.trim() === '') return this.fail(path, `must be ${rule}, got a blank string`);
    return v;
  }

  integer(v: unknown, path: string, min: number, max: number): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.fail(path, `must be an integer ${min}-${max}, got ${describeValue(v)}`);
    }
    return v;
  }

  describe(v: unknown): string {
    return describeValue(v);
  }

  quote(s: string): string {
    return quote(s);
  }

  list(v: unknown, path: string, rule: string): unknown[] | undefined {
    if (!Array.isArray(v)) return this.fail(path, `must be ${rule}, got ${describeValue(v)}`);
    if (v.length === 0) return this.fail(path, `must be ${rule}, got an empty list`);
    return v;
  }
}

function compileImage(c: Checker, v: unknown, path: string): ImagePattern | undefined {
  const source = c.string(v, path, 'a regular expression (RE2 syntax) as a string');
  if (source === undefined) return undefined;
  if (source.length > MAX_IMAGE_PATTERN_LENGTH) {
    return c.fail(path, `must be at most ${MAX_IMAGE_PATTERN_LENGTH} characters, got ${source.length}`);
  }
  try {
    const re = RE2JS.compile(source);
    return { source, test: (image: string) => re.test(image) };
  } catch (err) {
    return c.fail(
      path,
      `is not a valid regular expression in RE2 syntax (linear-time: no lookaround, no backreferences): ${oneLine((err as Error).message)}, got ${quote(source)}`,
    );
  }
}

function checkTimeout(c: Checker, a: Json, path: string): number | undefined {
  if (a.timeoutSeconds === undefined) return DEFAULT_TIMEOUT_SECONDS;
  const t = a.timeoutSeconds;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 1 || t > 300) {
    return c.fail(
      `${path}.timeoutSeconds`,
      `must be a number of seconds from 1 to 300 (an attempt crosses the API server, which needs about a second), got ${describeValue(t)}`,
    );
  }
  return t;
}

const FLAG = /^--?[A-Za-z0-9][-A-Za-z0-9_.]*$/;

function checkFlag(c: Checker, v: unknown, path: string): string | undefined {
  if (typeof v !== 'string' || !FLAG.test(v)) return c.fail(path, `must be a command-line flag like --quitquitquit, got ${describeValue(v)}`);
  return v;
}

function checkEnvName(c: Checker, v: unknown, path: string): string | undefined {
  if (typeof v !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) return c.fail(path, `must be an environment variable name, got ${describeValue(v)}`);
  return v;
}

function checkAnnotationKey(c: Checker, v: unknown, path: string): string | undefined {
  if (typeof v !== 'string' || !/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(v) || v.length > 316) {
    return c.fail(path, `must be an annotation key like config.linkerd.io/proxy-admin-shutdown, got ${describeValue(v)}`);
  }
  return v;
}

/** `when`: every field given must hold for the attempt to apply. */
function checkCondition(c: Checker, v: unknown, path: string): AttemptCondition | undefined {
  const w = c.mapping(v, path, ['flag', 'noFlag', 'env', 'annotation', 'value'], 'a condition: flag, noFlag, env, annotation, value');
  if (w === undefined) return undefined;
  if (Object.keys(w).length === 0) return c.fail(path, 'must name at least one of flag, noFlag, env, annotation');
  if (w.value !== undefined && w.annotation === undefined) return c.fail(`${path}.value`, "needs annotation (it is the annotation's value)");
  const flag = w.flag === undefined ? undefined : checkFlag(c, w.flag, `${path}.flag`);
  const noFlag = w.noFlag === undefined ? undefined : checkFlag(c, w.noFlag, `${path}.noFlag`);
  const env = w.env === undefined ? undefined : checkEnvName(c, w.env, `${path}.env`);
  const annotation = w.annotation === undefined ? undefined : checkAnnotationKey(c, w.annotation, `${path}.annotation`);
  const value =
    w.value === undefined ? undefined : typeof w.value === 'string' ? w.value : c.fail(`${path}.value`, `must be a string, got ${describeValue(w.value)}`);
  return {
    ...(flag !== undefined && { flag }),
    ...(noFlag !== undefined && { noFlag }),
    ...(env !== undefined && { env }),
    ...(annotation !== undefined && { annotation }),
    ...(value !== undefined && { value }),
  };
}

/**
 * `portFrom`, an `exitDelayFrom` item: where the sidecar's configuration may set a value. `extra`
 * fields are allowed beside them, for the caller to check.
 */
function checkSettingSource(c: Checker, v: unknown, path: string, what: string, extra: readonly string[] = []): SettingSource | undefined {
  const places = ['flag', 'env', 'annotation'];
  const w = c.mapping(v, path, [...places, ...extra], `${what}: ${[...places, ...extra].join(', ')}`);
  if (w === undefined) return undefined;
  if (places.every((k) => w[k] === undefined)) return c.fail(path, 'must name at least one of flag, env, annotation');
  const flag = w.flag === undefined ? undefined : checkFlag(c, w.flag, `${path}.flag`);
  const env = w.env === undefined ? undefined : checkEnvName(c, w.env, `${path}.env`);
  const annotation = w.annotation === undefined ? undefined : checkAnnotationKey(c, w.annotation, `${path}.annotation`);
  return { ...(flag !== undefined && { flag }), ...(env !== undefined && { env }), ...(annotation !== undefined && { annotation }) };
}

/** An `exitDelayFrom` item: a setting source, plus the program's `default` duration when it is unset. */
function checkDelaySource(c: Checker, v: unknown, path: string): ExitDelaySource | undefined {
  const source = checkSettingSource(c, v, path, 'a duration source', ['default']);
  if (!isMapping(v) || v.default === undefined) return source;
  const text = v.default;
  const ms = typeof text === 'string' ? parseGoDuration(text) : undefined;
  if (typeof text !== 'string' || ms === undefined || ms <= 0 || ms > MAX_EXIT_DELAY_MS) {
    return c.fail(`${path}.default`, `must be a Go duration above 0 and at most ${MAX_EXIT_DELAY_MS / 60_000}m (e.g. "2m"), got ${describeValue(text)}`);
  }
  return source === undefined ? undefined : { ...source, default: { ms, text } };
}

function checkRules(c: Checker, a: Json, path: string, kind: Attempt['kind']): AttemptRules {
  const when = a.when === undefined ? undefined : checkCondition(c, a.when, `${path}.when`);
  let portFrom: PortSource | undefined;
  if (a.portFrom !== undefined) {
    portFrom =
      kind === 'http' ? checkSettingSource(c, a.portFrom, `${path}.portFrom`, 'a port source') : c.fail(`${path}.portFrom`, 'applies to http attempts only');
  }
  const exitCode = a.exitCode === undefined ? undefined : c.integer(a.exitCode, `${path}.exitCode`, 0, 255);
  return { ...(when !== undefined && { when }), ...(portFrom !== undefined && { portFrom }), ...(exitCode !== undefined && { exitCode }) };
}

function checkAttempt(c: Checker, v: unknown, path: string): Attempt | undefined {
  const synopses = ATTEMPT_KIND_NAMES.map((k) => ATTEMPT_KINDS[k].synopsis).join(' or ');
  const needs = `an attempt needs exactly one of ${synopses}, plus optional timeoutSeconds, when, portFrom, exitCode`;
  if (!isMapping(v)) return c.fail(path, `${needs}, got ${describeValue(v)}`);
  const present = ATTEMPT_KIND_NAMES.filter((k) => v[k] !== undefined);
  const kind = present[0];
  if (present.length !== 1 || kind === undefined) {
    const keys = Object.keys(v);
    return c.fail(path, `${needs}, got ${keys.length === 0 ? 'an empty mapping' : `field(s) ${keys.join(', ')}`}`);
  }
  const a = c.mapping(v, path, [...ATTEMPT_KIND_NAMES, 'timeoutSeconds', 'when', 'portFrom', 'exitCode'], 'an attempt');
  if (a === undefined) return undefined;
  const timeoutSeconds = checkTimeout(c, a, path);
  const rules = checkRules(c, a, path, kind);
  const own = ATTEMPT_KINDS[kind].parse(a[kind], `${path}.${kind}`, c);
  if (own === undefined || timeoutSeconds === undefined) return undefined;
  return { ...own, timeoutSeconds, ...rules } as Attempt;
}

function checkEntry(c: Checker, v: unknown, path: string): CatalogEntry | undefined {
  const e = c.mapping(v, path, ['name', 'containers', 'image', 'hint', 'native', 'exitDelayFrom', 'attempts'], 'a sidecar entry: name, containers, attempts');
  if (e === undefined) return undefined;
  const before = c.problems.length;
  const name = c.string(e.name, `${path}.name`);
  const list = c.list(e.containers, `${path}.containers`, 'a list of container names');
  const containers = (list ?? []).map((n, i) =>
    typeof n === 'string' && n.length <= 63 && dns1123Label.test(n)
      ? n
      : c.fail(`${path}.containers[${i}]`, `must be a container name (lowercase letters, digits and '-', at most 63 characters), got ${describeValue(n)}`),
  );
  const image = e.image === undefined ? undefined : compileImage(c, e.image, `${path}.image`);
  const hint = e.hint === undefined ? undefined : c.string(e.hint, `${path}.hint`);
  if (e.native !== undefined && typeof e.native !== 'boolean') {
    c.fail(`${path}.native`, `must be true or false, got ${describeValue(e.native)}`);
  }
  const delayRule = 'a list of at most 4 places the sidecar sets how long it keeps running once asked to stop (Go durations, summed)';
  const delays = e.exitDelayFrom === undefined ? undefined : c.list(e.exitDelayFrom, `${path}.exitDelayFrom`, delayRule);
  if (delays !== undefined && delays.length > 4) c.fail(`${path}.exitDelayFrom`, `must be ${delayRule}, got ${delays.length} items`);
  const exitDelayFrom = delays?.map((d, i) => checkDelaySource(c, d, `${path}.exitDelayFrom[${i}]`));
  const attempts = (c.list(e.attempts, `${path}.attempts`, 'a list of attempts, cleanest first') ?? []).map((a, i) =>
    checkAttempt(c, a, `${path}.attempts[${i}]`),
  );
  if (c.problems.length > before || name === undefined) return undefined;
  return {
    name,
    containers: containers as string[],
    ...(image !== undefined && { image }),
    ...(hint !== undefined && { hint }),
    native: e.native === true,
    ...(exitDelayFrom !== undefined && { exitDelayFrom: exitDelayFrom as ExitDelaySource[] }),
    attempts: attempts as Attempt[],
  };
}

/** Refuses duplicate names, and a container claimed again where the earlier entry always wins. */
function checkOverlaps(c: Checker, entries: readonly (CatalogEntry | undefined)[]): void {
  const names = new Map<string, number>();
  const claims = new Map<string, { entry: CatalogEntry; index: number }[]>();
  for (const [index, entry] of entries.entries()) {
    if (entry === undefined) continue;
    const path = `sidecars[${index}]`;
    const earlier = names.get(entry.name);
    if (earlier !== undefined) c.fail(`${path}.name`, `duplicate entry name, already used by sidecars[${earlier}]`);
    else names.set(entry.name, index);
    for (const [i, container] of entry.containers.entries()) {
      const before = claims.get(container) ?? [];
      if (entry.containers.indexOf(container) !== i) {
        c.fail(`${path}.containers[${i}]`, `lists container ${quote(container)} twice`);
        continue;
      }
      const shadow = before.find((b) => b.entry.image === undefined || b.entry.image.source === entry.image?.source);
      if (shadow !== undefined) {
        const why = shadow.entry.image === undefined ? 'which has no image pattern' : 'with the same image pattern';
        c.fail(
          `${path}.containers[${i}]`,
          `container ${quote(container)} is already claimed by entry ${quote(shadow.entry.name)} (sidecars[${shadow.index}]), ${why}, so this entry would never be used for it (give the earlier entry a distinguishing image pattern, or merge the two)`,
        );
      }
      claims.set(container, [...before, { entry, index }]);
    }
  }
}

function describeProblem(file: string, doc: unknown, p: Problem): string {
  const m = /^sidecars\[(\d+)\]\.?(.*)$/.exec(p.path);
  if (m === null) return `${file}: ${p.path === '' ? 'top level' : `field ${p.path}`}: ${p.message}`;
  const index = Number(m[1]);
  const raw = isMapping(doc) && Array.isArray(doc.sidecars) ? doc.sidecars[index] : undefined;
  const entry = isMapping(raw) && typeof raw.name === 'string' && raw.name.trim() !== '' ? `"${raw.name}"` : `#${index + 1}`;
  const field = m[2] === '' ? '' : `, field ${m[2]}`;
  return `${file}: entry ${entry}${field} (${p.path}): ${p.message}`;
}

/** At most this many problems are listed in the one-line error; the rest are counted. */
const MAX_LISTED = 5;

/** Validates an already-parsed catalog document. `file` only labels error messages. */
export function parseCatalog(doc: unknown, file: string): Catalog {
  const c = new Checker();
  const top = c.mapping(doc, '', ['distrolessImages', 'sidecars'], 'with a sidecars list');
  const list =
    top === undefined
      ? undefined
      : Array.isArray(top.sidecars)
        ? top.sidecars
        : c.fail('sidecars', `must be a list of sidecar entries, got ${describeValue(top.sidecars)}`);
  const entries = (list ?? []).map((e, i) => checkEntry(c, e, `sidecars[${i}]`));
  let distrolessImages: ImagePattern[] | undefined;
  if (top?.distrolessImages !== undefined) {
    const patterns = c.list(top.distrolessImages, 'distrolessImages', 'a list of image patterns (RE2 syntax)') ?? [];
    distrolessImages = patterns.map((p, i) => compileImage(c, p, `distrolessImages[${i}]`)).filter((p) => p !== undefined);
  }
  if (c.problems.length === 0) checkOverlaps(c, entries);
  if (c.problems.length > 0) {
    const listed = c.problems.slice(0, MAX_LISTED).map((p) => describeProblem(file, doc, p));
    const more = c.problems.length - listed.length;
    throw new ConfigError(
      `invalid sidecar catalog: ${listed.join('; ')}${more > 0 ? `; and ${more} more` : ''} (fix the file; the README's "The sidecar catalog" shows the format)`,
    );
  }
  return { entries: entries as CatalogEntry[], ...(distrolessImages !== undefined && { distrolessImages }) };
}

/** Reads, parses and validates a catalog file; throws ConfigError naming file, entry and field. */
export function loadCatalog(file: string): Catalog {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : oneLine((err as Error).message);
    throw new ConfigError(`cannot read sidecar catalog ${file}: ${why} (set SIDECAR_CATALOG or --config to a readable catalog file)`);
  }
  if (bytes.length > MAX_CATALOG_BYTES) {
    throw new ConfigError(
      `sidecar catalog ${file}: too large: ${bytes.length} bytes, the limit is ${MAX_CATALOG_BYTES} (256 KiB; the shipped catalog is under 6 KiB: list only the sidecars you run)`,
    );
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(bytes.toString('utf8'), { prettyErrors: false, lineCounter });
  const first = doc.errors[0];
  if (first !== undefined) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    throw new ConfigError(`sidecar catalog ${file}: not valid YAML at line ${line}, column ${col}: ${oneLine(first.message)} (fix the YAML syntax)`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    throw new ConfigError(
      `sidecar catalog ${file}: YAML aliases expand too much: ${oneLine((err as Error).message)} (write the entries out; at most ${MAX_YAML_ALIASES} alias uses)`,
    );
  }
  return parseCatalog(value, file);
}
