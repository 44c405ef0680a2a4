/**
 * node:http, without undici. An ESM import of a builtin module reads each of its exports once,
 * and node:http's lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters then load undici with
 * http2, zlib and web streams, about 2 MiB of resident memory that hahaha never uses.
 * `process.getBuiltinModule` returns the same module without reading them. Import the types from
 * 'node:http' with `import type`, which leaves no import behind.
 */
export const http = process.getBuiltinModule('node:http');
