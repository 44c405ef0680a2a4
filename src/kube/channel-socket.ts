/**
 * Kubernetes "channel" WebSockets (exec, port-forward) to a pod: each binary message carries its
 * channel number in the first byte.
 */
import type WebSocket from 'ws';
import type { PodRef } from '../ports.ts';
import type { KubeClient } from './kube-client.ts';

/** Prepends the channel byte to a payload. */
export function channelFrame(channel: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.of(channel), payload]);
}

/**
 * Opens a channel socket to a pod subresource (exec, portforward). `timeoutMs` bounds the
 * handshake and, through the returned signal, the whole call; the caller's signal aborts it too.
 */
export async function openPodChannel(
  client: KubeClient,
  pod: PodRef,
  subresource: 'exec' | 'portforward',
  query: URLSearchParams,
  call: { readonly protocols: readonly string[]; readonly timeoutMs: number; readonly signal?: AbortSignal | undefined },
): Promise<{ ws: WebSocket; signal: AbortSignal }> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal === undefined ? timeout : AbortSignal.any([call.signal, timeout]);
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}/${subresource}?${query}`;
  const ws = await client.openSocket(path, call.protocols, { handshakeTimeoutMs: call.timeoutMs, signal });
  return { ws, signal };
}
