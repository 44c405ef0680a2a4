/**
 * The bench's raw access to the API server (node:https and `ws`, no client library) and its
 * "floor": an ideal reaper that makes exactly hahaha's catalog calls and nothing else. Used by
 * bench/cluster.ts in its own process (the reaction phase) and by bench/floor-reaper.ts as a
 * process of its own (the burst's CPU floor). No side effects on import.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { performance } from 'node:perf_hooks';
import { createSecureContext } from 'node:tls';
import WebSocket from 'ws';

/** The API server over node:https with one identity: the admin's client certificate or a token. */
export interface Api {
  readonly server: URL;
  readonly agent: Agent;
  readonly headers: Record<string, string>;
  /** The agent of the channel WebSockets, if not `agent`: hahaha's WebSockets do not wait for its REST connections. */
  readonly wsAgent?: Agent;
}

export function apiCall(api: Api, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        agent: api.agent,
        method,
        host: api.server.hostname,
        port: api.server.port,
        path,
        headers: {
          ...api.headers,
          accept: 'application/json',
          ...(data === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(data) }),
        },
        timeout: 60_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

export async function apiJson(api: Api, method: string, path: string, body?: unknown, contentType?: string): Promise<any> {
  const res = await apiCall(api, method, path, body, contentType);
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${path}: HTTP ${res.status}: ${res.text.slice(0, 300)}`);
  return JSON.parse(res.text);
}

/** What a raw pod watch reports. */
export interface WatchHandlers {
  /** Each object, with the time its chunk arrived, before it was parsed. */
  pod(pod: any, at: number): void;
  /** An ERROR event's object. */
  error(message: string): void;
  /** The watch ended after it had started (the server closed it, or the connection failed). */
  end?(why: string): void;
}

/**
 * A raw watch of pods (newline-delimited JSON over one HTTPS response, no resourceVersion: the
 * pods there are come first as ADDED). Resolves once the response has started, with a function
 * that stops it; `end` is not called for a stop.
 */
export function rawPodWatch(api: Api, ns: string, selectors: { label: string; field?: string }, on: WatchHandlers): Promise<() => void> {
  const query = new URLSearchParams({ watch: 'true', timeoutSeconds: '3600', labelSelector: selectors.label });
  if (selectors.field !== undefined) query.set('fieldSelector', selectors.field);
  let stopped = false;
  let ended = false;
  const end = (why: string) => {
    if (stopped || ended) return;
    ended = true;
    on.end?.(why);
  };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent: false,
        ca: (api.agent.options as { ca?: Buffer }).ca,
        host: api.server.hostname,
        port: api.server.port,
        path: `/api/v1/namespaces/${ns}/pods?${query}`,
        headers: { ...api.headers, accept: 'application/json' },
      },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`watch pods in ${ns}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const at = performance.now();
          buf += chunk;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim() === '') continue;
            const ev = JSON.parse(line) as { type: string; object: any };
            if (ev.type === 'ERROR') on.error(JSON.stringify(ev.object).slice(0, 200));
            else on.pod(ev.object, at);
          }
        });
        res.on('end', () => end('the server ended it'));
        res.on('close', () => end('its connection closed'));
        resolve(() => {
          stopped = true;
          req.destroy();
        });
      },
    );
    req.on('error', (err) => {
      reject(err);
      end(err.message);
    });
    req.end();
  });
}

// ------------------------------------------------------------------ the floor: an ideal reaper
/** What the bench's floor reaper sends to one sidecar: hahaha's catalog calls for it. */
export type FloorCall = { kind: 'portforward'; port: number; method: string; path: string } | { kind: 'exec'; command: string[] };

function channelUrl(api: Api, ns: string, pod: string, sub: string, query: URLSearchParams): string {
  return `wss://${api.server.host}/api/v1/namespaces/${ns}/pods/${pod}/${sub}?${query}`;
}

/**
 * Runs a pod's calls as hahaha does: every port-forward call on one pods/portforward WebSocket
 * (port i on channel 2i), each exec on a pods/exec WebSocket of its own. Resolves with each
 * call's duration in ms (start → its HTTP status line, or → the exec's status on channel 3), or
 * with its error, in the order of `calls`.
 */
