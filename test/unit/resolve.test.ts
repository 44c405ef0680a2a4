import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import type { Attempt, Catalog, CatalogEntry } from '../../src/domain/catalog.ts';
import { predictSidecar, worstOutcome } from '../../src/domain/predict.ts';
import { conditionUnmet, exitDelay, flagValue, MAX_EXIT_DELAY_MS, parseGoDuration, portFrom, resolveAttempts } from '../../src/domain/resolve.ts';
import { container, pod as podOf, withApp } from './pod-fixtures.ts';

const http = (port: number, path: string, extra: Partial<Attempt> = {}): Attempt =>
  ({ kind: 'http', method: 'POST', port, path, acceptStatus: [200], timeoutSeconds: 5, ...extra }) as Attempt;
const exec = (command: string[], extra: Partial<Attempt> = {}): Attempt => ({ kind: 'exec', command, timeoutSeconds: 5, ...extra }) as Attempt;
const entry = (name: string, containers: string[], attempts: Attempt[], extra: Partial<CatalogEntry> = {}): CatalogEntry => ({
  name,
  containers,
  attempts,
  native: false,
  ...extra,
});
const literal = (prefix: string) => ({ source: prefix, test: (image: string) => image.startsWith(prefix) });

/** The shipped catalog's rules for the sidecars measured with the real programs. */
const catalog: Catalog = {
  distrolessImages: [literal('gcr.io/distroless/'), literal('cr.l5d.io/linkerd/proxy'), literal('ghcr.io/jimmidyson/configmap-reload')],
  entries: [
    entry(
      'linkerd',
      ['linkerd-proxy'],
      [http(4191, '/shutdown', { when: { annotation: 'config.linkerd.io/proxy-admin-shutdown', value: 'enabled' }, exitCode: 0 })],
      { hint: 'annotate config.linkerd.io/proxy-admin-shutdown: enabled' },
    ),
    entry(
      'cloud-sql-proxy',
      ['cloud-sql-proxy'],
      [
        http(9091, '/quitquitquit', {
          when: { flag: '--quitquitquit', env: 'CSQL_PROXY_QUITQUITQUIT' },
          portFrom: { flag: '--admin-port', env: 'CSQL_PROXY_ADMIN_PORT' },
          exitCode: 0,
        }),
        exec(['/bin/kill', '-s', 'TERM', '1'], { when: { flag: '--exit-zero-on-sigterm' }, exitCode: 0 }),
        exec(['/bin/kill', '-s', 'INT', '1'], { exitCode: 130 }),
      ],
      { native: true, hint: 'start it with --quitquitquit' },
    ),
    entry('configmap-reload', ['secure-logs-configmap-reload'], [exec(['/bin/killall', 'configmap-reload'], { exitCode: 2 })], { native: true }),
    entry('vks', ['vks-sidecar'], [exec(['/bin/kill', '-s', 'INT', '1'], { exitCode: 0 })]),
    entry('fluentd', ['secure-logs-fluentd'], [http(24444, '/api/processes.killWorkers')]),
  ],
};

const csql = (...argv: string[]) => ({
  name: 'cloud-sql-proxy',
  image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-alpine',
  argv: ['/cloud-sql-proxy', ...argv],
});

describe('flagValue', () => {
  const argv = ['/bin/x', '--quitquitquit', '--admin-port', '9092', '--port=5432', '-v', 'proj:region:inst'];
  for (const [flag, want] of [
    ['--quitquitquit', true],
    ['--admin-port', '9092'],
    ['--port', '5432'],
    ['--v', 'proj:region:inst'],
    ['--missing', undefined],
  ] as const) {
    it(`${flag} → ${String(want)}`, () => assert.equal(flagValue(argv, flag), want));
  }
  it('stops at --', () => assert.equal(flagValue(['x', '--', '--quitquitquit'], '--quitquitquit'), undefined));
});

