/**
 * What loading hahaha costs: the daemon's and the doctor's module graphs must not load undici
 * (with http2 and web streams). An ESM `import` of node:http does, through its lazy WebSocket
 * getter (see src/node-http.ts): about 2 MiB of resident memory for nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';

const SRC = new URL('../../src/', import.meta.url);

describe('module graph', () => {
  for (const module of ['daemon.ts', 'kube/doctor-api.ts']) {
    it(`loading ${module} does not load undici`, () => {
      const script = `await import(${JSON.stringify(new URL(module, SRC).href)});
        console.log(process.moduleLoadList.filter((m) => /undici|http2/.test(m)).join(' '));`;
      const loaded = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
      assert.equal(loaded, '');
    });
  }
});
