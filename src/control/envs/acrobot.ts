/**
 * Acrobot-v1, number for number as Gymnasium 1.x `classic_control/acrobot.py` (Sutton,
 * "Generalization in reinforcement learning: successful examples using sparse coarse
 * coding", NIPS 1995; dynamics as in Sutton & Barto's book, Gymnasium's default
 * `book_or_nips="book"`).
 *
 * State [theta1, theta2, dtheta1, dtheta2]: theta1 is the first link's angle from hanging
 * straight down, theta2 the second link's angle relative to the first. Actions 0, 1, 2
 * apply torque -1, 0, +1 at the joint between the links. One step integrates the
 * equations of motion over dt = 0.2 s with a single classical Runge-Kutta (RK4) step,
 * then wraps both angles into [-pi, pi] and bounds the speeds to [-4 pi, 4 pi] and
 * [-9 pi, 9 pi]. Observation: [cos t1, sin t1, cos t2, sin t2, dt1, dt2] in float32.
 * The episode terminates when the free end rises above the bar:
 * -cos(t1) - cos(t1 + t2) > 1; the reward is -1 per step and 0 on the terminating step.
 * Initial state: each component uniform in [-0.1, 0.1), rounded to float32 (Gymnasium
 * stores the reset state as float32; the steps then run in float64). Time limit 500
 * steps, reward threshold -100.
 *
 * Deliberate simplification: Gymnasium's `torque_noise_max` is 0 by default and is left out.
 */
import type { Rng } from '../../core/rng.ts';
import { box, type ActionArray, type EnvKernel, type EnvSpec } from './kernel.ts';
import { cos, sin } from './trig.ts';

const DT = 0.2;
const LINK_LENGTH_1 = 1.0;
const LINK_MASS_1 = 1.0;
const LINK_MASS_2 = 1.0;
const LINK_COM_POS_1 = 0.5;
const LINK_COM_POS_2 = 0.5;
const LINK_MOI = 1.0;
const G = 9.8;
const PI = Math.PI;
const MAX_VEL_1 = 4 * PI;
const MAX_VEL_2 = 9 * PI;
const AVAIL_TORQUE = [-1.0, 0.0, 1.0] as const;
const INIT_LOW = -0.1;
const INIT_HIGH = 0.1;

// Constant sub-expressions of `_dsdt`, evaluated in Gymnasium's order.
const m1 = LINK_MASS_1;
const m2 = LINK_MASS_2;
const l1 = LINK_LENGTH_1;
const lc1 = LINK_COM_POS_1;
const lc2 = LINK_COM_POS_2;
const I1 = LINK_MOI;
const I2 = LINK_MOI;
const D1_A = m1 * (lc1 * lc1); // m1 * lc1**2
const D1_B = l1 * l1 + lc2 * lc2; // l1**2 + lc2**2
const D1_C = 2 * l1 * lc2; // 2 * l1 * lc2 (times cos(theta2))
const D2_A = lc2 * lc2; // lc2**2
const D2_B = l1 * lc2; // l1 * lc2 (times cos(theta2))
const PHI2_K = m2 * lc2 * G;
const PHI1_A = -m2 * l1 * lc2; // times dtheta2**2 * sin(theta2)
const PHI1_B = 2 * m2 * l1 * lc2; // times dtheta2 * dtheta1 * sin(theta2)
const PHI1_C = (m1 * lc1 + m2 * l1) * G; // times cos(theta1 - pi/2)
const DD2_A = m2 * l1 * lc2; // times dtheta1**2 * sin(theta2)
const DD2_DEN = m2 * (lc2 * lc2) + I2; // minus d2**2 / d1
const HALF_PI = PI / 2.0;

/**
 * Derivatives [dtheta1, dtheta2, ddtheta1, ddtheta2] of the book dynamics with torque `a`,
 * written into out[0..3]. Mirrors `AcrobotEnv._dsdt`.
 */
function dsdt(theta1: number, theta2: number, dtheta1: number, dtheta2: number, a: number, out: Float64Array): void {
  const cos2 = cos(theta2);
  const sin2 = sin(theta2);
  const d1 = D1_A + m2 * (D1_B + D1_C * cos2) + I1 + I2;
  const d2 = m2 * (D2_A + D2_B * cos2) + I2;
  const phi2 = PHI2_K * cos(theta1 + theta2 - HALF_PI);
  const phi1 = PHI1_A * (dtheta2 * dtheta2) * sin2 - PHI1_B * dtheta2 * dtheta1 * sin2 + PHI1_C * cos(theta1 - HALF_PI) + phi2;
  const ddtheta2 = (a + (d2 / d1) * phi1 - DD2_A * (dtheta1 * dtheta1) * sin2 - phi2) / (DD2_DEN - (d2 * d2) / d1);
  const ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  out[0] = dtheta1;
  out[1] = dtheta2;
  out[2] = ddtheta1;
  out[3] = ddtheta2;
}

/** Gymnasium's `wrap(x, -pi, pi)`: shift by 2 pi until x is in [-pi, pi]. */
function wrap(x: number): number {
  const diff = PI - -PI;
  while (x > PI) x = x - diff;
  while (x < -PI) x = x + diff;
  return x;
}

