import { initEngine } from '../src/engine/backend.ts';
import { resolvePpoConfig } from '../src/trainers/ppo-config.ts';
import { trainPpo } from '../src/trainers/ppo.ts';
const [out, ...sets] = process.argv.slice(2);
await initEngine({ backend: 'auto', quiet: true });
const config = resolvePpoConfig({ set: sets, flags: { outDir: out } });
const r = await trainPpo(config, { quiet: true });
console.log(out, sets.join(' '), r.evals.map((e) => `${e.step}:${(100 * e.accuracy).toFixed(1)}`).join(' '), `${r.seconds.toFixed(0)}s`);
