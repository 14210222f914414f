/**
 * The user's code contained during a run. Reward functions are the user's code, and three
 * things they can do would otherwise end a run without a trace (exit status 0 and no
 * checkpoint, or Node's dump of the surrounding source): call `process.exit()`, leave a
 * promise rejection unhandled, or throw from a callback (a timer, an event handler). While
 * a run holds a `UserCodeGuard`:
 *
 * - `process.exit()` called from a reward function's code (its async context, see
 *   `runningReward` in rewards/combine.ts) does not exit: it throws `UserExitError` into that
 *   code (so the reward fails for that batch) and is recorded;
 * - an unhandled rejection or an uncaught exception is recorded, named after the reward whose
 *   async context it comes from (or as coming from no reward function);
 *
 * and the run loop, seeing the incident, saves a checkpoint at the end of the step and stops
 * with an error that describes it (`describeIncident`). A plain `process.exit()` of any other
 * code, and the loop's own second-Ctrl-C exit, still exit.
 */
import { runningReward } from '../../rewards/combine.ts';

/** What the user's code did. */
export interface Incident {
  kind: 'exit' | 'rejection' | 'exception';
  /** The reward function whose code it was, or null when no reward's context was active. */
  reward: string | null;
  /** The exit code, or the error's message. */
  detail: string;
  /** The first frames of the error's (or the exit call's) stack, or null. */
  stack: string | null;
}

/** Thrown into a reward function that called `process.exit()` during a run. */
export class UserExitError extends Error {
  constructor(readonly reward: string, readonly code: string) {
    super(`reward "${reward}" called process.exit(${code}); a reward function must return its values (or throw), not end the process`);
    this.name = 'UserExitError';
  }
}

function stackHead(stack: string | undefined, skip = 0): string | null {
  if (!stack) return null;
  const frames = stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(skip, skip + 4);
  return frames.length ? frames.map((l) => l.trim()).join('\n') : null;
}

function messageOf(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  try {
    return typeof reason === 'string' ? reason : JSON.stringify(reason) ?? String(reason);
  } catch {
    return String(reason);
  }
}

/** Contains the user's code from `install()` until `release()` (see the file header). */
export class UserCodeGuard {
  /** The first incident since `install()`, or null. */
  incident: Incident | null = null;
  private readonly previousExit: typeof process.exit;

  private constructor() {
    this.previousExit = process.exit;
  }

  static install(): UserCodeGuard {
    const guard = new UserCodeGuard();
    const previous = guard.previousExit;
    process.exit = ((code?: string | number | null) => {
      const reward = runningReward();
      if (reward === undefined) return previous.call(process, code ?? undefined);
      const error = new UserExitError(reward, code === undefined ? '' : String(code));
      guard.record({ kind: 'exit', reward, detail: String(code ?? ''), stack: stackHead(error.stack, 1) });
      throw error;
    }) as typeof process.exit;
    process.on('unhandledRejection', guard.onRejection);
    process.on('uncaughtException', guard.onException);
    return guard;
  }

  release(): void {
    process.exit = this.previousExit;
    process.off('unhandledRejection', this.onRejection);
    process.off('uncaughtException', this.onException);
  }

  private record(incident: Incident): void {
    this.incident ??= incident;
  }

  private readonly onRejection = (reason: unknown): void => {
    if (reason instanceof UserExitError) return; // already recorded when process.exit() was called
    this.record({ kind: 'rejection', reward: runningReward() ?? null, detail: messageOf(reason), stack: stackHead(reason instanceof Error ? reason.stack : undefined) });
  };

  private readonly onException = (error: unknown): void => {
    if (error instanceof UserExitError) return;
    this.record({ kind: 'exception', reward: runningReward() ?? null, detail: messageOf(error), stack: stackHead(error instanceof Error ? error.stack : undefined) });
  };
}

/**
 * What happened, where (the stack head, indented) and what to do, ending with `kept`: the
 * sentence about the checkpoint the run keeps.
 */
export function describeIncident(incident: Incident, kept: string): string {
  const who = incident.reward === null ? 'code outside any reward function' : `reward "${incident.reward}"`;
  const stack = incident.stack ? `\n${incident.stack.split('\n').map((l) => `    ${l}`).join('\n')}` : '';
  const what =
    incident.kind === 'exit'
      ? [`${who} called process.exit(${incident.detail})`, 'A reward function must return its values (or throw), not end the process.']
      : incident.kind === 'rejection'
        ? [`${who} left a promise rejection unhandled: ${incident.detail}`, 'Await or catch every promise the reward function makes.']
        : [`${who} threw from a callback (a timer or an event handler): ${incident.detail}`, "Catch errors inside the reward's callbacks."];
  return `${what[0]}${stack}\n${what[1]} ${kept}`;
}
