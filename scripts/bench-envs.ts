/**
 * Steps per second of the classic-control environments: the single env (`makeEnv`) and
 * the vectorised one (`makeVecEnv`) at n = 1, 64 and 512 copies. Random actions are drawn
 * before the timed loop; auto-resets are included in the vectorised figures and the
 * single env resets itself (untimed work is only the action draw).
 *
 * Time is the process's CPU time (user + system), not wall time: on a shared machine the
 * wall clock also counts the time other processes hold the core. The code is
 * single-threaded, so on an idle machine the two agree (V8's background threads make the
 * CPU-time figure slightly pessimistic); `--wall` times with the wall clock instead.
 * Each cell is the best of three runs.
 *
 *   npx tsx scripts/bench-envs.ts [--quick] [--wall]
 *
 * Reference points (Gymnasium docs/benchmarks, other hardware): one Gymnasium CartPole
 * ~190k steps/s; its NumPy vector CartPole ~10.8M steps/s at 512 copies.
 */
import { Rng } from '../src/core/rng.ts';
import { ENV_IDS, makeEnv, makeVecEnv, type EnvId } from '../src/control/envs/index.ts';

const quick = process.argv.includes('--quick');
const wall = process.argv.includes('--wall');
const SECONDS = quick ? 0.2 : 0.6; // target CPU time per run
const REPEATS = 3;

/** CPU seconds used by this process so far (wall-clock seconds with --wall). */
function cpuSeconds(): number {
  if (wall) return performance.now() / 1e3;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function bestOf(run: () => number): number {
  let best = 0;
  for (let r = 0; r < REPEATS; r++) best = Math.max(best, run());
  return best;
}
const VEC_SIZES = [1, 64, 512];

/** Random actions for `count` steps of `copies` copies, drawn outside the timed loop. */
function randomActions(id: EnvId, count: number, rng: Rng): Int32Array | Float32Array {
  const env = makeEnv(id);
  const space = env.actionSpace;
  if (space.type === 'discrete') {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = rng.int(space.n);
    return out;
  }
  const out = new Float32Array(count);
  const lo = space.low[0]!;
  const hi = space.high[0]!;
  for (let i = 0; i < count; i++) out[i] = rng.uniformRange(lo, hi);
  return out;
}

function benchSingle(id: EnvId): number {
  const env = makeEnv(id);
  const pool = 1 << 16;
  const actions = randomActions(id, pool, new Rng(1));
  env.reset(0);
  let steps = 0;
  let elapsed = 0;
  const start = cpuSeconds();
  while (elapsed < SECONDS) {
    for (let k = 0; k < 4096; k++) {
      const r = env.step(actions[(steps + k) & (pool - 1)]!);
      if (r.terminated || r.truncated) env.reset();
    }
    steps += 4096;
    elapsed = cpuSeconds() - start;
  }
  return steps / elapsed;
}

function benchVec(id: EnvId, n: number): number {
  const vec = makeVecEnv(id, n, 0);
  const batches = Math.max(4, Math.ceil(65536 / n));
  const all = randomActions(id, batches * n, new Rng(2));
  const views = Array.from({ length: batches }, (_, b) => all.subarray(b * n, (b + 1) * n));
  vec.reset();
  // Warm up so the JIT has compiled the kernel before timing.
  for (let b = 0; b < batches; b++) vec.step(views[b]!);
  let steps = 0;
  let elapsed = 0;
  let b = 0;
  const chunk = Math.max(1, Math.ceil(16384 / n));
  const start = cpuSeconds();
  while (elapsed < SECONDS) {
    for (let k = 0; k < chunk; k++) {
      vec.step(views[b]!);
      b = b + 1 === batches ? 0 : b + 1;
    }
    steps += chunk * n;
    elapsed = cpuSeconds() - start;
  }
  vec.completedEpisodes();
  return steps / elapsed;
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(0)}k`;
}

const rows: string[][] = [['env', 'single', ...VEC_SIZES.map((n) => `vec n=${n}`)]];
for (const id of ENV_IDS) {
  rows.push([id, fmt(bestOf(() => benchSingle(id))), ...VEC_SIZES.map((n) => fmt(bestOf(() => benchVec(id, n))))]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log(`steps per ${wall ? 'wall-clock' : 'CPU'} second (best of ${REPEATS} x ${SECONDS}s per cell, Node ${process.version})`);
for (const [i, r] of rows.entries()) {
  console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
}
