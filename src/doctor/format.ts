/**
 * The doctor report as text: one titled table per section, then what needs action. Pure.
 */
import type { DoctorReport } from './report.ts';

/** `42s`, `5m07s`, `3h12m`, `2d04h`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor((s % 86_400) / 3600))}h`;
}

/** Columns padded to their widest cell; the last column is not padded (it may be long). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], indent = '  '): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `${indent}${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `key  value` lines, keys padded to the longest. */
function keyValues(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n');
}

function section(title: string, body: string): string {
  return `${title}\n${body}\n`;
}

const none = (what: string) => `  ${what}`;

export function formatReport(r: DoctorReport): string {
  const where = r.scope.namespace === undefined ? 'all namespaces' : `namespace ${r.scope.namespace}`;
  const out: string[] = [];
  out.push(
    `hahaha doctor at ${r.at}: ${r.scope.pods} pod(s) matching ${r.scope.selector} in ${where}` +
      (r.scope.skipped > 0 ? ` (${r.scope.skipped} finished or being deleted, left out)` : '') +
      '\n',
  );

  out.push(
    section(
      'Cluster',
      keyValues([
        ['API server', r.cluster.version],
        ['native sidecars', r.cluster.nativeSidecars ? 'available (Kubernetes 1.29 or newer)' : 'not available (needs Kubernetes 1.29 or newer)'],
        ['hahaha webhook', `${r.cluster.webhook}: ${r.cluster.webhookDetail}`],
      ]),
    ),
  );

  const stuckRows = r.stuck.flatMap((p) =>
    p.sidecars.map((s, i) => [
      i === 0 ? `${p.namespace}/${p.pod}` : '',
      i === 0 ? (p.stuckSeconds === undefined ? 'unknown' : formatDuration(p.stuckSeconds)) : '',
      s.container,
      s.outcome,
      s.fix === undefined ? s.why : `${s.why}; fix: ${s.fix}`,
    ]),
  );
  const recent =
    r.justFinished > 0
      ? `\n  (${r.justFinished} more finished less than ${formatDuration(r.scope.stuckAfterSeconds)} ago: hahaha may still be stopping their sidecars)`
      : '';
  out.push(
    section(
      `Stuck pods: main container finished, sidecars still running (${r.stuck.length})`,
      (stuckRows.length === 0 ? none('none') : table(['POD', 'FOR', 'SIDECAR', 'OUTCOME', 'WHY'], stuckRows)) + recent,
    ),
  );

  out.push(
    section(
      `Running pods predicted to hang or fail their Job (${new Set(r.predicted.map((p) => `${p.namespace}/${p.pod}`)).size})`,
      r.predicted.length === 0
        ? none('none')
        : table(
            ['POD', 'SIDECAR', 'OUTCOME', 'WHY / FIX'],
            r.predicted.map((p) => [
              `${p.namespace}/${p.pod}`,
              p.sidecar,
              p.exitCode === undefined ? p.outcome : `${p.outcome} (${p.exitCode})`,
              p.fix === undefined ? p.why : `${p.why}; fix: ${p.fix}`,
            ]),
          ),
    ),
  );

  out.push(
    section(
      `Sidecars without a catalog entry (${r.unsupported.length} image(s)): nothing stops them`,
      r.unsupported.length === 0
        ? none('none')
        : table(
            ['PODS', 'IMAGE', 'CONTAINERS'],
            r.unsupported.map((u) => [String(u.pods), u.image, u.containers.join(', ')]),
          ),
    ),
  );

  const native = r.native;
  const nativeBody: string[] = [];
  if (native.wouldHelp.length === 0) nativeBody.push(none('no running pod has a sidecar the webhook would make native'));
  else
    nativeBody.push(
      table(
        ['NAMESPACE', 'PODS', 'SIDECARS'],
        native.wouldHelp.map((n) => [n.namespace, String(n.pods), n.sidecars.join(', ')]),
      ),
    );
  if (native.wouldHelp.length > 0 && r.cluster.webhook !== 'present') {
    nativeBody.push("  hahaha's webhook is not configured here: enable it (chart webhook.enabled) to convert them when they are created");
  }
  if (native.optedOut.length > 0) {
    nativeBody.push(`  opted out (hahaha.nais.io/native-sidecars: "false"):`);
    nativeBody.push(
      table(
        ['POD', 'SIDECARS'],
        native.optedOut.map((o) => [`${o.namespace}/${o.pod}`, o.sidecars.join(', ')]),
        '    ',
      ),
    );
  }
  out.push(section('Where native sidecars would help: pods created without the conversion', nativeBody.join('\n')));

  const ignored = Object.entries(r.ignored);
  if (ignored.length > 0) {
    out.push(
      section(
        'Pods hahaha will never act on',
        ignored
          .map(
            ([code, n]) =>
              `  ${n} pod(s): ${code === 'no-main-container' ? 'no main container found (set the app label or hahaha.nais.io/main-containers)' : 'malformed'}`,
          )
          .join('\n'),
      ),
    );
  }

  const rbac = r.rbac;
  const rbacBody: string[] = [];
  if (!rbac.checked) rbacBody.push(`  not checked: ${rbac.why}`);
  else if (rbac.missing.length === 0 && rbac.moreThanNeeded.length === 0) rbacBody.push('  exactly what it needs');
  if (rbac.missing.length > 0)
    rbacBody.push(
      table(
        ['MISSING', 'NEEDED TO'],
        rbac.missing.map((m) => [m.access, m.why]),
      ),
    );
  if (rbac.moreThanNeeded.length > 0)
    rbacBody.push(
      table(
        ['MORE THAN IT NEEDS', 'WHY NOT'],
        rbac.moreThanNeeded.map((m) => [m.access, m.why]),
      ),
    );
  out.push(section(`hahaha's RBAC (${rbac.subject})`, rbacBody.join('\n')));

  out.push(
    r.needsAction
      ? `Needs action: ${r.actions.join(', ')}.\n(Needs action, exit code 1: ${r.needsActionMeans}.)\n`
      : `Nothing needs action (that would be ${r.needsActionMeans}).\n`,
  );
  return out.join('\n');
}
