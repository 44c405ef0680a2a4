/**
 * `hahaha explain` on input that is not one valid Pod exits 2 with one line saying why (no more
 * `ignore` with exit 0), and the daemon's parsePod gives the same reason as a MalformedPod.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CATALOG_PATH, loadCatalog } from '../../src/config/catalog-file.ts';
import { parseAdmissionPod } from '../../src/domain/native-conversion.ts';
import { isMalformed, parsePod } from '../../src/domain/pod-view.ts';
import { assertKnownFailure, hahaha, inProcess, type Outcome } from './cli-run.ts';

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url).pathname;
const done = () => JSON.parse(readFileSync(fixture('naisjob-linkerd-cloudsql-done.json'), 'utf8'));
/** The finished Naisjob pod with one change. */
const oddPod = (change: (p: any) => void) => {
  const p = done();
  change(p);
  return JSON.stringify(p);
};
const status = (p: any, name: string) => p.status.containerStatuses.find((s: any) => s.name === name);
const ONE_POD = /\(pass a pod, a List of pods, a Job or a CronJob, e\.g\. kubectl get pod NAME -o json/;

/** [what, stdin, patterns]; every case exits 2 */
const cases: [string, string, RegExp[]][] = [
  ['an empty JSON array', '[]', [/is not a pod but a JSON array of 0 item\(s\)/]],
  ['an empty object', '{}', [/is not a valid pod: metadata is missing/]],
  ['an empty List', JSON.stringify({ kind: 'List', items: [] }), [/is a List with no items \(pass a pod, a List of pods, a Job or a CronJob/]],
  ['a PodList without items', JSON.stringify({ kind: 'PodList' }), [/is a PodList without items/]],
  [
    'a List with a malformed item',
    JSON.stringify({ kind: 'List', items: [JSON.parse(readFileSync(fixture('odd-exit-code-string.json'), 'utf8'))] }),
    [/item 1: is not a valid pod: .*exitCode must be an integer/],
  ],
  ['a Job without a pod template', JSON.stringify({ kind: 'Job', metadata: { name: 'j' }, spec: {} }), [/Job j has no pod template \(spec\.template\)/]],
  ['another kind', JSON.stringify({ kind: 'Service', metadata: { name: 'x' }, spec: {} }), [/is not a valid pod: kind is Service, not Pod/]],
  ['a pod without spec', JSON.stringify({ kind: 'Pod', metadata: { name: 'x' } }), [/is not a valid pod: spec is missing/]],
  ['a pod without name', JSON.stringify({ kind: 'Pod', metadata: {}, spec: { containers: [{ name: 'a' }] }, status: {} }), [/metadata\.name is missing/]],
  ['a pod without containers', JSON.stringify({ kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [] } }), [/spec\.containers is empty/]],
  [
    'containers that are not a list',
    JSON.stringify({ kind: 'Pod', metadata: { name: 'x' }, spec: { containers: { name: 'a' } } }),
    [/spec\.containers must be a list, got an object/],
  ],
  [
    'a container without name',
    JSON.stringify({ kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ image: 'y' }] } }),
    [/spec\.containers\[0\] has no name/],
  ],
  [
    'duplicate container names (a target listed twice)',
    readFileSync(fixture('odd-duplicate-container-names.json'), 'utf8'),
    [/container name linkerd-proxy is used twice in spec\.containers and spec\.initContainers/],
  ],
  [
    'an init container named like a container',
    oddPod((p) => (p.spec.initContainers = [{ name: 'cloudsql-proxy', image: 'x' }])),
    [/container name cloudsql-proxy is used twice/],
  ],
  [
    'exitCode "0" as a string (was read as -1)',
    readFileSync(fixture('odd-exit-code-string.json'), 'utf8'),
    [/status\.containerStatuses\[\d\]\.state\.terminated\.exitCode must be an integer, got the string "0"/],
  ],
  [
    'a terminated state without exitCode',
    oddPod((p) => delete status(p, 'tiltak-okonomi-avstemming').state.terminated.exitCode),
    [/state\.terminated\.exitCode must be an integer, got nothing/],
  ],
  [
    'an exitCode with a fraction',
    oddPod((p) => (status(p, 'tiltak-okonomi-avstemming').state.terminated.exitCode = 0.5)),
    [/exitCode must be an integer, got 0\.5/],
  ],
  [
    'an unknown state kind',
    readFileSync(fixture('odd-unknown-state-kind.json'), 'utf8'),
    [/status\.containerStatuses\[1\]\.state has unknown kind hibernating \(known: waiting, running, terminated\)/],
  ],
  [
    'two state kinds at once',
    oddPod((p) => (status(p, 'linkerd-proxy').state = { running: {}, terminated: { exitCode: 0 } })),
    [/state has more than one kind \(running, terminated\)/],
  ],
  ['a state that is a string', oddPod((p) => (status(p, 'linkerd-proxy').state = 'running')), [/state must be an object, got the string "running"/]],
  [
    'a restartCount as a string',
    oddPod((p) => (status(p, 'linkerd-proxy').restartCount = '1')),
    [/restartCount must be a non-negative integer, got the string "1"/],
  ],
  [
    'a container status listed twice',
    oddPod((p) => p.status.containerStatuses.push(status(p, 'linkerd-proxy'))),
    [/status\.containerStatuses has container linkerd-proxy twice/],
  ],
  ['a container status without name', oddPod((p) => delete status(p, 'linkerd-proxy').name), [/status\.containerStatuses\[1\] has no name/]],
  ['an image that is not a string', oddPod((p) => (p.spec.containers[1].image = 42)), [/spec\.containers\[1\]\.image must be a string, got 42/]],
  ['a phase that is not a string', oddPod((p) => (p.status.phase = 1)), [/status\.phase must be a string, got 1/]],
  ['a node name that is not a string', oddPod((p) => (p.spec.nodeName = ['node-a'])), [/spec\.nodeName must be a string, got a list/]],
  ['a status that is a list', oddPod((p) => (p.status = [])), [/status must be an object, got a list/]],
  ['a number', '42', [/not a JSON object but 42/]],
  ['null', 'null', [/not a JSON object but null/]],
  ['empty input', '', [/standard input: is empty/]],
  ['YAML of a pod without metadata', 'apiVersion: v1\nkind: Pod\n', [/standard input: is not a valid pod: metadata is missing/]],
  ['text that is neither JSON nor YAML', 'a: [b\n', [/standard input: is neither JSON nor YAML/]],
];

