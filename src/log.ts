import { type Logger, pino } from 'pino';

/** JSON logs on stdout; fields first, message second. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { name: 'hahaha', ...base }, timestamp: pino.stdTimeFunctions.isoTime });
}