describe('conditions and ports', () => {
  it('a flag, or its environment variable', () => {
    const when = { flag: '--quitquitquit', env: 'CSQL_PROXY_QUITQUITQUIT' };
    assert.equal(conditionUnmet(when, { container: csql('--quitquitquit'), annotations: {} }), undefined);
    assert.equal(conditionUnmet(when, { container: { ...csql(), env: { CSQL_PROXY_QUITQUITQUIT: 'true' } }, annotations: {} }), undefined);
    assert.match(conditionUnmet(when, { container: csql(), annotations: {} }) ?? '', /not started with --quitquitquit \(nor CSQL_PROXY_QUITQUITQUIT=true\)/);
    assert.match(conditionUnmet(when, { container: csql('--quitquitquit=false'), annotations: {} }) ?? '', /not started with/);
  });
  it('an annotation with a value', () => {
    const when = { annotation: 'config.linkerd.io/proxy-admin-shutdown', value: 'enabled' };
    const c = { name: 'linkerd-proxy', image: 'cr.l5d.io/linkerd/proxy:edge' };
    assert.equal(conditionUnmet(when, { container: c, annotations: { 'config.linkerd.io/proxy-admin-shutdown': 'enabled' } }), undefined);
    assert.match(conditionUnmet(when, { container: c, annotations: {} }) ?? '', /no annotation config.linkerd.io\/proxy-admin-shutdown: enabled/);
  });
  it('a port from a flag or env, else none', () => {
    const source = { flag: '--admin-port', env: 'CSQL_PROXY_ADMIN_PORT' };
    assert.equal(portFrom(source, { container: csql('--admin-port', '9092'), annotations: {} }), 9092);
    assert.equal(portFrom(source, { container: csql('--admin-port=9093'), annotations: {} }), 9093);
    assert.equal(portFrom(source, { container: { ...csql(), env: { CSQL_PROXY_ADMIN_PORT: '9094' } }, annotations: {} }), 9094);
    assert.equal(portFrom(source, { container: csql('--admin-port', '99999'), annotations: {} }), undefined);
    assert.equal(portFrom(source, { container: csql(), annotations: {} }), undefined);
  });
});

describe('exit delay from the sidecar configuration', () => {
  it('reads Go durations as time.ParseDuration does, in ms', () => {
    const cases: [string, number | undefined][] = [
      ['15s', 15_000],
      ['1m30s', 90_000],
      ['1.5h', 5_400_000],
      ['500ms', 500],
      ['.5s', 500],
      ['0', 0],
      ['+2s', 2000],
      ['15', undefined],
      ['-5s', undefined],
      ['5 s', undefined],
      ['5x', undefined],
      ['', undefined],
      ['s', undefined],
    ];
    for (const [text, ms] of cases) assert.equal(parseGoDuration(text), ms, text);
  });

  const delays = entry('cloud-sql-proxy', ['cloud-sql-proxy'], [http(9091, '/quitquitquit')], {
    exitDelayFrom: [
      { flag: '--min-sigterm-delay', env: 'CSQL_PROXY_MIN_SIGTERM_DELAY' },
      { flag: '--max-sigterm-delay', env: 'CSQL_PROXY_MAX_SIGTERM_DELAY' },
    ],
  });
  const of = (c: ReturnType<typeof csql> & { env?: Record<string, string> }) => exitDelay(delays, { container: c, annotations: {} });
  it('sums what the flags or env set, saying where each came from', () => {
    assert.deepEqual(of(csql('--min-sigterm-delay=15s')), { ms: 15_000, from: '--min-sigterm-delay=15s' });
    assert.deepEqual(of(csql('--min-sigterm-delay', '10s', '--max-sigterm-delay=1m')), {
      ms: 70_000,
      from: '--min-sigterm-delay=10s, --max-sigterm-delay=1m',
    });
    assert.deepEqual(of({ ...csql(), env: { CSQL_PROXY_MIN_SIGTERM_DELAY: '3s' } }), { ms: 3000, from: 'CSQL_PROXY_MIN_SIGTERM_DELAY=3s' });
  });
  it('none set, zero, or not a duration: no delay; a value that is not one falls through to the next place', () => {
    assert.equal(of(csql('--quitquitquit')), undefined);
    assert.equal(of(csql('--min-sigterm-delay=0s')), undefined);
    assert.equal(of(csql('--min-sigterm-delay=100ns')), undefined);
    assert.equal(of(csql('--min-sigterm-delay', '--quitquitquit')), undefined);
    assert.equal(of(csql('--min-sigterm-delay=soon')), undefined);
    assert.deepEqual(of({ ...csql('--min-sigterm-delay=soon'), env: { CSQL_PROXY_MIN_SIGTERM_DELAY: '2s' } }), {
      ms: 2000,
      from: 'CSQL_PROXY_MIN_SIGTERM_DELAY=2s',
    });
  });
  it('at most MAX_EXIT_DELAY_MS, whatever the configuration says', () => {
    assert.equal(of(csql('--max-sigterm-delay=24h'))?.ms, MAX_EXIT_DELAY_MS);
  });
  it("a place unset falls back to the program's own default, said as such; a value set, zero included, wins", () => {
    const linkerd = entry('linkerd', ['linkerd-proxy'], [http(4191, '/shutdown')], {
      exitDelayFrom: [{ env: 'LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD', default: { ms: 120_000, text: '2m' } }],
    });
    const proxy = (env?: Record<string, string>) =>
      exitDelay(linkerd, { container: { name: 'linkerd-proxy', image: 'l5d', ...(env && { env }) }, annotations: {} });
    assert.deepEqual(proxy(), { ms: 120_000, from: 'LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD (unset: 2m by default)' });
    assert.deepEqual(proxy({ LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD: '30s' }), { ms: 30_000, from: 'LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD=30s' });
    assert.equal(proxy({ LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD: '0s' }), undefined);
    assert.deepEqual(proxy({ LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD: 'soon' }), {
      ms: 120_000,
      from: 'LINKERD2_PROXY_SHUTDOWN_GRACE_PERIOD (unset: 2m by default)',
    });
  });
  it('explain says the sidecar is waited for', () => {
    const cat: Catalog = { entries: [{ ...delays, attempts: [http(9091, '/quitquitquit', { exitCode: 0 })] }] };
    const p = predictSidecar(podOf('p', withApp('job'), container('job')), csql('--min-sigterm-delay=15s') as never, cat);
    assert.equal(p.outcome, 'complete');
    assert.match(p.why, /it may keep running up to 15s after the ask, by its --min-sigterm-delay=15s; hahaha waits for it/);
  });
});

