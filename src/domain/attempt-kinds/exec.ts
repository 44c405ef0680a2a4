/** `exec`: a command (argv, no shell) run inside the sidecar container through pods/exec. */
import type { AttemptKind, FieldCheck } from './kind.ts';

export interface ExecAttempt {
  readonly kind: 'exec';
  /** argv run inside the sidecar container; no shell is involved. */
  readonly command: readonly string[];
  readonly timeoutSeconds: number;
}

export const execKind: AttemptKind<ExecAttempt> = {
  name: 'exec',
  synopsis: 'exec {command}',
  parse(v: unknown, p: string, c: FieldCheck) {
    const e = c.mapping(v, p, ['command'], 'command');
    if (e === undefined) return undefined;
    const list = c.list(e.command, `${p}.command`, 'a list of strings (argv, no shell), like [/bin/kill, -s, INT, "1"]');
    if (list === undefined) return undefined;
    const command = list.map((s, i) =>
      typeof s === 'string' && s !== '' ? s : c.fail(`${p}.command[${i}]`, `must be a non-empty string (quote numbers: "1"), got ${c.describe(s)}`),
    );
    if (command.some((s) => s === undefined)) return undefined;
    return { kind: 'exec', command: command as string[] };
  },
  describe: (a) => `exec ${a.command.join(' ')}`,
  json: (a) => ({ kind: 'exec', command: [...a.command] }),
};
