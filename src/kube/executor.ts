/**
 * Executor over the API server's pods/exec WebSocket (v5/v4.channel.k8s.io). Channel 1 is
 * stdout, 2 stderr, 3 the final Status: Success, or Failure with reason NonZeroExitCode and the
 * exit code as a cause, or Failure for a command that could not run at all.
 */
import type { ExecCall, ExecResult, Executor, PodRef } from '../ports.ts';
import { ABNORMAL_CLOSURE, LOST_API_SERVER, openPodChannel } from './channel-socket.ts';
import type { KubeClient } from './kube-client.ts';

const MAX_OUTPUT = 4096;

interface StatusObject {
  status?: string;
  message?: string;
  reason?: string;
  details?: { causes?: { reason?: string; message?: string }[] };
}

/** Exit code from the exec Status object; throws when the command did not run. */
export function exitCodeFromStatus(status: StatusObject): number {
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = Number(cause?.message);
    if (Number.isInteger(code)) return code;
  }
  throw new Error(status.message ?? `exec failed (${status.reason ?? 'unknown reason'})`);
}

export class ApiExecutor implements Executor {
  private readonly client: KubeClient;

  constructor(client: KubeClient) {
    this.client = client;
  }

  async exec(pod: PodRef, call: ExecCall): Promise<ExecResult> {
    const query = new URLSearchParams({ container: call.container, stdout: 'true', stderr: 'true' });
    for (const arg of call.command) query.append('command', arg);
    const { socket, signal } = await openPodChannel(this.client, pod, 'exec', query, {
      protocols: ['v5.channel.k8s.io', 'v4.channel.k8s.io'],
      timeoutMs: call.timeoutMs,
      signal: call.signal,
    });

    return new Promise<ExecResult>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      let statusText = '';
      const onAbort = () => {
        socket.terminate();
        reject(new Error(`timed out after ${call.timeoutMs / 1000}s`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.start({
        message(channel, data) {
          const text = data.toString('utf8');
          if (channel === 1 && stdout.length < MAX_OUTPUT) stdout += text;
          else if (channel === 2 && stderr.length < MAX_OUTPUT) stderr += text;
          else if (channel === 3) statusText += text;
        },
        close(code, error) {
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) return;
          let status: StatusObject | undefined;
          try {
            if (statusText !== '') status = JSON.parse(statusText) as StatusObject;
          } catch {
            reject(new Error(`unreadable exec status: ${statusText.slice(0, 200)}`));
            return;
          }
          if (status === undefined) {
            reject(error ?? new Error(code === ABNORMAL_CLOSURE ? LOST_API_SERVER : 'exec stream closed without an exit status'));
            return;
          }
          try {
            resolve({ exitCode: exitCodeFromStatus(status), stdout, stderr });
          } catch (err) {
            reject(err);
          }
        },
      });
    });
  }
}
