/**
 * Helpers shared by the chart tests (unit and e2e): the PromQL expressions of the chart's
 * dashboard and alert rules, the metric names they use, and a running hahaha to scrape.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export const REPO = new URL('../../', import.meta.url).pathname;
export const CHART = `${REPO}charts/hahaha`;
export const DASHBOARD = `${CHART}/dashboards/hahaha.json`;
export const RULES = `${CHART}/rules/hahaha.yaml`;

export interface Expression {
  /** Where the expression comes from, for failure messages. */
  readonly where: string;
  readonly expr: string;
}

/** Every PromQL expression of the Grafana dashboard, panel targets and template variables. */
export function dashboardExpressions(dashboard: unknown = JSON.parse(readFileSync(DASHBOARD, 'utf8'))): Expression[] {
  const out: Expression[] = [];
  type Panel = { title?: string; targets?: { expr?: string; refId?: string }[]; panels?: Panel[] };
  const visit = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) {
        if (t.expr !== undefined) out.push({ where: `dashboard panel "${p.title}" ${t.refId ?? ''}`.trim(), expr: t.expr });
      }
      visit(p.panels);
    }
  };
  const d = dashboard as { panels?: Panel[]; templating?: { list?: { name: string; definition?: string }[] } };
  visit(d.panels);
  for (const v of d.templating?.list ?? []) {
    // label_values(<series selector>, <label>) is Grafana's, not PromQL: check its selector.
    const m = /^label_values\((.+),\s*\w+\)$/.exec(v.definition ?? '');
    if (m?.[1] !== undefined) out.push({ where: `dashboard variable $${v.name}`, expr: m[1] });
  }
  return out;
}

/** Every alert expression of rules/hahaha.yaml (Prometheus rule-file format). */
export function ruleExpressions(text: string = readFileSync(RULES, 'utf8')): Expression[] {
  const doc = parseYaml(text) as { groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${g.name}/${r.alert ?? r.record}`, expr: String(r.expr) })));
}

// PromQL words that are not metric names.
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names an expression selects. Strings, label matchers, ranges, grouping clauses and
 * function names are removed first, so what is left are the bare identifiers: metric names.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)) {
    const [, word, call] = m;
    if (word === undefined || call !== undefined || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/**
 * The series names a Prometheus text exposition can contain: each family of a `# TYPE` line,
 * with _bucket, _sum and _count for histograms and summaries (families without samples yet
 * are still announced by prom-client's `# TYPE` lines).
 */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m;
    if (name === undefined) continue;
    names.add(name);
    if (type === 'histogram' || type === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    }
  }
  return names;
}

/** Fails listing every expression that uses a name the scrape does not have. */
export function assertNamesExposed(expressions: Expression[], exposed: Set<string>): void {
  const problems: string[] = [];
  for (const { where, expr } of expressions) {
    const names = metricNamesIn(expr);
    if (names.length === 0) problems.push(`${where}: no metric name found in ${JSON.stringify(expr)}`);
    for (const name of names) {
      if (!exposed.has(name)) problems.push(`${where}: ${name} is not exported by hahaha`);
    }
  }
  assert.deepEqual(problems, []);
}

export interface RunningHahaha {
  readonly port: number;
  readonly child: ChildProcess;
  /** stdout lines so far (JSON logs). */
  readonly logs: string[];
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `node src/cli.ts run` with METRICS_PORT=0 on loopback and resolves once it logged the
 * address it serves on. `env` is added to a minimal environment (PATH, HOME); LOG_LEVEL stays
 * info, since the address comes from the info log. Kills the process if it does not start.
 * `entry` runs another entry point instead (bench/cluster.ts: a compiled copy's bin/hahaha.js,
 * in its own directory, with the image's node flags as `nodeArgs`).
 */
export async function startHahaha(
  env: Record<string, string>,
  timeoutMs = 20_000,
  entry: { script: string; cwd: string; nodeArgs?: readonly string[] } = { script: `${REPO}src/cli.ts`, cwd: REPO },
): Promise<RunningHahaha> {
  const child = spawn(process.execPath, [...(entry.nodeArgs ?? []), entry.script, 'run'], {
    cwd: entry.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', METRICS_HOST: '127.0.0.1', METRICS_PORT: '0', ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hahaha did not start serving in ${timeoutMs} ms; logs:\n${logs.join('\n')}\n${stderr}`));
    }, timeoutMs);
    let buf = '';
    child.stdout?.on('data', (b: Buffer) => {
      buf += b.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        try {
          const rec = JSON.parse(line) as { address?: { port?: number } };
          if (typeof rec.address?.port === 'number') {
            clearTimeout(timer);
            resolve(rec.address.port);
          }
        } catch {
          // not a JSON log line
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`hahaha exited with ${code} before serving; logs:\n${logs.join('\n')}\n${stderr}`));
    });
  });
  return {
    port,
    child,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** GETs a path of a running hahaha's metrics server. */
export async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}
