/**
 * One side of `npm run bench:channel`, a process of its own started with the image's node flags:
 * `hahaha` runs its ApiPortForwarder and ApiExecutor (src/kube/websocket.ts) and posts Events
 * with its KubeClient (src/kube/http-pool.ts), `ws` the bench's floor calls (the `ws` package and
 * node:https with a keep-alive Agent, bench/floor.ts), against bench/channel-server.ts. Prints one
 * JSON line: CPU ms per two-port forward, per exec and per Event posted.
 * Run by bench/channel.ts: node <flags> channel-client.js <hahaha|ws> <port> <cert dir> <count>
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { ApiExecutor } from '../src/kube/executor.ts';
import { KubeClient } from '../src/kube/kube-client.ts';
import { ApiPortForwarder } from '../src/kube/port-forwarder.ts';
import { apiJson, type FloorCall, floorCalls } from './floor.ts';

const [mode, port, dir, countArg] = process.argv.slice(2);
const count = Number(countArg ?? 600);
const ca = readFileSync(`${dir}/tls.crt`);
const server = `https://127.0.0.1:${port}`;
const pod = { namespace: 'bench', name: 'p', uid: 'u' };
const PORTS = [4191, 9091];
const WAVE = 5;
/** An Event as hahaha's event sink posts it. */
const EVENT = {
  apiVersion: 'v1',
  kind: 'Event',
  metadata: { name: 'p.1872a3c4d5e6f708', namespace: 'bench' },
  involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace: 'bench', name: 'p', uid: '5c0a2a3e-8a58-4f7e-9a8e-2f1d6c3b4a58' },
  type: 'Normal',
  reason: 'Killing',
  action: 'Killing',
  message: 'Shut down container linkerd-proxy (http POST :4191/shutdown, exit code 0)',
  source: { component: 'hahaha' },
  reportingComponent: 'hahaha',
  reportingInstance: 'hahaha-5d8f7c9b6-x2x7k',
  firstTimestamp: '2026-11-29T08:00:00Z',
  lastTimestamp: '2026-11-29T08:00:00Z',
  count: 1,
};
const EVENTS = '/api/v1/namespaces/bench/events';

let forward: () => Promise<void>;
let exec: () => Promise<void>;
let post: () => Promise<void>;
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
  post = async () => {
    await client.request('POST', EVENTS, { body: EVENT });
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
  // REST requests on a keep-alive agent, as the cluster bench's floor makes them.
  const rest = { ...api, agent: new Agent({ ca, keepAlive: true, maxCachedSessions: 16 }) };
  post = async () => {
    await apiJson(rest, 'POST', EVENTS, EVENT);
  };
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
const postMs = await cpuPerCall(post);
console.log(JSON.stringify({ mode, forwardMs, execMs, postMs }));
process.exit(0);
