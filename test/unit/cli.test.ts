import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = new URL('../../bin/hahaha.js', import.meta.url).pathname;
const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;

async function explain(args: string[], input?: string) {
  const child = run(process.execPath, [BIN, 'explain', ...args]);
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  const { stdout } = await child;
  return JSON.parse(stdout) as {
    decision: string;
    reason: string;
    targets: { container: string; attempts: Record<string, unknown>[] }[];
    unsupported: string[];
    convert?: string[];
    admission?: { code?: string; reason: string; patch: { op: string; path: string }[] };
  };
}

describe('hahaha explain', () => {
  it('shows what the admission webhook would do with a pod manifest (no status yet)', async () => {
    const out = await explain([fixture('naisjob-manifest-configmap-reload-linkerd.json')]);
    assert.equal(out.decision, 'wait');
    assert.deepEqual(out.convert, ['secure-logs-configmap-reload']);
    assert.deepEqual(
      out.admission?.patch.map((o) => `${o.op} ${o.path}`),
      ['test /spec/containers/1/name', 'remove /spec/containers/1', 'add /spec/initContainers', 'add /metadata/annotations'],
    );
  });

  it('says nothing about admission for a pod the API server already has (it has a status)', async () => {
    const out = await explain([fixture('naisjob-linkerd-cloudsql-done.json')]);
    assert.equal(out.convert, undefined);
    assert.equal(out.admission, undefined);
  });

  it('reaps a finished Naisjob pod: linkerd by HTTP, cloudsql by HTTP; exec skipped in its distroless image', async () => {
    const out = await explain([fixture('naisjob-linkerd-cloudsql-done.json')]);
    assert.equal(out.decision, 'reap');
    assert.deepEqual(out.targets, [
      { container: 'linkerd-proxy', attempts: [{ kind: 'http', method: 'POST', port: 4191, path: '/shutdown' }] },
      {
        container: 'cloudsql-proxy',
        attempts: [{ kind: 'http', method: 'POST', port: 9091, path: '/quitquitquit' }],
        skipped: [
          {
            attempt: 'exec /bin/kill -s TERM 1',
            why: 'cloudsql-proxy is not started with --exit-zero-on-sigterm (nor CSQL_PROXY_EXIT_ZERO_ON_SIGTERM=true)',
          },
          {
            attempt: 'exec /bin/kill -s INT 1',
            why: 'image gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.11.0 is distroless (no /bin/kill); an ephemeral container could run it if enabled',
          },
        ],
      },
    ]);
    assert.deepEqual(out.unsupported, []);
  });

  it('waits on an OnFailure pod whose main container failed', async () => {
    const out = await explain([fixture('naisjob-onfailure-failed-once.json')]);
    assert.equal(out.decision, 'wait');
    assert.match(out.reason, /will be restarted/);
    assert.deepEqual(out.targets, []);
  });

  it('ignores a pod being deleted', async () => {
    assert.equal((await explain([fixture('naisjob-being-deleted.json')])).decision, 'ignore');
  });

  it('leaves native sidecars alone and reports unknown ones', async () => {
    const out = await explain([fixture('naisjob-native-istio-unknown-agent.json')]);
    assert.deepEqual(out.targets, []);
    assert.deepEqual(out.unsupported, ['datadog-agent']);
  });

  it('honours the main-containers annotation', async () => {
    const out = await explain([fixture('naisjob-annotation-main-container.json')]);
    assert.equal(out.decision, 'reap');
  });

  it('reads standard input with -', async () => {
    const out = await explain(['-'], readFileSync(fixture('naisjob-being-deleted.json'), 'utf8'));
    assert.equal(out.decision, 'ignore');
  });

  it('uses --config for the catalog', async () => {
    await assert.rejects(run(process.execPath, [BIN, 'explain', fixture('naisjob-being-deleted.json'), '--config', '/nonexistent.yaml']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /cannot read sidecar catalog \/nonexistent.yaml/);
      return true;
    });
  });

  it('fails clearly on input that is not JSON', async () => {
    await assert.rejects(run(process.execPath, [BIN, 'explain', BIN]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /is not JSON/);
      return true;
    });
  });

  it('has --help for run and explain', async () => {
    assert.match((await run(process.execPath, [BIN, '--help'])).stdout, /Usage:/);
    assert.match((await run(process.execPath, [BIN, 'run', '--help'])).stdout, /hahaha run/);
    assert.match((await run(process.execPath, [BIN, 'explain', '--help'])).stdout, /hahaha explain/);
  });

  it('refuses an invalid environment at start-up, naming the variable', async () => {
    await assert.rejects(
      run(process.execPath, [BIN, 'run'], { env: { ...process.env, METRICS_PORT: 'x' } }),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /METRICS_PORT must be an integer from 1 to 65535/);
        return true;
      },
    );
  });
});
