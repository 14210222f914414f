/**
 * MountainCar-v0, number for number as Gymnasium 1.x `classic_control/mountain_car.py`
 * (Moore, "Efficient memory-based learning for robot control", PhD thesis, 1990).
 *
 * State (float64, as in Gymnasium): [position, velocity]. Actions 0, 1, 2 push left, not
 * at all, right. One step:
 *
 *   velocity += (action - 1) * 0.001 + cos(3 position) * (-0.0025), clipped to [-0.07, 0.07]
 *   position += velocity, clipped to [-1.2, 0.6]
 *   if position == -1.2 and velocity < 0: velocity = 0      (inelastic left wall)
 *
 * The episode terminates when position >= 0.5 (and velocity >= 0, Gymnasium's default
 * goal_velocity); the reward is -1 on every step, the terminating one included.
 * Observation: the state rounded to float32. Initial state: position uniform in
 * [-0.6, -0.4), velocity 0. Time limit 200 steps, reward threshold -110.
 */
import type { ActionArray, EnvKernel, EnvSpec } from './kernel.ts';
import { GOAL_VELOCITY, GRAVITY, MAX_POSITION, MAX_SPEED, MIN_POSITION, MountainCarState, mountainCarObservationSpace } from './mountain-car-track.ts';

const GOAL_POSITION = 0.5;
const FORCE = 0.001;

export class MountainCarKernel extends MountainCarState implements EnvKernel {
  stepBatch(actions: ActionArray, obs: Float32Array, rewards: Float64Array, terminated: Uint8Array): void {
    const P = this.position;
    const V = this.velocity;
    for (let i = 0; i < this.n; i++) {
      let position = P[i]!;
      let velocity = V[i]!;
      velocity += (actions[i]! - 1) * FORCE + Math.cos(3 * position) * -GRAVITY;
      velocity = velocity < -MAX_SPEED ? -MAX_SPEED : velocity > MAX_SPEED ? MAX_SPEED : velocity;
      position += velocity;
      position = position < MIN_POSITION ? MIN_POSITION : position > MAX_POSITION ? MAX_POSITION : position;
      if (position === MIN_POSITION && velocity < 0) velocity = 0;
      P[i] = position;
      V[i] = velocity;
      obs[2 * i] = position;
      obs[2 * i + 1] = velocity;
      terminated[i] = position >= GOAL_POSITION && velocity >= GOAL_VELOCITY ? 1 : 0;
      rewards[i] = -1.0;
    }
  }

  setState(i: number, state: readonly number[]): void {
    this.position[i] = state[0]!;
    this.velocity[i] = state[1]!;
  }
}

export const mountainCarSpec: EnvSpec = {
  id: 'MountainCar-v0',
  obsDim: 2,
  stateNames: ['position', 'velocity'],
  numActions: 3,
  actionDim: 0,
  rewardThreshold: -110,
  maxEpisodeSteps: 200,
  observationSpace: mountainCarObservationSpace,
  actionSpace: () => ({ type: 'discrete', n: 3 }),
  createKernel: (n) => new MountainCarKernel(n),
};
