/**
 * Kubernetes "channel" WebSockets (exec, port-forward) to a pod: each binary message carries its
 * channel number in the first byte (./websocket.ts speaks the protocol).
 */
import type { PodRef } from '../ports.ts';
import type { KubeClient } from './kube-client.ts';
import { podPath } from './paths.ts';
import type { ChannelSocket } from './websocket.ts';

export { ABNORMAL_CLOSURE } from './websocket.ts';

/**
 * Why a channel socket ended without a close frame: the connection to the API server broke (it
 * restarted, or the network did), not the pod's side. The strategies tell this apart by its text.
 */
export const LOST_API_SERVER = 'lost the connection to the API server (the WebSocket closed without a close frame)';

/**
 * Opens a channel socket to a pod subresource (exec, portforward). `timeoutMs` bounds the
 * upgrade and, through the returned signal, the whole call; the caller's signal aborts it too.
 */
export async function openPodChannel(
  client: KubeClient,
  pod: PodRef,
  subresource: 'exec' | 'portforward',
  query: URLSearchParams,
  call: { readonly protocols: readonly string[]; readonly timeoutMs: number; readonly signal?: AbortSignal | undefined },
): Promise<{ socket: ChannelSocket; signal: AbortSignal }> {
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal === undefined ? timeout : AbortSignal.any([call.signal, timeout]);
  const path = `${podPath(pod, subresource)}?${query}`;
  const socket = await client.openSocket(path, call.protocols, { signal });
  return { socket, signal };
}
