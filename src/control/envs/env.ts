/**
 * The single environment: one kernel copy plus Gymnasium's episode logic — the time limit
 * as truncation (Gymnasium's `TimeLimit` wrapper), order checks (no step before `reset`,
 * none after the episode ended) and action validation with errors that name the
 * environment and the problem.
 */
import { Rng } from '../../core/rng.ts';
import type { ActionArray, EnvKernel, EnvSpec } from './kernel.ts';
import type { ActionSpace, Env, EnvId, ObservationSpace, StepResult } from './types.ts';

/** Check a seed: Gymnasium takes integer seeds. */
export function checkSeed(id: string, seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new Error(`${id}: seed must be a safe integer, got ${seed}`);
}

/** Check a physics state for length and finiteness; `where` names the env (and copy). */
export function checkState(spec: EnvSpec, where: string, state: readonly number[]): void {
  const names = spec.stateNames;
  if (!Array.isArray(state) || state.length !== names.length) {
    const len = Array.isArray(state) ? state.length : typeof state;
    throw new Error(`${where}: setState expects ${names.length} numbers [${names.join(', ')}], got ${len}`);
  }
  for (let k = 0; k < names.length; k++) {
    const v = state[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${where}: setState component ${k} (${names[k]}) must be a finite number, got ${v}`);
    }
  }
}

/** Error text for an invalid discrete action, or null when it is valid. */
export function discreteActionProblem(numActions: number, a: number): string | null {
  if (Number.isNaN(a)) return 'is NaN';
  if (!Number.isInteger(a)) return `${a} is not an integer`;
  if (a < 0 || a >= numActions) return `${a} is out of range; expected an integer in [0, ${numActions - 1}]`;
  return null;
}

class SingleEnv implements Env {
  readonly id: EnvId;
  readonly observationSpace: ObservationSpace;
  readonly actionSpace: ActionSpace;
  readonly rewardThreshold: number | null;
  readonly maxEpisodeSteps: number;

  private readonly kernel: EnvKernel;
  private rng = new Rng(0);
  private readonly actionBuf: ActionArray;
  private readonly obsBuf: Float32Array;
  private readonly rewardBuf = new Float64Array(1);
  private readonly terminatedBuf = new Uint8Array(1);
  private started = false;
  private finished = false;
  private steps = 0;

  constructor(private readonly spec: EnvSpec) {
    this.id = spec.id;
    this.observationSpace = spec.observationSpace();
    this.actionSpace = spec.actionSpace();
    this.rewardThreshold = spec.rewardThreshold;
    this.maxEpisodeSteps = spec.maxEpisodeSteps;
    this.kernel = spec.createKernel(1);
    this.actionBuf = spec.numActions > 0 ? new Int32Array(1) : new Float64Array(spec.actionDim);
    this.obsBuf = new Float32Array(spec.obsDim);
  }

  reset(seed?: number): Float32Array {
    if (seed !== undefined) {
      checkSeed(this.id, seed);
      this.rng = new Rng(seed);
    }
    this.kernel.resetOne(0, this.rng);
    this.started = true;
    this.finished = false;
    this.steps = 0;
    this.kernel.observeOne(0, this.obsBuf, 0);
    return this.obsBuf.slice();
  }

  step(action: number | ArrayLike<number>): StepResult {
    if (!this.started) throw new Error(`${this.id}: step() called before reset()`);
    if (this.finished) {
      throw new Error(`${this.id}: step() called after the episode ended (terminated or truncated); call reset() first`);
    }
    this.setAction(action);
    this.kernel.stepBatch(this.actionBuf, this.obsBuf, this.rewardBuf, this.terminatedBuf);
    this.steps++;
    const terminated = this.terminatedBuf[0] === 1;
    const truncated = this.steps >= this.maxEpisodeSteps;
    if (terminated || truncated) this.finished = true;
    return { observation: this.obsBuf.slice(), reward: this.rewardBuf[0]!, terminated, truncated };
  }

  getState(): number[] {
    return this.kernel.getState(0);
  }

  setState(state: number[]): void {
    checkState(this.spec, this.id, state);
    this.kernel.setState(0, state);
  }

  private setAction(action: number | ArrayLike<number>): void {
    const spec = this.spec;
    let values: ArrayLike<number>;
    if (typeof action === 'number') {
      values = [action];
    } else if (action !== null && typeof action === 'object' && typeof action.length === 'number') {
      values = action;
    } else {
      throw new Error(`${this.id}: action must be a number or an array of numbers, got ${typeof action}`);
    }
    const expected = spec.numActions > 0 ? 1 : spec.actionDim;
    if (values.length !== expected) {
      throw new Error(`${this.id}: action must have length ${expected}, got length ${values.length}`);
    }
    for (let k = 0; k < expected; k++) {
      const a = values[k];
      if (typeof a !== 'number') throw new Error(`${this.id}: action component ${k} must be a number, got ${typeof a}`);
      if (spec.numActions > 0) {
        const problem = discreteActionProblem(spec.numActions, a);
        if (problem !== null) throw new Error(`${this.id}: discrete action ${problem}`);
      } else if (Number.isNaN(a)) {
        throw new Error(`${this.id}: action component ${k} is NaN`);
      }
      this.actionBuf[k] = a;
    }
  }
}

export function createEnv(spec: EnvSpec): Env {
  return new SingleEnv(spec);
}
