/**
 * Pendulum-v1, number for number as Gymnasium 1.x `classic_control/pendulum.py`
 * (the classic inverted-pendulum swing-up).
 *
 * State (float64): [theta, theta_dot] with theta = 0 upright; theta is NOT wrapped in the
 * state. The action is a length-1 torque u. One step (g = 10, m = l = 1, dt = 0.05):
 *
 *   u          = clip(u, -2, 2)
 *   cost       = angle_normalize(theta)^2 + 0.1 theta_dot^2 + 0.001 u^2
 *   theta_dot' = clip(theta_dot + (3 g / (2 l) sin(theta) + 3 / (m l^2) u) dt, -8, 8)
 *   theta'     = theta + theta_dot' dt
 *   reward     = -cost
 *
 * with angle_normalize(x) = ((x + pi) mod 2 pi) - pi (Python's floor modulo). The episode
 * never terminates; it is truncated after 200 steps; there is no reward threshold.
 * Observation: [cos theta, sin theta, theta_dot] in float32. Initial state: theta uniform
 * in [-pi, pi), theta_dot uniform in [-1, 1). The action is used at the precision it is
 * given (a JS number is a float64: this equals Gymnasium fed a float64 action array).
 */
import type { Rng } from '../../core/rng.ts';
import { box, type ActionArray, type EnvKernel, type EnvSpec } from './kernel.ts';
import { cos, sin } from './trig.ts';

const MAX_SPEED = 8;
const MAX_TORQUE = 2.0;
const DT = 0.05;
const G = 10.0;
const M = 1.0;
const L = 1.0;
const PI = Math.PI;
const TWO_PI = 2 * PI;
const SIN_COEF = (3 * G) / (2 * L); // 3 * g / (2 * l)
const TORQUE_COEF = 3.0 / (M * (L * L)); // 3.0 / (m * l**2)

/** ((x + pi) % (2 pi)) - pi with NumPy's floor modulo (the result takes the divisor's sign). */
export function angleNormalize(x: number): number {
  let mod = (x + PI) % TWO_PI;
  if (mod !== 0) {
    if (mod < 0) mod += TWO_PI;
  } else {
    mod = 0; // numpy: copysign(0, divisor) = +0
  }
  return mod - PI;
}

export class PendulumKernel implements EnvKernel {
  readonly theta: Float64Array;
  readonly thetaDot: Float64Array;

  constructor(readonly n: number) {
    this.theta = new Float64Array(n);
    this.thetaDot = new Float64Array(n);
  }

  stepBatch(actions: ActionArray, obs: Float32Array, rewards: Float64Array, terminated: Uint8Array): void {
    const TH = this.theta;
    const THD = this.thetaDot;
    for (let i = 0; i < this.n; i++) {
      const th = TH[i]!;
      const thdot = THD[i]!;
      const a = actions[i]!;
      const u = a < -MAX_TORQUE ? -MAX_TORQUE : a > MAX_TORQUE ? MAX_TORQUE : a;
      const an = angleNormalize(th);
      const costs = an * an + 0.1 * (thdot * thdot) + 0.001 * (u * u);
      let newthdot = thdot + (SIN_COEF * sin(th) + TORQUE_COEF * u) * DT;
      newthdot = newthdot < -MAX_SPEED ? -MAX_SPEED : newthdot > MAX_SPEED ? MAX_SPEED : newthdot;
      const newth = th + newthdot * DT;
      TH[i] = newth;
      THD[i] = newthdot;
      const o = 3 * i;
      obs[o] = cos(newth);
      obs[o + 1] = sin(newth);
      obs[o + 2] = newthdot;
      rewards[i] = -costs;
      terminated[i] = 0;
    }
  }

  resetOne(i: number, rng: Rng): void {
    this.theta[i] = rng.uniformRange(-PI, PI);
    this.thetaDot[i] = rng.uniformRange(-1.0, 1.0);
  }

  observeOne(i: number, obs: Float32Array, offset: number): void {
    const th = this.theta[i]!;
    obs[offset] = cos(th);
    obs[offset + 1] = sin(th);
    obs[offset + 2] = this.thetaDot[i]!;
  }

  getState(i: number): number[] {
    return [this.theta[i]!, this.thetaDot[i]!];
  }

  setState(i: number, state: readonly number[]): void {
    this.theta[i] = state[0]!;
    this.thetaDot[i] = state[1]!;
  }
}

export const pendulumSpec: EnvSpec = {
  id: 'Pendulum-v1',
  obsDim: 3,
  stateNames: ['theta', 'theta_dot'],
  numActions: 0,
  actionDim: 1,
  rewardThreshold: null,
  maxEpisodeSteps: 200,
  observationSpace: () => box([-1, -1, -MAX_SPEED], [1, 1, MAX_SPEED]),
  actionSpace: () => ({ type: 'box', ...box([-MAX_TORQUE], [MAX_TORQUE]) }),
  createKernel: (n) => new PendulumKernel(n),
};
