/**
 * hahaha as its image runs it, without an image: the compiled dist/ beside copies of bin/, config/
 * and package.json (node_modules linked), laid out as the image's /app, and the final stage's
 * `ENV` and `ENTRYPOINT` node flags read from the Dockerfile. Used by the e2e test of the image's
 * flags, the soak's replicas and `npm run bench:cluster`. No side effects on import.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = `${ROOT}node_modules/typescript/bin/tsc`;

/**
 * The Dockerfile's final stage: its `ENV KEY=VALUE` pairs, and the node flags of its ENTRYPOINT
 * (the arguments between node and the script), to be passed on node's command line as the image
 * does: some of them (--lite-mode, --optimize-for-size) are refused in NODE_OPTIONS.
 */
export function dockerfileFinalStage(): { env: Record<string, string>; flags: string[] } {
  const lines = readFileSync(`${ROOT}Dockerfile`, 'utf8').split('\n');
  const env: Record<string, string> = {};
  const flags: string[] = [];
  for (const line of lines.slice(lines.findLastIndex((l) => /^FROM\s/i.test(l)))) {
    const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/i.exec(line.trim());
    if (entry) {
      const args = JSON.parse(entry[1] as string) as string[];
      for (const a of args.slice(1)) {
        if (!a.startsWith('--')) break;
        flags.push(a);
      }
    }
    const m = /^ENV\s+(.*)$/i.exec(line.trim());
    if (!m) continue;
    for (const pair of (m[1] as string).split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return { env, flags };
}

/**
 * Builds the image's /app into `app` (emptied first): `tsc -p tsconfig.build.json` into app/dist,
 * and `extra` TypeScript files of the repository (paths relative to it), with what they import,
 * into the same paths under `app` (bench/x.ts -> app/bench/x.js), since a process started with
 * the image's flags runs JavaScript only (--lite-mode has no WebAssembly, which Node's TypeScript
 * stripping needs).
 */
export async function buildImageTree(app: string, extra: readonly string[] = []): Promise<void> {
  const tsc = (args: string[]) => promisify(execFile)(process.execPath, [TSC, ...args], { cwd: ROOT, timeout: 300_000 });
  rmSync(app, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  symlinkSync(`${ROOT}node_modules`, join(app, 'node_modules'));
  await tsc(['-p', `${ROOT}tsconfig.build.json`, '--outDir', join(app, 'dist')]);
  if (extra.length > 0) {
    const config = join(app, 'tsconfig.extra.json');
    writeFileSync(
      config,
      JSON.stringify({
        extends: `${ROOT}tsconfig.json`,
        compilerOptions: { noEmit: false, rootDir: ROOT, outDir: app },
        include: [],
        files: extra.map((f) => `${ROOT}${f}`),
      }),
    );
    await tsc(['-p', config]);
  }
  cpSync(`${ROOT}bin`, join(app, 'bin'), { recursive: true });
  cpSync(`${ROOT}config`, join(app, 'config'), { recursive: true });
  cpSync(`${ROOT}package.json`, join(app, 'package.json'));
}
