/**
 * Opens a Kubernetes "channel" WebSocket (exec, port-forward) to the API server with the
 * kubeconfig's credentials, bounded by a handshake timeout. Each binary message carries its
 * channel number in the first byte.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import WebSocket from 'ws';
import type { PodRef } from '../ports.ts';

export interface ChannelSocketOptions {
  readonly protocols: readonly string[];
  readonly handshakeTimeoutMs: number;
  readonly signal?: AbortSignal;
}

export async function openChannelSocket(kc: KubeConfig, path: string, opts: ChannelSocketOptions): Promise<WebSocket> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(path, cluster.server.replace(/^http/, 'ws'));
  const wsOptions: WebSocket.ClientOptions = { handshakeTimeout: opts.handshakeTimeoutMs, perMessageDeflate: false };
  await kc.applyToHTTPSOptions(wsOptions);
  opts.signal?.throwIfAborted();

  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [...opts.protocols], wsOptions);
    const onAbort = () => {
      ws.terminate();
      reject(opts.signal?.reason ?? new Error('aborted'));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    ws.once('open', () => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      opts.signal?.removeEventListener('abort', onAbort);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 2000) body += d;
      });
      res.on('end', () => {
        let message = body.trim();
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // not a Status object; keep the raw text
        }
        reject(new Error(`API server refused the upgrade: HTTP ${res.statusCode ?? '?'}${message === '' ? '' : `: ${message}`}`));
        ws.terminate();
      });
    });
    ws.once('error', (err) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
}

/** Prepends the channel byte to a payload. */
export function channelFrame(channel: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.of(channel), payload]);
}

/**
 * Opens a channel socket to a pod subresource (exec, portforward). `timeoutMs` bounds the
 * handshake and, through the returned signal, the whole call; the caller's signal aborts it too.
 */
export async function openPodChannel(
  kc: KubeConfig,
  pod: PodRef,
  subresource: 'exec' | 'portforward',
  query: URLSearchParams,
  call: { readonly protocols: readonly string[]; readonly timeoutMs: number; readonly signal?: AbortSignal | undefined },
): Promise<{ ws: WebSocket; signal: AbortSignal }> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal === undefined ? timeout : AbortSignal.any([call.signal, timeout]);
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}/${subresource}?${query}`;
  const ws = await openChannelSocket(kc, path, { protocols: call.protocols, handshakeTimeoutMs: call.timeoutMs, signal });
  return { ws, signal };
}
