/**
 * Observation and reward normalisation with running statistics, with the semantics of
 * Stable-Baselines3's `VecNormalize` (which the rl-baselines3-zoo presets marked
 * `normalize: true` rely on).
 *
 * Running mean / variance (Chan, Golub & LeVeque's parallel update, SB3 `RunningMeanStd`):
 * a batch with mean m_b, population variance v_b and count n_b merges into (m, v, n) as
 *   d = m_b - m,  n' = n + n_b,  m' = m + d n_b / n',
 *   v' = (v n + v_b n_b + d^2 n n_b / n') / n'.
 * The count starts at epsilon = 1e-4 (as SB3) so the first batch dominates immediately.
 *
 * Observations:  o' = clip((o - mean) / sqrt(var + 1e-8), -clipObs, clipObs), clipObs = 10.
 * Rewards are divided by the running std of the discounted return, not of the reward:
 *   R_i <- gamma R_i + r_i;  update stats with R;  r' = clip(r / sqrt(var_R + 1e-8), -10, 10);
 *   R_i <- 0 where the episode of copy i ended (terminated or truncated).
 * The statistics are updated only while `training` is true (evaluation freezes them), and
 * are saved with the policy so a loaded policy sees observations scaled as in training.
 */

/** Running mean and population variance per feature (float64). */
export class RunningMeanStd {
  readonly mean: Float64Array;
  readonly var: Float64Array;
  count: number;

  constructor(readonly size: number, epsilon = 1e-4) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`RunningMeanStd: size must be a positive integer, got ${size}`);
    this.mean = new Float64Array(size);
    this.var = new Float64Array(size).fill(1);
    this.count = epsilon;
  }

  /** Merge `rows` rows of `size` features each, stored row-major in `batch`. */
  update(batch: ArrayLike<number>, rows: number): void {
    const d = this.size;
    if (batch.length !== rows * d) {
      throw new Error(`RunningMeanStd.update: expected ${rows} x ${d} = ${rows * d} values, got ${batch.length}`);
    }
    if (rows === 0) return;
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += batch[r * d + k]!;
      const bMean = s / rows;
      let sq = 0;
      for (let r = 0; r < rows; r++) sq += (batch[r * d + k]! - bMean) ** 2;
      const bVar = sq / rows;
      const n = this.count;
      const total = n + rows;
      const delta = bMean - this.mean[k]!;
      this.mean[k] = this.mean[k]! + (delta * rows) / total;
      this.var[k] = (this.var[k]! * n + bVar * rows + (delta * delta * n * rows) / total) / total;
    }
    this.count += rows;
  }

  toJSON(): RunningMeanStdState {
    return { mean: Array.from(this.mean), var: Array.from(this.var), count: this.count };
  }

  static fromJSON(state: RunningMeanStdState, where = 'RunningMeanStd'): RunningMeanStd {
    const ok =
      state !== null &&
      typeof state === 'object' &&
      Array.isArray(state.mean) &&
      Array.isArray(state.var) &&
      state.mean.length === state.var.length &&
      state.mean.length > 0 &&
      [...state.mean, ...state.var].every((x) => typeof x === 'number' && Number.isFinite(x)) &&
      state.var.every((x) => x >= 0) &&
      typeof state.count === 'number' &&
      state.count > 0;
    if (!ok) throw new Error(`${where}: expected { mean: number[], var: number[] (same non-zero length, var >= 0), count > 0 }`);
    const rms = new RunningMeanStd(state.mean.length, state.count);
    rms.mean.set(state.mean);
    rms.var.set(state.var);
    return rms;
  }
}

export interface RunningMeanStdState {
  mean: number[];
  var: number[];
  count: number;
}

export interface ObsNormalizerState {
  rms: RunningMeanStdState;
  clip: number;
  epsilon: number;
}

/** Observation normalisation (SB3 `VecNormalize.normalize_obs`). */
export class ObsNormalizer {
  readonly rms: RunningMeanStd;
  training = true;