export function floorCalls(api: Api, ns: string, pod: string, calls: readonly { container: string; call: FloorCall }[]): Promise<(number | Error)[]> {
  const forwards = calls.flatMap((c) => (c.call.kind === 'portforward' ? [c.call] : []));
  const results = new Map<FloorCall, Promise<number | Error>>();
  if (forwards.length > 0) {
    const times = floorSocket(
      api,
      `portforward`,
      ns,
      pod,
      new URLSearchParams({ ports: forwards.map((f) => f.port).join(',') }),
      'v4.channel.k8s.io',
      (ws, finish) => {
        ws.on('open', () => {
          forwards.forEach((f, i) => {
            const http = `${f.method} ${f.path} HTTP/1.1\r\nHost: localhost:${f.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
            ws.send(Buffer.concat([Buffer.of(2 * i), Buffer.from(http)]));
          });
        });
        const answers = forwards.map(() => '');
        ws.on('message', (data: Buffer) => {
          // data channel 2i of port i; its first 2 bytes (the port) come in a frame of their own
          const channel = data[0] ?? 1;
          if (channel % 2 !== 0 || data.length <= 3) return;
          answers[channel / 2] += data.subarray(1).toString('latin1');
          if (answers[channel / 2]?.includes('HTTP/1.')) finish(channel / 2);
        });
      },
      forwards.length,
    );
    forwards.forEach((f, i) => {
      results.set(
        f,
        times.then((t) => t[i] as number | Error),
      );
    });
  }
  for (const c of calls) {
    if (c.call.kind !== 'exec') continue;
    const query = new URLSearchParams({ container: c.container, stdout: 'true', stderr: 'true' });
    for (const arg of c.call.command) query.append('command', arg);
    const times = floorSocket(
      api,
      'exec',
      ns,
      pod,
      query,
      'v5.channel.k8s.io',
      (ws, finish) => {
        // channel 3 carries the command's final status
        ws.on('message', (data: Buffer) => {
          if (data[0] === 3) finish(0);
        });
      },
      1,
    );
    results.set(
      c.call,
      times.then((t) => t[0] as number | Error),
    );
  }
  return Promise.all(calls.map((c) => results.get(c.call) as Promise<number | Error>));
}

/**
 * One channel WebSocket carrying `count` calls; `speak` sends them and calls finish(i) when call
 * i is answered. The socket is closed once all are; a call not answered when it closes or
 * fails ends then.
 */
function floorSocket(
  api: Api,
  sub: string,
  ns: string,
  pod: string,
  query: URLSearchParams,
  protocol: string,
  speak: (ws: WebSocket, finish: (i: number) => void) => void,
  count: number,
): Promise<(number | Error)[]> {
  const t = performance.now();
  return new Promise((resolve) => {
    const times: (number | Error | undefined)[] = new Array(count).fill(undefined);
    const ws = new WebSocket(channelUrl(api, ns, pod, sub, query), [protocol], {
      agent: api.wsAgent ?? api.agent,
      headers: api.headers,
      perMessageDeflate: false,
    });
    const settle = (i: number, r: number | Error) => {
      if (times[i] !== undefined) return;
      times[i] = r;
      if (times.every((x) => x !== undefined)) {
        ws.terminate();
        resolve(times as (number | Error)[]);
      }
    };
    const all = (r: () => number | Error) => {
      for (let i = 0; i < count; i++) settle(i, r());
    };
    speak(ws, (i) => settle(i, performance.now() - t));
    ws.on('close', () => all(() => performance.now() - t));
    ws.on('error', (err) => all(() => err));
    setTimeout(() => {
      all(() => new Error('timed out after 10 s'));
      ws.terminate();
    }, 10_000).unref();
  });
}

export const SIDECARS: { container: { name: string; image: string; command: string[] }; call: FloorCall }[] = [
  {
    container: { name: 'linkerd-proxy', image: 'example.invalid/linkerd-proxy:bench', command: ['fake-sidecar', 'linkerd'] },
    call: { kind: 'portforward', port: 4191, method: 'POST', path: '/shutdown' },
  },
  {
    container: { name: 'secure-logs-fluentd', image: 'example.invalid/fluentd:bench', command: ['fake-sidecar', 'fluentd'] },
    call: { kind: 'portforward', port: 24444, method: 'GET', path: '/api/processes.killWorkers' },
  },
  {
    container: { name: 'vks-sidecar', image: 'example.invalid/vks:bench', command: ['fake-sidecar', 'vks'] },
    call: { kind: 'exec', command: ['/bin/kill', '-s', 'INT', '1'] },
  },
];

/**
 * An Api from a kubeconfig file with a token user (as bench/cluster.ts writes them). With
 * `restSockets`, REST calls share at most that many keep-alive connections (hahaha's bound is 16)
 * and the channel WebSockets get an agent of their own.
 */
export function apiFromKubeconfig(file: string, restSockets?: number): Api {
  const kc = JSON.parse(readFileSync(file, 'utf8'));
  const cluster = kc.clusters[0].cluster;
  const ca = Buffer.from(cluster['certificate-authority-data'], 'base64');
  // One SecureContext for every connection: given only `ca`, tls.connect builds (and parses the
  // CA into) a context of its own per connection, which a reaper need not pay.
  const secureContext = createSecureContext({ ca });
  // keep-alive for plain requests; an upgraded socket leaves the pool (node emits agentRemove on
  // upgrade), its TLS session stays cached for the next
  const agent = new Agent({ keepAlive: true, ca, secureContext, maxCachedSessions: 100, ...(restSockets !== undefined && { maxSockets: restSockets }) });
  return {
    server: new URL(cluster.server),
    agent,
    headers: { authorization: `Bearer ${kc.users[0].user.token}` },
    ...(restSockets !== undefined && { wsAgent: new Agent({ ca, secureContext, maxCachedSessions: 100 }) }),
  };
}

/** A core/v1 Event as hahaha's event sink writes it, about `regarding`. */
function floorEvent(api: Api, regarding: { apiVersion: string; kind: string; namespace: string; name: string; uid: string }, reason: string, message: string) {
  const at = new Date().toISOString();
  return apiJson(api, 'POST', `/api/v1/namespaces/${regarding.namespace}/events`, {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${regarding.name}.`, namespace: regarding.namespace },
    involvedObject: regarding,
    type: 'Normal',
    reason,
    action: reason,
    message,
    source: { component: 'bench-floor' },
    reportingComponent: 'bench-floor',
    reportingInstance: 'bench-floor',
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  });
}

/**
 * The floor's whole reap of a pod whose main container has terminated, with the requests hahaha
 * makes for it (API requests per reaped pod in the bench's burst): the catalog calls of its
 * sidecars (one pods/portforward for all HTTP sidecars, one pods/exec each), one event per
 * sidecar on the pod, one read of the pod (hahaha's verification) and one event on its Job.
 */
export async function floorReap(api: Api, pod: any): Promise<void> {
  const { namespace, name, uid } = pod.metadata as { namespace: string; name: string; uid: string };
  const names = new Set((pod.spec.containers as { name: string }[]).map((c) => c.name));
  const sidecars = SIDECARS.filter((s) => names.has(s.container.name));
  const results = await floorCalls(
    api,
    namespace,
    name,
    sidecars.map((s) => ({ container: s.container.name, call: s.call })),
  );
  const onPod = { apiVersion: 'v1', kind: 'Pod', namespace, name, uid };
  await Promise.all(
    sidecars.map((s, i) => {
      const r = results[i];
      const how = r instanceof Error ? `failed: ${r.message}` : `in ${(r as number).toFixed(0)} ms`;
      return floorEvent(api, onPod, 'Killing', `Stopping container ${s.container.name}: asked ${how}`);
    }),
  );
  await apiJson(api, 'GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
  const owner = (pod.metadata.ownerReferences ?? []).find((o: { controller?: boolean }) => o.controller);
  if (owner !== undefined) {
    const job = { apiVersion: owner.apiVersion, kind: owner.kind, namespace, name: owner.name, uid: owner.uid };
    await floorEvent(api, job, 'SidecarsShutDown', `Pod ${name}: ${sidecars.length} sidecars stopped`);
  }
}
