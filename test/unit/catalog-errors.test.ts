/**
 * Every bad sidecar catalog stops hahaha with exit 2 and one line naming the file, the entry, the
 * exact field (`sidecars[0].attempts[0].http.method`), what it must be and what it got; no stack
 * trace. Image patterns cannot stall the process.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_CATALOG_PATH, loadCatalog, parseCatalog } from '../../src/config/catalog-file.ts';
import { ConfigError } from '../../src/config/errors.ts';
import { findCatalogEntry, MAX_IMAGE_LENGTH } from '../../src/domain/catalog.ts';
import { assertKnownFailure, hahaha } from './cli-run.ts';

const dir = mkdtempSync(join(tmpdir(), 'hahaha-catalog-errors-'));
const POD = new URL('../fixtures/naisjob-linkerd-cloudsql-done.json', import.meta.url).pathname;

/** One entry in YAML with the given attempt lines (and extra entry lines). */
const entry = (name: string, containers: string, attempt: string, extra = '') =>
  `  - name: ${name}\n    containers: ${containers}\n${extra}    attempts:\n      - ${attempt}\n`;
const catalogOf = (...entries: string[]) => `sidecars:\n${entries.join('')}`;
const http = (fields: string) => `http: {${fields}}`;

const aliasBomb = [
  'a: &a [x, x, x, x, x, x, x, x, x, x]',
  ...Array.from(
    { length: 8 },
    (_, i) =>
      `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(', ')}]`,
  ),
  'sidecars: []',
].join('\n');
const tooManyProblems = catalogOf(...Array.from({ length: 8 }, (_, i) => entry(`e${i}`, `[c${i}]`, http('port: 0, path: /x'))));