describe('resolveAttempts', () => {
  const csqlEntry = catalog.entries[1] as CatalogEntry;
  it('cloud-sql-proxy with --quitquitquit on a custom admin port: that port first', () => {
    const r = resolveAttempts(csqlEntry, { container: csql('--quitquitquit', '--admin-port', '9092'), annotations: {} }, catalog);
    assert.deepEqual(
      r.attempts.map((a) => (a.kind === 'http' ? `http :${a.port}` : `exec ${a.command.join(' ')}`)),
      ['http :9092', 'exec /bin/kill -s INT 1'],
    );
    assert.deepEqual(
      r.skipped.map((s) => s.attempt),
      ['exec /bin/kill -s TERM 1'],
    );
  });
  it('a distroless image skips exec attempts, unless ephemeral containers are enabled', () => {
    const c = { ...csql(), image: 'gcr.io/distroless/static' };
    assert.deepEqual(resolveAttempts(csqlEntry, { container: c, annotations: {} }, catalog).attempts, []);
    assert.equal(resolveAttempts(csqlEntry, { container: c, annotations: {} }, catalog, { ephemeralSignal: true }).attempts.length, 1);
  });
});

describe('predictSidecar (the cases measured with the real programs)', () => {
  const pod = podOf('p', withApp('job'), container('job'));
  const cases: [string, Record<string, unknown>, string, number | undefined][] = [
    ['cloud-sql-proxy v2 with --quitquitquit', csql('--quitquitquit'), 'complete', 0],
    ['cloud-sql-proxy v2 without --quitquitquit (SIGINT: 130)', csql(), 'fails-pod', 130],
    ['cloud-sql-proxy v2 with --exit-zero-on-sigterm (SIGTERM chosen: 0)', csql('--exit-zero-on-sigterm'), 'complete', 0],
    ['cloud-sql-proxy v2 default (distroless) image without the flag', { ...csql(), image: 'gcr.io/distroless/static' }, 'hangs', undefined],
    ['configmap-reload (killall: 2)', { name: 'secure-logs-configmap-reload', image: 'example/cmr:1' }, 'fails-pod', 2],
    [
      'configmap-reload in its distroless image',
      { name: 'secure-logs-configmap-reload', image: 'ghcr.io/jimmidyson/configmap-reload:v0.12.0' },
      'hangs',
      undefined,
    ],
    ['linkerd without the shutdown annotation', { name: 'linkerd-proxy', image: 'cr.l5d.io/linkerd/proxy:edge' }, 'hangs', undefined],
    ['vks-sidecar with kill in its image', { name: 'vks-sidecar', image: 'example/vks:1' }, 'complete', 0],
    ['vks-sidecar in a distroless image (exec only)', { name: 'vks-sidecar', image: 'gcr.io/distroless/base' }, 'hangs', undefined],
    ['fluentd (exit code not measured)', { name: 'secure-logs-fluentd', image: 'fluentd' }, 'unknown', undefined],
    ['an unknown sidecar', { name: 'datadog-agent', image: 'datadog/agent' }, 'hangs', undefined],
    ['a native sidecar', { name: 'datadog-agent', image: 'datadog/agent', restartPolicy: 'Always' }, 'complete', undefined],
  ];
  for (const [name, container, outcome, exitCode] of cases) {
    it(`${name} → ${outcome}${exitCode === undefined ? '' : ` (${exitCode})`}`, () => {
      const p = predictSidecar(pod, container as never, catalog);
      assert.equal(p.outcome, outcome, p.why);
      assert.equal(p.exitCode, exitCode);
      if (outcome !== 'complete') assert.ok(p.fix !== undefined || outcome === 'unknown', 'a fix is offered');
    });
  }
  it('linkerd with the annotation completes', () => {
    const annotated = { ...pod, annotations: { 'config.linkerd.io/proxy-admin-shutdown': 'enabled' } };
    assert.equal(predictSidecar(annotated, { name: 'linkerd-proxy', image: 'cr.l5d.io/linkerd/proxy:edge' }, catalog).outcome, 'complete');
  });
  it('the Job is as bad as its worst sidecar', () => {
    assert.equal(
      worstOutcome([
        { outcome: 'complete', why: '' },
        { outcome: 'fails-pod', why: '' },
      ]),
      'fails-pod',
    );
    assert.equal(
      worstOutcome([
        { outcome: 'unknown', why: '' },
        { outcome: 'hangs', why: '' },
      ]),
      'hangs',
    );
    assert.equal(worstOutcome([]), 'complete');
  });
});

