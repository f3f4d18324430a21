import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** A pino logger at `info` that keeps every line: parsed, and as written (to look for text that must not be there). */
export function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>>; text: () => string } {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines, text: () => raw.join('\n') };
}
