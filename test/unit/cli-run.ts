/**
 * Running the `hahaha` CLI in the *-errors tests: as a child process, as a user runs it, or
 * in this process through `main()` (fast), and the one assertion they all make of a known
 * failure.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli.ts';

export const BIN = new URL('../../bin/hahaha.js', import.meta.url).pathname;
/** A HOME without ~/.kube/config, so no test picks up the machine's credentials. */
export const EMPTY_HOME = mkdtempSync(join(tmpdir(), 'hahaha-home-'));

export interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `node bin/hahaha.js ARGS` with only PATH and an empty HOME plus `env`, feeding `input` to stdin. */
export function hahaha(args: readonly string[], env: Record<string, string> = {}, input = ''): Promise<Outcome> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: EMPTY_HOME, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin.end(input);
  });
}

/**
 * Runs the CLI's main() in this process, capturing its output. With `env`, that is the whole
 * environment (plus PATH and an empty HOME) while it runs; without, the environment is left as it is.
 */
export async function inProcess(args: string[], env?: Record<string, string>): Promise<Outcome> {
  const saved = process.env;
  const write = { out: process.stdout.write, err: process.stderr.write };
  let stdout = '';
  let stderr = '';
  if (env !== undefined) process.env = { PATH: saved.PATH ?? '', HOME: EMPTY_HOME, ...env };
  process.stdout.write = ((chunk: string) => {
    stdout += chunk;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => {
    stderr += chunk;
    return true;
  }) as typeof process.stderr.write;
  const t0 = Date.now();
  try {
    const code = await main(args);
    return { code, stdout, stderr, ms: Date.now() - t0 };
  } finally {
    process.env = saved;
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

/** A known failure: the exit code, exactly one line `hahaha: ...` on stderr, no stack trace, and every pattern in it. */
export function assertKnownFailure(out: Outcome, code: number, patterns: readonly RegExp[]): void {
  const context = `exit ${out.code}, stderr:\n${out.stderr}`;
  assert.equal(out.code, code, context);
  assert.doesNotMatch(out.stderr, /^\s+at /m, `a stack trace was printed: ${context}`);
  const lines = out.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `expected one line: ${context}`);
  assert.match(lines[0] ?? '', /^hahaha: \S/, context);
  for (const p of patterns) assert.match(lines[0] ?? '', p, context);
}
