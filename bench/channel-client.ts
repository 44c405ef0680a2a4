/**
 * One side of `npm run bench:channel`, a process of its own started with the image's node flags:
 * `hahaha` runs its ApiPortForwarder and ApiExecutor (src/kube/websocket.ts), `ws` the bench's
 * floor calls (the `ws` package, bench/floor.ts), against bench/channel-server.ts. Prints one
 * JSON line: CPU ms per two-port forward and per exec.
 * Run by bench/channel.ts: node <flags> channel-client.js <hahaha|ws> <port> <cert dir> <count>
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { ApiExecutor } from '../src/kube/executor.ts';
import { KubeClient } from '../src/kube/kube-client.ts';
import { ApiPortForwarder } from '../src/kube/port-forwarder.ts';
import { type FloorCall, floorCalls } from './floor.ts';

const [mode, port, dir, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 600);
const ca = readFileSync(`${dir}/tls.crt`);
const server = `https://127.0.0.1:${port}`;
const pod = { namespace: 'bench', name: 'p', uid: 'u' };
const PORTS = [4191, 9091];
const WAVE = 5;

let forward: () => Promise<void>;
let exec: () => Promise<void>;
if (mode === 'hahaha') {
  const client = new KubeClient({ server, tls: { ca, insecureSkipVerify: false }, auth: { kind: 'token', token: 'bench' } });
  const forwarder = new ApiPortForwarder(client);
  const executor = new ApiExecutor(client);
  forward = async () => {
    const replies = await Promise.all(PORTS.map((p) => forwarder.request(pod, { method: 'POST', port: p, path: '/shutdown', timeoutMs: 10_000 })));
    if (replies.some((r) => r.status !== 200)) throw new Error(`unexpected answer: ${JSON.stringify(replies)}`);
  };
  exec = async () => {
    const { exitCode } = await executor.exec(pod, { container: 'c', command: ['/bin/kill', '-s', 'INT', '1'], timeoutMs: 10_000 });
    if (exitCode !== 0) throw new Error(`exit code ${exitCode}`);
  };
} else {
  const agent = new Agent({ ca, keepAlive: false, maxCachedSessions: 16 });
  const api = { server: new URL(server), agent, headers: { authorization: 'Bearer bench' } };
  const calls = (list: FloorCall[]) => list.map((call) => ({ container: 'c', call }));
  const check = (results: (number | Error)[]) => {
    const failed = results.find((r) => r instanceof Error);
    if (failed !== undefined) throw failed;
  };
  forward = async () =>
    check(await floorCalls(api, pod.namespace, pod.name, calls(PORTS.map((p) => ({ kind: 'portforward', port: p, method: 'POST', path: '/shutdown' })))));
  exec = async () => check(await floorCalls(api, pod.namespace, pod.name, calls([{ kind: 'exec', command: ['/bin/kill', '-s', 'INT', '1'] }])));
}

/** CPU ms per call over `count` calls, WAVE at a time, after a warm-up. */
async function cpuPerCall(call: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 30; i++) await call();
  const settle = () => new Promise((r) => setTimeout(r, 300));
  await settle();
  const before = process.cpuUsage();
  for (let done = 0; done < count; done += WAVE) await Promise.all(Array.from({ length: WAVE }, call));
  await settle();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / count;
}

const forwardMs = await cpuPerCall(forward);
const execMs = await cpuPerCall(exec);
console.log(JSON.stringify({ mode, forwardMs, execMs }));
process.exit(0);
