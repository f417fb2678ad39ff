// The container baselines of fork.mjs, with the same statefill state in a runc container:
//   cold: a new container per call (runc run), so the state is built from nothing;
//   pause-unpause: a warm container that built its state is frozen (cgroup freezer) and thawed before
//   each call, MITOSIS's and the literature's cheap warm-pool trick: fork_latency is `runc resume`,
//   first_response runs to the verified answer.
// Every answer is checked: a cold container answers its first call, a thawed one its next.
import path from 'node:path';
import type { RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { statefillAnswer } from '../functions/workloads/statefill.js';
import { loadVariantPlugins } from '../platform/registry.js';
import type { ContainerVariant } from '../variants/container.js';

const MiB = 2 ** 20;
const now = () => process.hrtime.bigint();

export async function containerBaselines(ctx: RunContext, sizes: number[], reps0: number, warmup: number): Promise<void> {
  const fn = ctx.catalog.get('statefill');
  const plugin = (await loadVariantPlugins()).get('container');
  const biggest = Math.max(...sizes);
  if (!plugin) return void ctx.skip('container', 'statefill', '*', 'no container variant plug-in');
  const v = plugin.create({ workDir: path.join(ctx.variants.workDir), memoryLimitMiB: biggest * 2 + 64 }) as ContainerVariant;
  try {
    const cap = await v.check();
    if (!cap.ok) return void ['cold', 'pause-unpause'].forEach((m) => ctx.skip('container', 'statefill', m, cap.reason));
    const why = v.supports(fn, 'cold');
    if (why) return void ['cold', 'pause-unpause'].forEach((m) => ctx.skip('container', 'statefill', m, why));
    ctx.notes.push(`fork: container baselines under ${v.runtimeName}: cold = runc run per call; pause-unpause = runc resume of a frozen warm container, then its next call`);
    const timeoutMs = ctx.args.timeoutMs;
    for (const mib of sizes) {
      if (ctx.interrupted) return;
      const reps = mib >= 512 ? Math.min(reps0, 3) : mib >= 128 ? Math.min(reps0, 8) : reps0;
      const input = Buffer.from(String(mib));
      const sp = `state_bytes=${mib * MiB};copy=none`;
      const check = (got: Uint8Array, call: number, what: string) => {
        const s = Buffer.from(got).toString();
        const want = statefillAnswer(mib, call);
        if (s !== want) throw new FatalMeasurementError(`${what} of statefill ${mib} MiB answered ${JSON.stringify(s.slice(0, 80))}, want ${JSON.stringify(want)}`);
      };
      const cold = { variant: 'container', function: 'statefill', mode: 'cold', path: 'local', metric: 'first_response', params: sp, unit: 'us' };
      for (let r = 0; r < warmup + reps && !ctx.interrupted; r++) {
        const a = now();
        const out = (await v.invoke(fn, 'cold', input, { timeoutMs })).output;
        const b = now();
        check(out, 1, 'a cold container');
        if (r >= warmup) ctx.record([{ ...cold, iteration: r - warmup, value: Number(b - a) / 1000 }]);
      }
      // one warm container per size: its first call builds the state, then freeze/thaw before each call
      const wc = await v.warmContainer(fn);
      let calls = 0;
      const call = async () => {
        const res = await wc.client.request(input, timeoutMs);
        calls++;
        if (res.status !== 0) throw new Error(`warm statefill container answered status ${res.status}`);
        check(res.output, calls, `call ${calls} of a thawed container`);
      };
      await call();
      const pu = { variant: 'container', function: 'statefill', mode: 'pause-unpause', path: 'local', params: sp, unit: 'us' };
      for (let r = 0; r < warmup + reps && !ctx.interrupted; r++) {
        await v.runtime.pause(wc.id);
        const a = now();
        await v.runtime.resume(wc.id);
        const b = now();
        await call();
        const c = now();
        if (r >= warmup) ctx.record([{ ...pu, metric: 'fork_latency', iteration: r - warmup, value: Number(b - a) / 1000 }, { ...pu, metric: 'first_response', iteration: r - warmup, value: Number(c - a) / 1000 }]);
      }
      await v.teardown(); // the next size gets a fresh warm container
    }
  } catch (e) {
    if (e instanceof FatalMeasurementError) throw e;
    if (!ctx.interrupted) ctx.fail({ variant: 'container', function: 'statefill', mode: 'pause-unpause', reason: (e as Error).message });
  } finally {
    await v.teardown();
  }
}
