/**
 * Worker-thread entry for `verifyMathAsync`: runs one synchronous check per message.
 * The payload was validated by the caller (`resolveVerifyOptions`, `checkText`).
 */
import { serveWorker } from './pool.ts';
import { verifyResolved } from './verify.ts';

interface CheckRequest {
  gold: string;
  prediction: string;
  timeoutMs: number;
  relTol: number;
  allowSetRelation: boolean;
}

serveWorker((payload) => {
  const { gold, prediction, timeoutMs, relTol, allowSetRelation } = payload as CheckRequest;
  return verifyResolved(gold, prediction, { timeoutMs, relTol, allowSetRelation });
});