/** Runs the CLI's main() in this process with `input` as standard input (a file descriptor 0 stand-in). */
async function explainInProcess(input: string): Promise<Outcome> {
  const file = join(mkdtempSync(join(tmpdir(), 'hahaha-explain-')), 'pod.json');
  writeFileSync(file, input);
  const out = await inProcess(['explain', file]);
  return { ...out, stderr: out.stderr.replaceAll(file, 'standard input') };
}

describe('explain input errors', () => {
  const asChild = new Set([
    'an empty JSON array',
    'an empty object',
    'a kubectl List',
    'a pod without spec',
    'duplicate container names (a target listed twice)',
    'exitCode "0" as a string (was read as -1)',
    'an unknown state kind',
  ]);
  const children = new Map([...asChild].map((what) => [what, hahaha(['explain', '-'], {}, cases.find((c) => c[0] === what)?.[1] ?? '')]));
  for (const [what, input, patterns] of cases) {
    it(`refuses ${what}: exit 2, one line${asChild.has(what) ? ' (bin/hahaha.js)' : ''}`, async () => {
      const expected = [/^hahaha: explain standard input: /, ...patterns, ...(what === 'YAML instead of JSON' ? [] : [ONE_POD])];
      assertKnownFailure(await explainInProcess(input), 2, expected);
      const child = children.get(what);
      if (child !== undefined) {
        const out = await child;
        assertKnownFailure(out, 2, expected);
        assert.equal(out.stdout, '');
      }
    });
  }

  it('a missing file: exit 2, one line', async () => {
    assertKnownFailure(await hahaha(['explain', '/nonexistent/pod.json']), 2, [/^hahaha: explain \/nonexistent\/pod\.json: cannot read: no such file/]);
  });

  it('the daemon sees the same reasons: parsePod returns a MalformedPod', () => {
    for (const [what, input] of cases) {
      let raw: unknown;
      try {
        raw = JSON.parse(input);
      } catch {
        continue;
      }
      if (Array.isArray(raw) || (typeof raw === 'object' && raw !== null && String((raw as { kind?: unknown }).kind).endsWith('List'))) continue;
      const p = parsePod(raw);
      assert.ok(isMalformed(p), what);
    }
  });

  it('still accepts what is valid: a pod being created (no status, no uid, generateName only) and real pods', async () => {
    const manifest = JSON.parse(readFileSync(fixture('naisjob-manifest-configmap-reload-linkerd.json'), 'utf8'));
    delete manifest.metadata.uid;
    const fromTemplate = { ...manifest, metadata: { ...manifest.metadata, name: undefined, generateName: 'my-job-' } };
    assert.ok(!('malformed' in parseAdmissionPod(fromTemplate, 'team')));
    const out = await explainInProcess(JSON.stringify(fromTemplate));
    assert.equal(out.code, 0, out.stderr);
    assert.ok(!isMalformed(parsePod(done())));
    // An absent state is waiting, as the API documents; an unset kind may also arrive as undefined.
    const p = done();
    status(p, 'linkerd-proxy').state = { running: { startedAt: '2026-11-27T06:00:00Z' }, waiting: undefined, terminated: null };
    status(p, 'cloudsql-proxy').state = {};
    assert.ok(!isMalformed(parsePod(p)));
    assert.ok(loadCatalog(DEFAULT_CATALOG_PATH));
  });
});