/** [what, file name, contents (undefined: do not create), patterns the one line must match] */
const cases: [string, string, string | undefined, RegExp[]][] = [
  [
    'an exit delay source as a mapping, not a list',
    'delay-mapping.yaml',
    catalogOf(entry('csql', '[cloud-sql-proxy]', http('port: 9091, path: /quitquitquit'), '    exitDelayFrom: {flag: --min-sigterm-delay}\n')),
    [/entry "csql", field exitDelayFrom \(sidecars\[0\]\.exitDelayFrom\): must be a list of at most 4 places .*Go durations, summed\), got a mapping/],
  ],
  [
    'an exit delay source with a field of its own',
    'delay-field.yaml',
    catalogOf(entry('csql', '[cloud-sql-proxy]', http('port: 9091, path: /quitquitquit'), '    exitDelayFrom: [{seconds: 15}]\n')),
    [/field exitDelayFrom\[0\] \(sidecars\[0\]\.exitDelayFrom\[0\]\): unknown field\(s\) seconds: allowed are flag, env, annotation, default/],
  ],
  [
    "an exit delay source's default that is not a duration",
    'delay-default.yaml',
    catalogOf(entry('l5d', '[linkerd-proxy]', http('port: 4191, path: /shutdown'), '    exitDelayFrom: [{env: GRACE, default: 120}]\n')),
    [
      /field exitDelayFrom\[0\]\.default \(sidecars\[0\]\.exitDelayFrom\[0\]\.default\): must be a Go duration above 0 and at most 10m \(e\.g\. "2m"\), got 120/,
    ],
  ],
  [
    'an exit delay source with a default only',
    'delay-default-only.yaml',
    catalogOf(entry('l5d', '[linkerd-proxy]', http('port: 4191, path: /shutdown'), '    exitDelayFrom: [{default: 2m}]\n')),
    [/field exitDelayFrom\[0\] \(sidecars\[0\]\.exitDelayFrom\[0\]\): must name at least one of flag, env, annotation/],
  ],
  [
    'five exit delay sources',
    'delay-five.yaml',
    catalogOf(entry('csql', '[cloud-sql-proxy]', http('port: 9091, path: /quitquitquit'), `    exitDelayFrom: [${Array(5).fill('{env: D}').join(', ')}]\n`)),
    [/field exitDelayFrom .*: must be a list of at most 4 places .*, got 5 items/],
  ],
  [
    'a method in lower case',
    'method.yaml',
    catalogOf(entry('istio', '[istio-proxy]', http('method: post, port: 15020, path: /quitquitquit'))),
    [/entry "istio", field attempts\[0\]\.http\.method \(sidecars\[0\]\.attempts\[0\]\.http\.method\): must be one of GET, POST, PUT, got "post"/],
  ],
  [
    'a port as a string',
    'port.yaml',
    catalogOf(entry('istio', '[istio-proxy]', http('port: "15020", path: /quitquitquit'))),
    [/field attempts\[0\]\.http\.port .*: must be an integer 1-65535, got the string "15020"/],
  ],
  [
    'a port out of range',
    'port-range.yaml',
    catalogOf(entry('lp', '[linkerd-proxy]', http('port: 99999, path: /shutdown'))),
    [/entry "lp", field attempts\[0\]\.http\.port .*must be an integer 1-65535, got 99999/],
  ],
  [
    'a command as a string',
    'command.yaml',
    catalogOf(entry('vks', '[vks-sidecar]', 'exec: {command: "/bin/kill -s INT 1"}')),
    [/entry "vks", field attempts\[0\]\.exec\.command .*: must be a list of strings/, /got the string "\/bin\/kill -s INT 1"/],
  ],
  [
    'a number in a command',
    'command-number.yaml',
    catalogOf(entry('vks', '[vks-sidecar]', 'exec: {command: [/bin/kill, -s, INT, 1]}')),
    [/field attempts\[0\]\.exec\.command\[3\] .*must be a non-empty string \(quote numbers: "1"\), got 1/],
  ],
  [
    'an attempt with neither http nor exec',
    'neither.yaml',
    catalogOf(entry('x', '[x]', 'ftp: {port: 1}')),
    [/field attempts\[0\] .*: an attempt needs exactly one of http \{method, port, path\} or exec \{command\}.*got field\(s\) ftp/],
  ],
  [
    'an attempt with both http and exec',
    'both.yaml',
    catalogOf(entry('x', '[x]', 'http: {port: 1, path: /q}\n        exec: {command: [kill]}')),
    [/an attempt needs exactly one of http .*got field\(s\) http, exec/],
  ],
  [
    'a typo in an entry field',
    'typo.yaml',
    `sidecars:\n  - name: lp\n    containers: [x]\n    atempts: []\n`,
    [/entry "lp" \(sidecars\[0\]\): unknown field\(s\) atempts: allowed are name, containers, image, hint, native, exitDelayFrom, attempts/],
  ],
  [
    'a typo in an http field',
    'typo-http.yaml',
    catalogOf(entry('lp', '[x]', http('verb: POST, port: 1, path: /q'))),
    [/field attempts\[0\]\.http .*unknown field\(s\) verb/],
  ],
  [
    'a path without a slash',
    'path.yaml',
    catalogOf(entry('lp', '[x]', http('port: 1, path: shutdown'))),
    [/field attempts\[0\]\.http\.path .*must be a URL path starting with \//],
  ],
  [
    'an accepted status that is not HTTP',
    'status.yaml',
    catalogOf(entry('lp', '[x]', http('port: 1, path: /q, acceptStatus: [99]'))),
    [/field attempts\[0\]\.http\.acceptStatus\[0\] .*must be an integer 100-599, got 99/],
  ],
  [
    'a millisecond timeout',
    'timeout.yaml',
    catalogOf(entry('lp', '[x]', 'http: {port: 1, path: /q}\n        timeoutSeconds: 0.001')),
    [/field attempts\[0\]\.timeoutSeconds .*must be a number of seconds from 1 to 300 \(.*\), got 0\.001/],
  ],
  [
    'native as a string',
    'native.yaml',
    catalogOf(entry('a', '[a]', 'exec: {command: [x]}', '    native: "yes"\n')),
    [/entry "a", field native \(sidecars\[0\]\.native\): must be true or false, got the string "yes"/],
  ],
  [
    'a duplicate entry name',
    'dup-name.yaml',
    catalogOf(entry('k', '[x]', 'exec: {command: [a]}'), entry('k', '[y]', 'exec: {command: [a]}')),
    [/entry "k", field name \(sidecars\[1\]\.name\): duplicate entry name, already used by sidecars\[0\]/],
  ],
  [
    'a second entry for a container (never used)',
    'shadow.yaml',
    catalogOf(entry('one', '[proxy]', 'exec: {command: [a]}'), entry('two', '[proxy]', 'exec: {command: [b]}')),
    [
      /entry "two", field containers\[0\] .*container "proxy" is already claimed by entry "one" \(sidecars\[0\]\), which has no image pattern, so this entry would never be used for it/,
    ],
  ],
  [
    'two entries with the same image pattern',
    'shadow-image.yaml',
    catalogOf(entry('one', '[proxy]', 'exec: {command: [a]}', '    image: "v2"\n'), entry('two', '[proxy]', 'exec: {command: [b]}', '    image: "v2"\n')),
    [/container "proxy" is already claimed by entry "one" .*with the same image pattern/],
  ],
  [
    'a container listed twice in one entry',
    'twice.yaml',
    catalogOf(entry('one', '[proxy, proxy]', 'exec: {command: [a]}')),
    [/field containers\[1\] .*lists container "proxy" twice/],
  ],
  [
    'a blank entry name',
    'blank-name.yaml',
    catalogOf(entry('"  "', '[x]', 'exec: {command: [a]}')),
    [/entry #1, field name \(sidecars\[0\]\.name\): must be a non-blank string, got a blank string/],
  ],
  [
    'a blank container name',
    'blank-container.yaml',
    catalogOf(entry('a', '[""]', 'exec: {command: [a]}')),
    [/field containers\[0\] .*must be a container name \(lowercase letters, digits and '-', at most 63 characters\), got the string ""/],
  ],
  [
    'a container name Kubernetes refuses',
    'bad-container.yaml',
    catalogOf(entry('a', '[Linkerd_Proxy]', 'exec: {command: [a]}')),
    [/must be a container name .*got the string "Linkerd_Proxy"/],
  ],
  [
    'an entry without attempts',
    'no-attempts.yaml',
    'sidecars:\n  - name: a\n    containers: [a]\n',
    [/field attempts \(sidecars\[0\]\.attempts\): must be a list of attempts, cleanest first, got nothing/],
  ],
  [
    'an invalid image pattern',
    'image.yaml',
    catalogOf(entry('k', '[x]', 'exec: {command: [kill]}', '    image: "("\n')),
    [/entry "k", field image .*: is not a valid regular expression in RE2 syntax .*missing closing \)/],
  ],
  [
    'a lookahead image pattern (not linear time)',
    'lookahead.yaml',
    catalogOf(entry('k', '[x]', 'exec: {command: [kill]}', '    image: "(?=cloud)cloud-sql"\n')),
    [/field image .*RE2 syntax \(linear-time: no lookaround, no backreferences\)/],
  ],
  [
    'a backreference image pattern',
    'backref.yaml',
    catalogOf(entry('k', '[x]', 'exec: {command: [kill]}', '    image: "(a)\\\\1"\n')),
    [/field image .*not a valid regular expression in RE2 syntax/],
  ],
  ['no sidecars list', 'no-list.yaml', 'foo: 1\n', [/top level: unknown field\(s\) foo/]],
  ['sidecars that are not a list', 'not-list.yaml', 'sidecars: {name: a}\n', [/field sidecars: must be a list of sidecar entries, got a mapping/]],
  ['an empty file', 'empty.yaml', '', [/top level: must be a mapping \(with a sidecars list\), got null/]],
  ['broken YAML', 'broken.yaml', 'sidecars: [\n', [/sidecar catalog .*broken\.yaml: not valid YAML at line \d+, column \d+: /, /\(fix the YAML syntax\)/]],
  [
    'a file over 256 KiB',
    'huge.yaml',
    `# ${'x'.repeat(300 * 1024)}\nsidecars: []\n`,
    [/sidecar catalog .*huge\.yaml: too large: \d+ bytes, the limit is 262144 \(256 KiB/],
  ],
  [
    'many YAML aliases (billion laughs)',
    'aliases.yaml',
    aliasBomb,
    [/sidecar catalog .*aliases\.yaml: YAML aliases expand too much: .*at most 100 alias uses/],
  ],
  ['more problems than one line lists', 'many.yaml', tooManyProblems, [/entry "e0", field attempts\[0\]\.http\.port/, /; and 3 more \(/]],
  [
    'a missing file',
    'missing.yaml',
    undefined,
    [/cannot read sidecar catalog .*missing\.yaml: no such file \(set SIDECAR_CATALOG or --config to a readable catalog file\)/],
  ],
  ['a directory', 'a-directory', undefined, [/cannot read sidecar catalog .*a-directory: is a directory/]],
];
mkdirSync(join(dir, 'a-directory'));
for (const [, name, text] of cases) if (text !== undefined) writeFileSync(join(dir, name), text);

describe('catalog errors', () => {
  for (const [what, name, , patterns] of cases) {
    it(`refuses ${what}, naming file, entry and field`, () => {
      const file = join(dir, name);
      assert.throws(
        () => loadCatalog(file),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.exitCode, 2);
          assert.doesNotMatch(err.message, /\n/);
          assert.ok(err.message.includes(file), err.message);
          for (const p of patterns) assert.match(err.message, p);
          return true;
        },
      );
    });
  }

  // The same through the CLI as a user meets it (explain reads the catalog first), in parallel.
  const viaCli = ['method.yaml', 'port.yaml', 'command.yaml', 'shadow.yaml', 'huge.yaml', 'aliases.yaml', 'missing.yaml'];
  const children = new Map(viaCli.map((name) => [name, hahaha(['explain', POD, '--config', join(dir, name)])]));
  for (const name of viaCli) {
    const [what, , , patterns] = cases.find((c) => c[1] === name) ?? ['', '', '', []];
    it(`bin/hahaha.js explain --config with ${what}: exit 2, one line, no stack`, async () => {
      const out = await children.get(name);
      assert.ok(out);
      assertKnownFailure(out, 2, [/^hahaha: (invalid sidecar catalog|sidecar catalog|cannot read sidecar catalog)/, ...patterns]);
      assert.equal(out.stdout, '');
    });
  }

  it('hahaha run with SIDECAR_CATALOG naming a bad file exits 2 before needing a cluster', async () => {
    const out = await hahaha(['run'], { SIDECAR_CATALOG: join(dir, 'method.yaml'), KUBECONFIG: join(dir, 'missing.yaml') });
    // The environment and then the credentials are checked before the catalog: either line is a known failure.
    assert.equal(out.code, 2, out.stderr);
    assert.doesNotMatch(out.stderr, /^\s+at /m);
  });

  it('accepts a fallback entry after one with an image pattern, and the shipped catalog', () => {
    const c = parseCatalog(
      parse(catalogOf(entry('v2', '[proxy]', 'exec: {command: [a]}', '    image: "proxy:2"\n'), entry('any', '[proxy]', 'exec: {command: [b]}'))),
      'inline',
    );
    assert.equal(findCatalogEntry(c, { name: 'proxy', image: 'gcr.io/x/proxy:2.1' })?.name, 'v2');
    assert.equal(findCatalogEntry(c, { name: 'proxy', image: 'gcr.io/x/proxy:1.3' })?.name, 'any');
    assert.ok(loadCatalog(DEFAULT_CATALOG_PATH).entries.length >= 8);
  });
});

