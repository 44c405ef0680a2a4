#!/usr/bin/env node
// Runs the compiled CLI when present (installed package, container image), else the TypeScript
// sources directly (a checkout; Node 24 strips the types).
// Plain JavaScript that older Node versions can still parse, so that they get the version check
// below instead of a syntax error.
import { existsSync } from 'node:fs';

const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (!(major >= REQUIRED_MAJOR)) {
  process.stderr.write(
    'hahaha: cannot start: this is Node ' +
      process.versions.node +
      ' (' +
      process.execPath +
      '), hahaha needs Node ' +
      REQUIRED_MAJOR +
      ' or newer (npm ci installs it as node_modules/.bin/node: run node_modules/.bin/node bin/hahaha.js, or npx hahaha)\n',
  );
  process.exit(2);
}

const compiled = new URL('../dist/cli.js', import.meta.url);
const entry = existsSync(compiled) ? compiled.href : new URL('../src/cli.ts', import.meta.url).href;
let cli;
try {
  cli = await import(entry);
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    process.stderr.write('hahaha: cannot start: ' + String(err.message).split('\n')[0] + ' (run npm ci in the hahaha directory)\n');
    process.exit(2);
  }
  if (err && err.code === 'ERR_WEBASSEMBLY_NOT_SUPPORTED') {
    // Node strips TypeScript with WebAssembly, which --lite-mode and --jitless (the image's flags) turn off.
    process.stderr.write(
      'hahaha: cannot start: there is no compiled dist/ and node runs without WebAssembly (--lite-mode or --jitless), which loading the TypeScript sources needs: run npm run build, or start node without that flag\n',
    );
    process.exit(2);
  }
  throw err;
}
await cli.runProcess(process.argv.slice(2));