/** Gymnasium's `bound(x, m, M)` = min(max(x, m), M). */
function bound(x: number, m: number, M: number): number {
  const y = m > x ? m : x;
  return M < y ? M : y;
}

export class AcrobotKernel implements EnvKernel {
  readonly theta1: Float64Array;
  readonly theta2: Float64Array;
  readonly dtheta1: Float64Array;
  readonly dtheta2: Float64Array;
  private readonly k1 = new Float64Array(4);
  private readonly k2 = new Float64Array(4);
  private readonly k3 = new Float64Array(4);
  private readonly k4 = new Float64Array(4);

  constructor(readonly n: number) {
    this.theta1 = new Float64Array(n);
    this.theta2 = new Float64Array(n);
    this.dtheta1 = new Float64Array(n);
    this.dtheta2 = new Float64Array(n);
  }

  stepBatch(actions: ActionArray, obs: Float32Array, rewards: Float64Array, terminated: Uint8Array): void {
    const { k1, k2, k3, k4 } = this;
    // rk4 over t = [0, dt]: the step is t[1] - t[0], its half is dt / 2.0.
    const h = DT - 0;
    const h2 = h / 2.0;
    const h6 = h / 6.0;
    for (let i = 0; i < this.n; i++) {
      const a = AVAIL_TORQUE[actions[i]!]!;
      const y0 = this.theta1[i]!;
      const y1 = this.theta2[i]!;
      const y2 = this.dtheta1[i]!;
      const y3 = this.dtheta2[i]!;
      dsdt(y0, y1, y2, y3, a, k1);
      dsdt(y0 + h2 * k1[0]!, y1 + h2 * k1[1]!, y2 + h2 * k1[2]!, y3 + h2 * k1[3]!, a, k2);
      dsdt(y0 + h2 * k2[0]!, y1 + h2 * k2[1]!, y2 + h2 * k2[2]!, y3 + h2 * k2[3]!, a, k3);
      dsdt(y0 + h * k3[0]!, y1 + h * k3[1]!, y2 + h * k3[2]!, y3 + h * k3[3]!, a, k4);
      // yout = y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
      const t1 = wrap(y0 + h6 * (k1[0]! + 2 * k2[0]! + 2 * k3[0]! + k4[0]!));
      const t2 = wrap(y1 + h6 * (k1[1]! + 2 * k2[1]! + 2 * k3[1]! + k4[1]!));
      const dt1 = bound(y2 + h6 * (k1[2]! + 2 * k2[2]! + 2 * k3[2]! + k4[2]!), -MAX_VEL_1, MAX_VEL_1);
      const dt2 = bound(y3 + h6 * (k1[3]! + 2 * k2[3]! + 2 * k3[3]! + k4[3]!), -MAX_VEL_2, MAX_VEL_2);
      this.theta1[i] = t1;
      this.theta2[i] = t2;
      this.dtheta1[i] = dt1;
      this.dtheta2[i] = dt2;
      this.observeOne(i, obs, i * 6);
      const done = -cos(t1) - cos(t2 + t1) > 1.0;
      terminated[i] = done ? 1 : 0;
      rewards[i] = done ? 0.0 : -1.0;
    }
  }

  resetOne(i: number, rng: Rng): void {
    this.theta1[i] = Math.fround(rng.uniformRange(INIT_LOW, INIT_HIGH));
    this.theta2[i] = Math.fround(rng.uniformRange(INIT_LOW, INIT_HIGH));
    this.dtheta1[i] = Math.fround(rng.uniformRange(INIT_LOW, INIT_HIGH));
    this.dtheta2[i] = Math.fround(rng.uniformRange(INIT_LOW, INIT_HIGH));
  }

  observeOne(i: number, obs: Float32Array, offset: number): void {
    const t1 = this.theta1[i]!;
    const t2 = this.theta2[i]!;
    obs[offset] = cos(t1);
    obs[offset + 1] = sin(t1);
    obs[offset + 2] = cos(t2);
    obs[offset + 3] = sin(t2);
    obs[offset + 4] = this.dtheta1[i]!;
    obs[offset + 5] = this.dtheta2[i]!;
  }

  getState(i: number): number[] {
    return [this.theta1[i]!, this.theta2[i]!, this.dtheta1[i]!, this.dtheta2[i]!];
  }

  setState(i: number, state: readonly number[]): void {
    this.theta1[i] = state[0]!;
    this.theta2[i] = state[1]!;
    this.dtheta1[i] = state[2]!;
    this.dtheta2[i] = state[3]!;
  }
}

export const acrobotSpec: EnvSpec = {
  id: 'Acrobot-v1',
  obsDim: 6,
  stateNames: ['theta1', 'theta2', 'dtheta1', 'dtheta2'],
  numActions: 3,
  actionDim: 0,
  rewardThreshold: -100,
  maxEpisodeSteps: 500,
  observationSpace: () => box([-1, -1, -1, -1, -MAX_VEL_1, -MAX_VEL_2], [1, 1, 1, 1, MAX_VEL_1, MAX_VEL_2]),
  actionSpace: () => ({ type: 'discrete', n: 3 }),
  createKernel: (n) => new AcrobotKernel(n),
};
