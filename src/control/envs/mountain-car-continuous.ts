/**
 * MountainCarContinuous-v0, number for number as Gymnasium 1.x
 * `classic_control/continuous_mountain_car.py` under NumPy 2 (NEP 50) promotion rules.
 *
 * State [position, velocity]; the action is a length-1 array a. One step:
 *
 *   force     = min(max(a, -1), 1)
 *   velocity += force * 0.0015 - 0.0025 * cos(3 position), clipped to [-0.07, 0.07]
 *   position += velocity, clipped to [-1.2, 0.6]
 *   if position == -1.2 and velocity < 0: velocity = 0      (inelastic left wall)
 *   terminated = position >= 0.45 and velocity >= 0
 *   reward     = (100 if terminated else 0) - 0.1 * a^2    (the RAW action, not the clipped force)
 *
 * and the new state is stored as float32 (it is also the observation). Initial state:
 * position uniform in [-0.6, -0.4) kept in float64, velocity 0. Time limit 999 steps,
 * reward threshold 90.
 *
 * Precision, step by step as Gymnasium computes it. The action is used at the precision it
 * is given (a JS number is a float64: this equals Gymnasium fed a float64 action array).
 * After the first step the state is float32, and NumPy 2 then does some operations in
 * float32: `3 * position` is rounded to float32 before the cosine; when the force was
 * clipped it is a Python float, so the velocity update `float32 += Python float` runs in
 * float32; a velocity clipped to +-0.07 is a Python float, so `position += velocity` runs
 * in float32; and comparing a float32 with a Python constant (0.07, 0.6, -1.2, 0.45)
 * compares against the constant rounded to float32. The kernel tracks, per value, whether
 * it is a float32, a float64 or a Python float, and follows those rules exactly.
 *
 * The penalty is computed as a * a * 0.1 (exactly rounded); Gymnasium's math.pow(a, 2)
 * goes through the C library's pow, which on glibc differs from a * a in the last bit for
 * about 0.1 % of actions.
 *
 * A state set through `setState` counts as float32 when both values are exactly
 * representable in float32 (as every state reached by a step is) and as float64 otherwise
 * (as a fresh reset state is), so a trajectory replays from `getState()` exactly.
 */
import type { Rng } from '../../core/rng.ts';
import { box, type ActionArray, type EnvKernel, type EnvSpec } from './kernel.ts';
import { GOAL_VELOCITY, GRAVITY, MAX_POSITION, MAX_SPEED, MIN_POSITION, MountainCarState, mountainCarObservationSpace } from './mountain-car-track.ts';

const MIN_ACTION = -1.0;
const MAX_ACTION = 1.0;
const GOAL_POSITION = 0.45;
const POWER = 0.0015;

const fround = Math.fround;
// Python constants as NumPy 2 sees them next to a float32 scalar.
const MAX_SPEED_F32 = fround(MAX_SPEED);
const MAX_POSITION_F32 = fround(MAX_POSITION);
const MIN_POSITION_F32 = fround(MIN_POSITION);
const GOAL_POSITION_F32 = fround(GOAL_POSITION);

// Kinds of a scalar in the Python step: NumPy float32, NumPy float64, or a Python float
// (a "weak" scalar that takes the other operand's precision).
const F32 = 0;
const F64 = 1;
const PY = 2;

export class MountainCarContinuousKernel extends MountainCarState implements EnvKernel {
  /** 1 where the stored state is a float32 array (after a step), 0 where float64 (after reset). */
  readonly isFloat32: Uint8Array;

  constructor(n: number) {
    super(n);
    this.isFloat32 = new Uint8Array(n);
  }

  stepBatch(actions: ActionArray, obs: Float32Array, rewards: Float64Array, terminated: Uint8Array): void {
    const P = this.position;
    const V = this.velocity;
    const S32 = this.isFloat32;
    for (let i = 0; i < this.n; i++) {
      const action = actions[i]!;
      let position = P[i]!;
      let velocity = V[i]!;
      const stateKind = S32[i] === 1 ? F32 : F64;
      let pKind = stateKind;
      let vKind = stateKind;

      // force = min(max(action[0], min_action), max_action): a bound replaces the action
      // (and is a Python float) only when it is strictly beyond it.
      let force = action;
      let forceKind = F64;
      if (MIN_ACTION > force) {
        force = MIN_ACTION;
        forceKind = PY;
      }
      if (MAX_ACTION < force) {
        force = MAX_ACTION;
        forceKind = PY;
      }

      // velocity += force * power - 0.0025 * math.cos(3 * position)
      const threePos = pKind === F32 ? fround(3 * position) : 3 * position;
      const delta = force * POWER - GRAVITY * Math.cos(threePos); // kind: forceKind
      if (vKind === F32 && forceKind === PY) {
        velocity = fround(velocity + fround(delta));
      } else {
        velocity = velocity + delta;
        vKind = F64;
      }
      if (vKind === F32 ? velocity > MAX_SPEED_F32 : velocity > MAX_SPEED) {
        velocity = MAX_SPEED;
        vKind = PY;
      }
      if (vKind === F32 ? velocity < -MAX_SPEED_F32 : velocity < -MAX_SPEED) {
        velocity = -MAX_SPEED;
        vKind = PY;
      }

      // position += velocity
      if (pKind === F32 && vKind === F32) {
        position = fround(position + velocity);
      } else if (pKind === F32 && vKind === PY) {
        position = fround(position + fround(velocity));
      } else {
        position = position + velocity;
        pKind = F64;
      }
      if (pKind === F32 ? position > MAX_POSITION_F32 : position > MAX_POSITION) {
        position = MAX_POSITION;
        pKind = PY;
      }
      if (pKind === F32 ? position < MIN_POSITION_F32 : position < MIN_POSITION) {
        position = MIN_POSITION;
        pKind = PY;
      }
      if ((pKind === F32 ? position === MIN_POSITION_F32 : position === MIN_POSITION) && velocity < 0) velocity = 0;

      const done = (pKind === F32 ? position >= GOAL_POSITION_F32 : position >= GOAL_POSITION) && velocity >= GOAL_VELOCITY;
      let reward = done ? 100.0 : 0;
      reward -= action * action * 0.1;

      position = fround(position);
      velocity = fround(velocity);
      P[i] = position;
      V[i] = velocity;
      S32[i] = 1;
      obs[2 * i] = position;
      obs[2 * i + 1] = velocity;
      terminated[i] = done ? 1 : 0;
      rewards[i] = reward;
    }
  }

  override resetOne(i: number, rng: Rng): void {
    super.resetOne(i, rng);
    this.isFloat32[i] = 0;
  }

  setState(i: number, state: readonly number[]): void {
    const p = state[0]!;
    const v = state[1]!;
    this.position[i] = p;
    this.velocity[i] = v;
    this.isFloat32[i] = fround(p) === p && fround(v) === v ? 1 : 0;
  }
}

export const mountainCarContinuousSpec: EnvSpec = {
  id: 'MountainCarContinuous-v0',
  obsDim: 2,
  stateNames: ['position', 'velocity'],
  numActions: 0,
  actionDim: 1,
  rewardThreshold: 90,
  maxEpisodeSteps: 999,
  observationSpace: mountainCarObservationSpace,
  actionSpace: () => ({ type: 'box', ...box([MIN_ACTION], [MAX_ACTION]) }),
  createKernel: (n) => new MountainCarContinuousKernel(n),
};
