import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, DEFAULT_CATALOG_PATH, loadCatalog, parseCatalog } from '../../src/config/catalog-file.ts';
import { loadConfig } from '../../src/config/env.ts';
import { findCatalogEntry } from '../../src/domain/catalog.ts';
import { CATALOG_SIDECARS } from './pod-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hahaha-config-'));
function writeCatalog(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('sidecar catalog', () => {
  it('the default catalog covers every sidecar of the CONTEXT table', () => {
    const catalog = loadCatalog(DEFAULT_CATALOG_PATH);
    for (const name of CATALOG_SIDECARS) {
      assert.ok(findCatalogEntry(catalog, { name, image: 'any' }), `${name} has no entry`);
    }
  });

  it('matches by image pattern when the entry has one', () => {
    const catalog = parseCatalog(
      { sidecars: [{ name: 'v2', containers: ['proxy'], image: 'cloud-sql-proxy:2', attempts: [{ exec: { command: ['true'] } }] }] },
      'inline',
    );
    assert.ok(findCatalogEntry(catalog, { name: 'proxy', image: 'gcr.io/cloud-sql-proxy:2.1' }));
    assert.equal(findCatalogEntry(catalog, { name: 'proxy', image: 'gcr.io/cloudsql-proxy:1.33' }), undefined);
  });

  it('fills defaults: timeoutSeconds 5, method POST, accepted 2xx', () => {
    const catalog = parseCatalog({ sidecars: [{ name: 'x', containers: ['x'], attempts: [{ http: { port: 1, path: '/q' } }] }] }, 'inline');
    assert.deepEqual(catalog.entries[0]?.attempts[0], {
      kind: 'http',
      method: 'POST',
      port: 1,
      path: '/q',
      acceptStatus: [200, 202, 204],
      timeoutSeconds: 5,
    });
  });

  const invalid: [string, string, RegExp][] = [
    [
      'a bad port',
      'sidecars:\n  - name: lp\n    containers: [linkerd-proxy]\n    attempts:\n      - http: {port: 99999, path: /shutdown}\n',
      /bad-port\.yaml: entry "lp", field attempts\[0\]\.http\.port \(sidecars\[0\]\.attempts\[0\]\.http\.port\): must be an integer 1-65535, got 99999/,
    ],
    [
      'a path without slash',
      'sidecars:\n  - name: lp\n    containers: [x]\n    attempts:\n      - http: {port: 1, path: shutdown}\n',
      /entry "lp", field attempts\[0\]\.http\.path .*must be a URL path starting with \//,
    ],
    [
      'an attempt with neither http nor exec',
      'sidecars:\n  - name: lp\n    containers: [x]\n    attempts:\n      - ftp: {}\n',
      /entry "lp", field attempts\[0\] .*: an attempt needs exactly one of http .*got field\(s\) ftp/,
    ],
    ['a typo in a field name', 'sidecars:\n  - name: lp\n    containers: [x]\n    atempts: []\n', /entry "lp".*unknown field\(s\) atempts/],
    ['an entry without name', 'sidecars:\n  - containers: [x]\n    attempts:\n      - exec: {command: [kill]}\n', /entry #1, field name/],
    [
      'an empty command',
      'sidecars:\n  - name: k\n    containers: [x]\n    attempts:\n      - exec: {command: []}\n',
      /entry "k", field attempts\[0\]\.exec\.command .*got an empty list/,
    ],
    [
      'a bad image pattern',
      'sidecars:\n  - name: k\n    containers: [x]\n    image: "("\n    attempts:\n      - exec: {command: [kill]}\n',
      /entry "k", field image .*: is not a valid regular expression/,
    ],
    [
      'a duplicate entry name',
      'sidecars:\n  - name: k\n    containers: [x]\n    attempts: [{exec: {command: [a]}}]\n  - name: k\n    containers: [y]\n    attempts: [{exec: {command: [a]}}]\n',
      /entry "k", field name \(sidecars\[1\]\.name\): duplicate entry name/,
    ],
    ['no sidecars list', 'foo: 1\n', /top level|field sidecars/],
    ['broken YAML', 'sidecars: [\n', /not valid YAML/],
  ];
  for (const [what, text, expected] of invalid) {
    it(`rejects ${what}, naming file, entry and field`, () => {
      const file = writeCatalog(`${what === 'a bad port' ? 'bad-port' : what.replaceAll(' ', '-')}.yaml`, text);
      const message = configError(() => loadCatalog(file));
      assert.match(message, expected);
      assert.ok(message.includes(file), message);
    });
  }

  it('rejects a missing file with its path', () => {
    assert.match(
      configError(() => loadCatalog('/nonexistent/sidecars.yaml')),
      /cannot read sidecar catalog \/nonexistent\/sidecars.yaml/,
    );
  });
});

describe('environment config', () => {
  it('has HAHAHA-compatible defaults', () => {
    const c = loadConfig({ HOSTNAME: 'pod-1' });
    assert.equal(c.watchSelector, 'nais.io/naisjob=true');
    assert.equal(c.metricsPort, 8999);
    assert.deepEqual(c.watchNamespaces, []);
    assert.equal(c.instanceName, 'pod-1');
    assert.equal(c.leaderElect, true);
    assert.equal(c.leaseDurationSeconds, 15);
    assert.equal(c.renewDeadlineSeconds, 10);
    assert.equal(c.retryPeriodSeconds, 2);
    assert.ok(Object.isFrozen(c));
  });

  it('reads every option', () => {
    const c = loadConfig({
      WATCH_SELECTOR: 'app=x',
      WATCH_NAMESPACES: 'a, b',
      LOG_LEVEL: 'debug',
      METRICS_PORT: '9000',
      MAX_CONCURRENT_PODS: '4',
      LEADER_ELECT: 'false',
      POD_NAMESPACE: 'hahaha-system',
      POD_NAME: 'hahaha-abc',
    });
    assert.equal(c.watchSelector, 'app=x');
    assert.deepEqual(c.watchNamespaces, ['a', 'b']);
    assert.equal(c.metricsPort, 9000);
    assert.equal(c.maxConcurrentPods, 4);
    assert.equal(c.leaderElect, false);
    assert.equal(c.leaseNamespace, 'hahaha-system');
    assert.equal(c.instanceName, 'hahaha-abc');
  });

  it('names each bad variable and why', () => {
    const message = configError(() => loadConfig({ METRICS_PORT: 'eighty', LOG_LEVEL: 'loud', WATCH_NAMESPACES: 'Bad_NS', LEADER_ELECT: 'maybe' }));
    assert.match(message, /METRICS_PORT must be an integer from 1 to 65535 \(or 0 for a free port\), got "eighty"/);
    assert.match(message, /LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, got "loud"/);
    assert.match(message, /WATCH_NAMESPACES must be a comma-separated list of namespace names .*got "Bad_NS"/);
    assert.match(message, /LEADER_ELECT must be true or false, got "maybe"/);
    assert.doesNotMatch(message, /\n/);
  });

  it('checks the leader election timings against each other', () => {
    assert.match(
      configError(() => loadConfig({ LEASE_DURATION_SECONDS: '5', RENEW_DEADLINE_SECONDS: '10' })),
      /LEASE_DURATION_SECONDS must be greater than RENEW_DEADLINE_SECONDS \(.*\), got 5 <= 10/,
    );
  });
});
