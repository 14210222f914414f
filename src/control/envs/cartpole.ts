/**
 * CartPole-v1, number for number as Gymnasium 1.x `classic_control/cartpole.py`
 * (Barto, Sutton & Anderson, "Neuronlike adaptive elements that can solve difficult
 * learning control problems", 1983; equations of motion from Florian, "Correct equations
 * for the dynamics of the cart-pole system", 2007).
 *
 * State (float64, as in Gymnasium): [x, x_dot, theta, theta_dot]. Observation: the state
 * rounded to float32. With F = +10 for action 1 and -10 for action 0:
 *
 *   temp      = (F + m_p l theta_dot^2 sin(theta)) / (m_c + m_p)
 *   theta_acc = (g sin(theta) - cos(theta) temp) / (l (4/3 - m_p cos^2(theta) / (m_c + m_p)))
 *   x_acc     = temp - m_p l theta_acc cos(theta) / (m_c + m_p)
 *
 * followed by one explicit Euler step of tau = 0.02 s (Gymnasium's default
 * `kinematics_integrator="euler"`: positions advance with the old velocities). The episode
 * terminates when |x| > 2.4 or |theta| > 12 degrees; the reward is 1 on every step,
 * the terminating one included (`sutton_barto_reward=False`). Initial state: each
 * component uniform in [-0.05, 0.05). Time limit 500 steps, reward threshold 475.
 *
 * Every expression below keeps Gymnasium's operation order so that the float64 results
 * agree bit for bit (given the same sin/cos).
 */
import type { Rng } from '../../core/rng.ts';
import { box, type ActionArray, type EnvKernel, type EnvSpec } from './kernel.ts';
import { cos, sin } from './trig.ts';

const GRAVITY = 9.8;
const MASS_CART = 1.0;
const MASS_POLE = 0.1;
const TOTAL_MASS = MASS_POLE + MASS_CART;
const LENGTH = 0.5; // half the pole's length
const POLEMASS_LENGTH = MASS_POLE * LENGTH;
const FORCE_MAG = 10.0;
const TAU = 0.02;
const THETA_THRESHOLD = (12 * 2 * Math.PI) / 360;
const X_THRESHOLD = 2.4;
const INIT_LOW = -0.05;
const INIT_HIGH = 0.05;

export class CartPoleKernel implements EnvKernel {
  readonly x: Float64Array;
  readonly xDot: Float64Array;
  readonly theta: Float64Array;
  readonly thetaDot: Float64Array;

  constructor(readonly n: number) {
    this.x = new Float64Array(n);
    this.xDot = new Float64Array(n);
    this.theta = new Float64Array(n);
    this.thetaDot = new Float64Array(n);
  }

  stepBatch(actions: ActionArray, obs: Float32Array, rewards: Float64Array, terminated: Uint8Array): void {
    const X = this.x;
    const XD = this.xDot;
    const TH = this.theta;
    const THD = this.thetaDot;
    const n = this.n;
    for (let i = 0; i < n; i++) {
      const x = X[i]!;
      const xDot = XD[i]!;
      const theta = TH[i]!;
      const thetaDot = THD[i]!;
      const force = actions[i] === 1 ? FORCE_MAG : -FORCE_MAG;
      const cosTheta = cos(theta);
      const sinTheta = sin(theta);
      const temp = (force + POLEMASS_LENGTH * (thetaDot * thetaDot) * sinTheta) / TOTAL_MASS;
      const thetaAcc =
        (GRAVITY * sinTheta - cosTheta * temp) / (LENGTH * (4.0 / 3.0 - (MASS_POLE * (cosTheta * cosTheta)) / TOTAL_MASS));
      const xAcc = temp - (POLEMASS_LENGTH * thetaAcc * cosTheta) / TOTAL_MASS;
      const nx = x + TAU * xDot;
      const nxDot = xDot + TAU * xAcc;
      const nTheta = theta + TAU * thetaDot;
      const nThetaDot = thetaDot + TAU * thetaAcc;
      X[i] = nx;
      XD[i] = nxDot;
      TH[i] = nTheta;
      THD[i] = nThetaDot;
      const o = i << 2;
      obs[o] = nx;
      obs[o + 1] = nxDot;
      obs[o + 2] = nTheta;
      obs[o + 3] = nThetaDot;
      rewards[i] = 1.0;
      terminated[i] = nx < -X_THRESHOLD || nx > X_THRESHOLD || nTheta < -THETA_THRESHOLD || nTheta > THETA_THRESHOLD ? 1 : 0;
    }
  }

  resetOne(i: number, rng: Rng): void {
    this.x[i] = rng.uniformRange(INIT_LOW, INIT_HIGH);
    this.xDot[i] = rng.uniformRange(INIT_LOW, INIT_HIGH);
    this.theta[i] = rng.uniformRange(INIT_LOW, INIT_HIGH);
    this.thetaDot[i] = rng.uniformRange(INIT_LOW, INIT_HIGH);
  }

  observeOne(i: number, obs: Float32Array, offset: number): void {
    obs[offset] = this.x[i]!;
    obs[offset + 1] = this.xDot[i]!;
    obs[offset + 2] = this.theta[i]!;
    obs[offset + 3] = this.thetaDot[i]!;
  }

  getState(i: number): number[] {
    return [this.x[i]!, this.xDot[i]!, this.theta[i]!, this.thetaDot[i]!];
  }

  setState(i: number, state: readonly number[]): void {
    this.x[i] = state[0]!;
    this.xDot[i] = state[1]!;
    this.theta[i] = state[2]!;
    this.thetaDot[i] = state[3]!;
  }
}

export const cartPoleSpec: EnvSpec = {
  id: 'CartPole-v1',
  obsDim: 4,
  stateNames: ['x', 'x_dot', 'theta', 'theta_dot'],
  numActions: 2,
  actionDim: 0,
  rewardThreshold: 475,
  maxEpisodeSteps: 500,
  observationSpace: () => box([-X_THRESHOLD * 2, -Infinity, -THETA_THRESHOLD * 2, -Infinity], [X_THRESHOLD * 2, Infinity, THETA_THRESHOLD * 2, Infinity]),
  actionSpace: () => ({ type: 'discrete', n: 2 }),
  createKernel: (n) => new CartPoleKernel(n),
};
