import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
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

/** Runs explain on `input` (standard input) and returns stdout. */
async function explainText(input: string, ...args: string[]): Promise<string> {
  const child = run(process.execPath, [BIN, 'explain', '-', ...args]);
  child.child.stdin?.end(input);
  return (await child).stdout;
}

const manifestPod = JSON.parse(readFileSync(new URL('../fixtures/naisjob-manifest-configmap-reload-linkerd.json', import.meta.url), 'utf8'));

describe('hahaha explain: predictions and the inputs users paste', () => {
  it('predicts each sidecar and the Job; a manifest is predicted as the webhook will create it', async () => {
    const out = JSON.parse(await explainText(JSON.stringify(manifestPod)));
    // linkerd without proxy-admin-shutdown hangs; configmap-reload would fail the Job but is converted.
    assert.equal(out.predicted.job, 'hangs');
    const by = Object.fromEntries(out.predicted.sidecars.map((s: any) => [s.container, s.predicted]));
    assert.equal(by['linkerd-proxy'].outcome, 'hangs');
    assert.match(by['linkerd-proxy'].why, /no annotation config.linkerd.io\/proxy-admin-shutdown: enabled/);
    assert.equal(by['secure-logs-configmap-reload'].outcome, 'complete');
    assert.match(by['secure-logs-configmap-reload'].why, /native sidecar at admission/);
  });

  it('reads YAML, as kubectl get pod -o yaml prints it', async () => {
    const yaml = [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: p',
      '  namespace: team',
      '  labels: {app: job}',
      'spec:',
      '  restartPolicy: Never',
      '  containers:',
      '  - {name: job, image: a}',
      '  - {name: vks-sidecar, image: b}',
      'status: {phase: Running}',
      '',
    ].join('\n');
    const out = JSON.parse(await explainText(yaml));
    assert.equal(out.decision, 'wait');
    assert.equal(out.pod, 'team/p');
  });

  it('a List gives one decision per item, as a JSON array or as NDJSON', async () => {
    const done = JSON.parse(readFileSync(fixture('naisjob-linkerd-cloudsql-done.json'), 'utf8'));
    const list = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [done, manifestPod] });
    const array = JSON.parse(await explainText(list));
    assert.deepEqual(
      array.map((r: any) => [r.subject, r.decision]),
      [
        ['item 1', 'reap'],
        ['item 2', 'wait'],
      ],
    );
    const lines = (await explainText(list, '-o', 'ndjson')).trim().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(JSON.parse(lines[0] as string).decision, 'reap');
  });

  it('a Job or CronJob manifest is decided as the pod its template makes', async () => {
    const template = {
      metadata: { labels: { app: 'nightly', 'nais.io/naisjob': 'true' } },
      spec: {
        restartPolicy: 'Never',
        containers: [
          { name: 'nightly', image: 'a' },
          { name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0', args: ['--quitquitquit'] },
        ],
      },
    };
    const job = JSON.parse(
      await explainText(JSON.stringify({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'nightly', namespace: 'team' }, spec: { template } })),
    );
    assert.equal(job.subject, 'Job nightly');
    assert.equal(job.pod, 'team/nightly-<generated>');
    assert.deepEqual(job.convert, ['cloud-sql-proxy']);
    const cron = JSON.parse(
      await explainText(
        JSON.stringify({
          apiVersion: 'batch/v1',
          kind: 'CronJob',
          metadata: { name: 'nightly', namespace: 'team' },
          spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template } } },
        }),
      ),
    );
    assert.equal(cron.subject, 'CronJob nightly');
    assert.equal(cron.predicted.job, 'complete');
  });

  it('without the webhook, cloud-sql-proxy without --quitquitquit is predicted to fail the Job with 130', async () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p', namespace: 't', labels: { app: 'job' }, annotations: { 'hahaha.nais.io/native-sidecars': 'false' } },
      spec: {
        restartPolicy: 'Never',
        containers: [
          { name: 'job', image: 'a' },
          { name: 'cloud-sql-proxy', image: 'gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.27.0-alpine' },
        ],
      },
      status: { phase: 'Running' },
    };
    const out = JSON.parse(await explainText(JSON.stringify(pod)));
    assert.equal(out.predicted.job, 'fails-pod');
    assert.equal(out.predicted.sidecars[0].predicted.exitCode, 130);
  });
});

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
    assert.deepEqual(
      out.targets.map(({ predicted: _, ...t }: any) => t),
      [
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
      ],
    );
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
    await assert.rejects(
      run(process.execPath, [BIN, 'explain', fixture('naisjob-being-deleted.json'), '--config', '/nonexistent.yaml']),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.match(err.stderr, /cannot read sidecar catalog \/nonexistent.yaml/);
        return true;
      },
    );
  });

  it('fails clearly on input that is neither JSON nor YAML', async () => {
    await assert.rejects(run(process.execPath, [BIN, 'explain', BIN]), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /is neither JSON nor YAML/);
      return true;
    });
  });

  it('has --help for run and explain', async () => {
    assert.match((await run(process.execPath, [BIN, '--help'])).stdout, /Usage:/);
    assert.match((await run(process.execPath, [BIN, 'run', '--help'])).stdout, /hahaha run/);
    assert.match((await run(process.execPath, [BIN, 'explain', '--help'])).stdout, /hahaha explain/);
  });

  it('refuses an invalid environment at start-up, naming the variable', async () => {
    await assert.rejects(run(process.execPath, [BIN, 'run'], { env: { ...process.env, METRICS_PORT: 'x' } }), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr, /METRICS_PORT must be an integer from 1 to 65535/);
      return true;
    });
  });
});

describe('bin/hahaha.js under the image node flags', () => {
  it('without a compiled dist/, --lite-mode (no WebAssembly to strip TypeScript with) is refused with exit 2 and one line', async () => {
    // A checkout's layout without dist/: bin/ copied, src/ linked.
    const dir = mkdtempSync(join(tmpdir(), 'hahaha-bin-'));
    try {
      mkdirSync(join(dir, 'bin'));
      copyFileSync(BIN, join(dir, 'bin', 'hahaha.js'));
      symlinkSync(fileURLToPath(new URL('../../src', import.meta.url)), join(dir, 'src'));
      const err = await run(process.execPath, ['--lite-mode', join(dir, 'bin', 'hahaha.js'), '--version']).then(
        () => assert.fail('expected exit 2'),
        (e: { code: number; stderr: string; stdout: string }) => e,
      );
      assert.equal(err.code, 2);
      assert.equal(err.stdout, '');
      assert.match(
        err.stderr,
        /^hahaha: cannot start: there is no compiled dist\/ and node runs without WebAssembly \(--lite-mode or --jitless\).*run npm run build/,
      );
      assert.equal(err.stderr.trimEnd().split('\n').length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
