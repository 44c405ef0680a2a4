import { randomBytes } from 'node:crypto';
import type { ExecAttempt } from '../domain/catalog.ts';
import type { EphemeralRunner, Executor } from '../ports.ts';
import { type AttemptOutcome, type AttemptTarget, causeOf, errorText, type Strategy } from './strategy.ts';

/**
 * When set, an exec that fails because the command is not in the sidecar's image (distroless)
 * runs the same command in an ephemeral container of this image next to the sidecar instead.
 */
export interface EphemeralFallback {
  readonly runner: EphemeralRunner;
  /** An image that has the catalog's commands (kill, killall), pinned by digest. */
  readonly image: string;
}

/** Runs a command (no shell) inside the sidecar container through pods/exec. */
export function execStrategy(executor: Executor, ephemeral?: EphemeralFallback): Strategy<ExecAttempt> {
  const viaEphemeral = async (target: AttemptTarget, attempt: ExecAttempt, missing: string): Promise<AttemptOutcome> => {
    if (ephemeral === undefined) return { ok: false, error: missing, cause: 'missing-binary' };
    const name = `hahaha-signal-${randomBytes(3).toString('hex')}`;
    try {
      await ephemeral.runner.start(target.pod, { name, image: ephemeral.image, command: attempt.command, targetContainerName: target.container });
    } catch (err) {
      return { ok: false, error: `${missing}; then adding ephemeral container ${name}: ${errorText(err)}`, cause: causeOf(err) };
    }
    return {
      ok: true,
      detail: `ephemeral container ${name} started`,
      via: `exec ${attempt.command.join(' ')} in ephemeral container ${name} (${ephemeral.image}), the image has no ${attempt.command[0]}`,
    };
  };
  return {
    async run(target: AttemptTarget, attempt: ExecAttempt, signal?: AbortSignal): Promise<AttemptOutcome> {
      try {
        const result = await executor.exec(target.pod, {
          container: target.container,
          command: attempt.command,
          timeoutMs: attempt.timeoutSeconds * 1000,
          ...(signal !== undefined && { signal }),
        });
        if (result.exitCode === 0) return { ok: true, detail: 'exit code 0' };
        const stderr = result.stderr.trim().slice(0, 200);
        // 126/127: the shell convention (and nsenter's) for "cannot execute" / "not found".
        const missing = result.exitCode === 126 || result.exitCode === 127 || /executable file not found|no such file or directory/i.test(stderr);
        if (missing) return viaEphemeral(target, attempt, `command exited with code ${result.exitCode}${stderr === '' ? '' : `: ${stderr}`}`);
        return {
          ok: false,
          error: `command exited with code ${result.exitCode}${stderr === '' ? '' : `: ${stderr}`}`,
          cause: missing ? 'missing-binary' : result.exitCode > 128 ? 'cut-off' : 'rejected',
        };
      } catch (err) {
        const cause = causeOf(err);
        if (cause === 'missing-binary') return viaEphemeral(target, attempt, errorText(err));
        return { ok: false, error: errorText(err), cause };
      }
    },
  };
}
