/**
 * What MountainCar-v0 and MountainCarContinuous-v0 share, as in Gymnasium 1.x
 * `classic_control/mountain_car.py` and `continuous_mountain_car.py`: the track (position
 * in [-1.2, 0.6], speed at most 0.07, gravity 0.0025 on a cos(3 position) hill), the
 * observation box, the initial-state distribution (position uniform in [-0.6, -0.4),
 * velocity 0) and the [position, velocity] state layout.
 *
 * The step itself stays in each environment's file: MountainCar-v0 runs in float64, while
 * MountainCarContinuous-v0 follows NumPy 2's float32 promotion rules value by value, and
 * keeping each loop in its own class keeps it monomorphic.
 */
import type { Rng } from '../../core/rng.ts';
import { box } from './kernel.ts';

export const MIN_POSITION = -1.2;
export const MAX_POSITION = 0.6;
export const MAX_SPEED = 0.07;
export const GOAL_VELOCITY = 0;
export const GRAVITY = 0.0025;

/** Both variants' observation space: Box([-1.2, -0.07], [0.6, 0.07]) in float32. */
export function mountainCarObservationSpace(): ReturnType<typeof box> {
  return box([MIN_POSITION, -MAX_SPEED], [MAX_POSITION, MAX_SPEED]);
}

/** The [position, velocity] state of n cars, struct-of-arrays, with the shared reset and accessors. */
export abstract class MountainCarState {
  readonly position: Float64Array;
  readonly velocity: Float64Array;

  constructor(readonly n: number) {
    this.position = new Float64Array(n);
    this.velocity = new Float64Array(n);
  }

  resetOne(i: number, rng: Rng): void {
    this.position[i] = rng.uniformRange(-0.6, -0.4);
    this.velocity[i] = 0;
  }

  observeOne(i: number, obs: Float32Array, offset: number): void {
    obs[offset] = this.position[i]!;
    obs[offset + 1] = this.velocity[i]!;
  }

  getState(i: number): number[] {
    return [this.position[i]!, this.velocity[i]!];
  }
}
