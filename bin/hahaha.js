#!/usr/bin/env node
// Runs the compiled CLI when present (installed package, container image), else the TypeScript
// sources directly (a checkout; Node 24 strips the types).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli.js', import.meta.url);
const { main } = await import(existsSync(compiled) ? compiled.href : new URL('../src/cli.ts', import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