describe('image matching cannot stall the process', () => {
  const evil = parseCatalog({ sidecars: [{ name: 'evil', containers: ['proxy'], image: '(a+)+$', attempts: [{ exec: { command: ['x'] } }] }] }, 'inline');

  it('matches a catastrophic-backtracking pattern in linear time', () => {
    const t0 = performance.now();
    for (let n = 1; n <= 40; n++) findCatalogEntry(evil, { name: 'proxy', image: `${'a'.repeat(n)}!` });
    const ms = performance.now() - t0;
    // A backtracking RegExp takes seconds from 27 characters on.
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
    assert.equal(findCatalogEntry(evil, { name: 'proxy', image: 'aaa' })?.name, 'evil');
  });

  it(`does not match images over ${MAX_IMAGE_LENGTH} characters, and explain says why`, async () => {
    const t0 = performance.now();
    assert.equal(findCatalogEntry(evil, { name: 'proxy', image: 'a'.repeat(64 * 1024) }), undefined);
    assert.ok(performance.now() - t0 < 50);
    const file = join(dir, 'evil.yaml');
    writeFileSync(file, catalogOf(entry('evil', '[linkerd-proxy]', http('port: 4191, path: /shutdown'), '    image: "(a+)+$"\n')));
    const pod = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(POD, 'utf8')));
    for (const c of pod.spec.containers) if (c.name === 'linkerd-proxy') c.image = 'a'.repeat(70_000);
    const out = await hahaha(['explain', '-', '--config', file], {}, JSON.stringify(pod));
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout) as { unsupported: string[]; notes?: string[] };
    assert.ok(result.unsupported.includes('linkerd-proxy'));
    assert.match(
      result.notes?.[0] ?? '',
      /image of container linkerd-proxy is 70000 characters, longer than the 512 that image patterns are matched against, so entry evil does not apply/,
    );
  });
});