describe('the shipped catalog and the v1 proxy (gce-proxy), as measured with v1.37.4 and v1.38.5', () => {
  const shipped = loadCatalog(DEFAULT_CATALOG_PATH);
  const job = podOf('p', withApp('job'), container('job'));
  const v1 = (image: string, ...argv: string[]) => ({ name: 'cloudsql-proxy', image, argv: ['/cloud_sql_proxy', '-instances=p:r:i=tcp:5432', ...argv] });
  it('its own entry, not the v2 one: SIGTERM gives exit 0 in an image with kill', () => {
    const p = predictSidecar(job, v1('gcr.io/cloudsql-docker/gce-proxy:1.37.4-alpine') as never, shipped);
    assert.deepEqual([p.outcome, p.exitCode, p.why], ['complete', 0, 'exec /bin/kill -s TERM 1 stops it with exit code 0']);
  });
  it('its default image is distroless: nothing applies, and the fix says what would', () => {
    const p = predictSidecar(job, v1('eu.gcr.io/cloudsql-docker/gce-proxy:1.37.4') as never, shipped);
    assert.equal(p.outcome, 'hangs');
    assert.match(p.why, /image eu.gcr.io\/cloudsql-docker\/gce-proxy:1.37.4 is distroless/);
    assert.equal(
      p.fix,
      'the v1 proxy has no shutdown endpoint and its default image has no kill: use a -alpine, -buster or -bullseye tag, or move to v2 with --quitquitquit; or let hahaha make it a native sidecar (remove the opt-out)',
    );
  });
  it('-term_timeout is waited for', () => {
    const p = predictSidecar(job, v1('gcr.io/cloudsql-docker/gce-proxy:1.33.2-buster', '-term_timeout=30s') as never, shipped);
    assert.match(p.why, /up to 30s after the ask, by its -term_timeout=30s/);
  });
  it('the v2 proxy keeps the v2 entry', () => {
    const p = predictSidecar(job, { ...csql(), name: 'cloudsql-proxy' } as never, shipped);
    assert.deepEqual([p.outcome, p.exitCode], ['fails-pod', 130]);
  });
});