  constructor(
    readonly obsDim: number,
    readonly clip = 10,
    readonly epsilon = 1e-8,
  ) {
    if (!(clip > 0)) throw new Error(`ObsNormalizer: clip must be > 0, got ${clip}`);
    this.rms = new RunningMeanStd(obsDim);
  }

  /** Update the statistics with `rows` raw observations (only while training). */
  update(obs: ArrayLike<number>, rows: number): void {
    if (this.training) this.rms.update(obs, rows);
  }

  /** Writes the normalised `obs` (raw, row-major [rows, obsDim]) into `out` (may be `obs` itself). */
  normalize(obs: ArrayLike<number>, out: Float32Array = new Float32Array(obs.length)): Float32Array {
    const d = this.obsDim;
    if (obs.length % d !== 0 || out.length < obs.length) {
      throw new Error(`ObsNormalizer.normalize: ${obs.length} values is not a whole number of ${d}-dim observations (or out is too short)`);
    }
    const { mean } = this.rms;
    const c = this.clip;
    for (let k = 0; k < d; k++) {
      const m = mean[k]!;
      const inv = 1 / Math.sqrt(this.rms.var[k]! + this.epsilon);
      for (let i = k; i < obs.length; i += d) {
        const z = (obs[i]! - m) * inv;
        out[i] = z < -c ? -c : z > c ? c : z;
      }
    }
    return out;
  }

  toJSON(): ObsNormalizerState {
    return { rms: this.rms.toJSON(), clip: this.clip, epsilon: this.epsilon };
  }

  static fromJSON(state: ObsNormalizerState, where = 'ObsNormalizer'): ObsNormalizer {
    if (state === null || typeof state !== 'object') throw new Error(`${where}: expected an object`);
    const rms = RunningMeanStd.fromJSON(state.rms, `${where}.rms`);
    if (!(typeof state.clip === 'number' && state.clip > 0)) throw new Error(`${where}.clip must be a number > 0, got ${state.clip}`);
    if (!(typeof state.epsilon === 'number' && state.epsilon >= 0)) throw new Error(`${where}.epsilon must be a number >= 0, got ${state.epsilon}`);
    const n = new ObsNormalizer(rms.size, state.clip, state.epsilon);
    n.rms.mean.set(rms.mean);
    n.rms.var.set(rms.var);
    n.rms.count = rms.count;
    return n;
  }
}

/** Reward scaling by the running std of the discounted return (SB3 `VecNormalize` with `norm_reward`). */
export class RewardNormalizer {
  readonly rms = new RunningMeanStd(1);
  /** R_i, the running discounted return of each copy. */
  readonly returns: Float64Array;
  training = true;

  constructor(
    readonly numEnvs: number,
    readonly gamma: number,
    readonly clip = 10,
    readonly epsilon = 1e-8,
  ) {
    if (!(gamma >= 0 && gamma <= 1)) throw new Error(`RewardNormalizer: gamma must be in [0, 1], got ${gamma}`);
    if (!(clip > 0)) throw new Error(`RewardNormalizer: clip must be > 0, got ${clip}`);
    this.returns = new Float64Array(numEnvs);
  }

  /**
   * Scales one step's rewards [numEnvs] into `out` and advances the discounted returns;
   * `done[i]` (terminated or truncated) resets copy i's return after this step.
   */
  normalize(rewards: ArrayLike<number>, done: ArrayLike<number>, out: Float32Array = new Float32Array(rewards.length)): Float32Array {
    const n = this.numEnvs;
    if (rewards.length !== n || done.length !== n) {
      throw new Error(`RewardNormalizer.normalize: expected ${n} rewards and done flags, got ${rewards.length} and ${done.length}`);
    }
    for (let i = 0; i < n; i++) this.returns[i] = this.returns[i]! * this.gamma + rewards[i]!;
    if (this.training) this.rms.update(this.returns, n);
    const inv = 1 / Math.sqrt(this.rms.var[0]! + this.epsilon);
    const c = this.clip;
    for (let i = 0; i < n; i++) {
      const z = rewards[i]! * inv;
      out[i] = z < -c ? -c : z > c ? c : z;
      if (done[i]) this.returns[i] = 0;
    }
    return out;
  }
}
