/** A stream for the trainers' console output in tests: it keeps what is written (not a terminal: plain lines, no bar). */
import { Writable } from 'node:stream';
import type { ProgressStream } from '../../src/report/progress.ts';

export function collector(): ProgressStream & { text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { text: () => chunks.join('') });
}
