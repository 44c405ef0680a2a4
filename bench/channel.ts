/**
 * `npm run bench:channel`: the CPU of hahaha's exec and port-forward WebSockets
 * (src/kube/websocket.ts) and of its REST requests (an Event posted, src/kube/http-pool.ts)
 * against the same calls made with the `ws` package and node:https (the cluster bench's floor,
 * bench/floor.ts), without a cluster: each side a process of its own started with the
 * image's node flags (bench/channel-client.ts), against a local TLS WebSocket server that answers
 * as the kubelet does (bench/channel-server.ts, another process). The two sides alternate
 * (BENCH_CHANNEL_ROUNDS, default 4; BENCH_CHANNEL_CALLS per measure, default 600). Prints CPU ms
 * per two-port forward, per exec and per Event posted, each side's median and range, and the
 * ratio of medians. The TLS handshake (resumed, as against an API server) is in both; REST
 * requests reuse keep-alive connections on both sides.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildImageTree, dockerfileFinalStage } from '../test/image-tree.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ROUNDS = Number(process.env.BENCH_CHANNEL_ROUNDS ?? 4);
const CALLS = Number(process.env.BENCH_CHANNEL_CALLS ?? 600);
const SIDES = ['hahaha', 'ws'] as const;
type Side = (typeof SIDES)[number];

const work = mkdtempSync(join(tmpdir(), 'hahaha-bench-channel-'));
const app = join(work, 'app');
try {
  await promisify(execFile)(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(work, 'tls.key'),
      '-out',
      join(work, 'tls.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { timeout: 30_000 },
  );
  await buildImageTree(app, ['bench/channel-client.ts']);
  const server = spawn(process.execPath, [join(ROOT, 'bench/channel-server.ts'), work], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      server.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
      server.once('exit', (code) => reject(new Error(`the server exited (${code})`)));
    });
    const { flags } = dockerfileFinalStage();
    const results: Record<Side, { forwardMs: number; execMs: number; postMs: number }[]> = { hahaha: [], ws: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so that neither always runs on a warmer machine.
      const order = round % 2 === 0 ? SIDES : [...SIDES].reverse();
      for (const side of order) {
        const { stdout } = await promisify(execFile)(process.execPath, [...flags, join(app, 'bench/channel-client.js'), side, port, work, String(CALLS)], {
          timeout: 600_000,
        });
        const line = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { forwardMs: number; execMs: number; postMs: number };
        results[side].push(line);
        console.log(
          `round ${round + 1} ${side.padEnd(6)} forward ${line.forwardMs.toFixed(2)} ms, exec ${line.execMs.toFixed(2)} ms, Event post ${line.postMs.toFixed(2)} ms`,
        );
      }
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      const mid = Math.floor(s.length / 2);
      return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
    };
    const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
    console.log(`\nCPU per call, ${ROUNDS} runs of ${CALLS} each side, node ${flags.join(' ')}:`);
    const labels = { forwardMs: 'two-port forward', execMs: 'exec', postMs: 'Event post' } as const;
    for (const what of ['forwardMs', 'execMs', 'postMs'] as const) {
      const [ours, theirs] = SIDES.map((side) => results[side].map((r) => r[what]));
      const label = labels[what];
      console.log(
        `${label.padEnd(17)} hahaha ${median(ours as number[]).toFixed(2)} ms (${range(ours as number[])})   floor ${median(theirs as number[]).toFixed(2)} ms (${range(theirs as number[])})   ${(median(ours as number[]) / median(theirs as number[])).toFixed(2)}×`,
      );
    }
  } finally {
    server.kill();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
