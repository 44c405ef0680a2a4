import type { ExecAttempt } from '../domain/catalog.ts';
import type { Executor } from '../ports.ts';
import { type AttemptOutcome, type AttemptTarget, type Strategy, causeOf, errorText } from './strategy.ts';

/** Runs a command (no shell) inside the sidecar container through pods/exec. */
export function execStrategy(executor: Executor): Strategy<ExecAttempt> {
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
        return {
          ok: false,
          error: `command exited with code ${result.exitCode}${stderr === '' ? '' : `: ${stderr}`}`,
          cause: missing ? 'missing-binary' : result.exitCode > 128 ? 'cut-off' : 'rejected',
        };
      } catch (err) {
        return { ok: false, error: errorText(err), cause: causeOf(err) };
      }
    },
  };
}
