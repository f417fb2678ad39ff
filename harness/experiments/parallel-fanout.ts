// Serverless fan-out/fan-in: a byte histogram of a generated corpus split into N invocations of the
// `histogram` function, sent at once through a gateway whose variants have pools of P executors, each
// part checked against the function's oracle, then reduced and checked against the whole corpus's
// counts. Completion time of the job (first send to the reduced, verified answer) and its straggler
// (the slowest invocation), per substrate: WASM cold, WASM from a snapshot (wasm-fork local-fork),
// native processes, runc containers. One invocation that fails or times out fails the job with the
// reason; the parts that came back are kept (params incomplete=true).
import os from 'node:os';
import type { FlagSpec } from '../experiment/args.js';
import { positiveInts, positiveIntFlag } from '../experiment/args.js';
import type { RunContext } from '../experiment/context.js';
import { FatalMeasurementError } from '../experiment/context.js';
import { histogram } from '../functions/workloads/histogram.js';
import { createRng } from '../measure/random.js';
import type { Mode } from '../platform/variant.js';

export const FANOUT_SUBSTRATES: Record<string, { variant: string; mode: Mode }> = {
  'wasm-cold': { variant: 'wasm', mode: 'cold' },
  'wasm-snapshot': { variant: 'wasm-fork', mode: 'local-fork' },
  native: { variant: 'native', mode: 'cold' },
  container: { variant: 'container', mode: 'cold' },
};

export const FANOUT_FLAGS: Record<string, FlagSpec> = {
  'fanout-n': { type: 'string', help: 'parallel: invocations per fan-out job (default quick 1,4,16,64; full 1,2,4,…,256)' },
  'fanout-pools': { type: 'string', help: 'parallel: executors per variant in the gateway (default quick 1,2; full 1,2,4)' },
  'fanout-substrates': { type: 'string', help: `parallel: fan-out substrates (default all: ${Object.keys(FANOUT_SUBSTRATES).join(', ')}; "none" skips the fan-out)` },
  'fanout-bytes': { type: 'string', help: 'parallel: corpus bytes of a fan-out job (default quick 262144, full 4194304)' },
  'fanout-fail-at': { type: 'string', help: 'parallel, for tests: invocation K (from 0) of every job calls the test-only trap function instead, so the job fails' },
};

/** text-like bytes: a skewed small alphabet, sometimes any byte (seeded) */
export function corpus(bytes: number, seed: number): Uint8Array {
  const rng = createRng(seed ^ 0xfa17);
  const alphabet = Buffer.from('etaoin shrdlucmfwypvbgkjqxz\n0123456789');
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const r = rng();
    out[i] = r < 0.9 ? alphabet[Math.floor(Math.min(rng(), rng()) * alphabet.length)]! : Math.floor(rng() * 256);
  }
  return out;
}

/** the counts in a histogram answer ("len= distinct=" then "<hex2> <count>" lines) */
export function parseCounts(text: string): number[] {
  const counts = new Array<number>(256).fill(0);
  for (const line of text.split('\n').slice(1)) {
    const m = /^([0-9a-f]{2}) (\d+)$/.exec(line);
    if (m) counts[parseInt(m[1]!, 16)]! += Number(m[2]);
  }
  return counts;
}

export async function runFanout(ctx: RunContext): Promise<void> {
  const { args } = ctx;
  const spec = String(args.extra['fanout-substrates'] ?? Object.keys(FANOUT_SUBSTRATES).join(','));
  if (spec === 'none') return;
  const substrates = spec.split(',');
  for (const s of substrates) if (!FANOUT_SUBSTRATES[s]) throw new Error(`--fanout-substrates: "${s}" is not one of ${Object.keys(FANOUT_SUBSTRATES).join(', ')}`);
  const ns = positiveInts(args, 'fanout-n', args.quick ? [1, 4, 16, 64] : [1, 2, 4, 8, 16, 32, 64, 128, 256]);
  const pools = positiveInts(args, 'fanout-pools', args.quick ? [1, 2] : [1, 2, 4]);
  const bytes = positiveIntFlag(args, 'fanout-bytes', args.quick ? 262144 : 4194304);
  const failAt = args.extra['fanout-fail-at'] === undefined ? -1 : Number(args.extra['fanout-fail-at']);
  const reps = ctx.reps(3, 10);
  const data = corpus(bytes, args.seed ?? 1);
  const whole = parseCounts(Buffer.from(histogram.expected(data)).toString());
  const fn = ctx.catalog.get('histogram');
  const cpus = `0-${os.availableParallelism() - 1}`;
  ctx.notes.push(`parallel fan-out: histogram of a ${bytes}-byte corpus in N parts, all sent at once through one gateway with P executors per variant (least calls in flight first), gateway and executors on CPUs ${cpus}; each part checked against the histogram oracle, the reduced counts against the whole corpus`);
  for (const s of substrates) {
    const { variant: vname, mode } = FANOUT_SUBSTRATES[s]!;
    const v = ctx.variants.active.get(vname);
    if (!v) {
      const why = ctx.variants.unavailable.find((u) => u.variant === vname)?.reason ?? `variant ${vname} was not selected (--variants)`;
      ctx.skip(vname, 'histogram', mode, `fan-out ${s}: ${why}`);
      continue;
    }
    const why = v.supports(fn, mode);
    if (why) {
      ctx.skip(vname, 'histogram', mode, `fan-out ${s}: ${why}`);
      continue;
    }
    for (const pool of pools) {
      if (ctx.interrupted) return;
      const gw = await ctx.gateway({ cpus, pool });
      const client = await gw.connect();
      try {
        // one unrecorded job first: every executor of the pool starts and compiles
        await job(client, vname, mode, data, whole, Math.max(pool, 2), -1, ctx.args.timeoutMs);
        for (const n of ns) {
          for (let r = 0; r < reps; r++) {
            if (ctx.interrupted) return;
            const params = `n=${n};pool=${pool};corpus_bytes=${bytes}`;
            const base = { variant: vname, function: 'histogram', mode, path: 'gateway-fanout', iteration: r, unit: 'us' };
            const res = await job(client, vname, mode, data, whole, n, failAt, ctx.args.timeoutMs);
            if (res.failure) {
              ctx.record(res.parts.map((us, i) => ({ ...base, iteration: r * n + i, metric: 'invocation_time', params: `${params};incomplete=true`, value: us })));
              ctx.fail({ variant: vname, function: 'histogram', mode, path: 'gateway-fanout', reason: `fan-out ${s} ${params}: ${res.failure}; ${res.parts.length} of ${n} parts answered, kept with incomplete=true` });
              break;
            }
            ctx.record([
              { ...base, metric: 'job_time', params, value: res.jobUs },
              { ...base, metric: 'straggler', params, value: Math.max(...res.parts) },
              ...res.parts.map((us, i) => ({ ...base, iteration: r * n + i, metric: 'invocation_time', params, value: us })),
            ]);
          }
        }
      } catch (e) {
        if (e instanceof FatalMeasurementError) throw e;
        ctx.fail({ variant: vname, function: 'histogram', mode, path: 'gateway-fanout', reason: `fan-out ${s} pool=${pool}: ${(e as Error).message}` });
      } finally {
        client.close();
        await gw.stop();
      }
    }
  }
}

interface JobResult {
  jobUs: number;
  /** latency of each invocation that answered ok, µs */
  parts: number[];
  failure?: string;
}

async function job(
  client: Awaited<ReturnType<Awaited<ReturnType<RunContext['gateway']>>['connect']>>,
  variant: string, mode: Mode, data: Uint8Array, whole: number[], n: number, failAt: number, timeoutMs: number,
): Promise<JobResult> {
  const pieces = Array.from({ length: n }, (_, i) => data.subarray(Math.floor((data.length * i) / n), Math.floor((data.length * (i + 1)) / n)));
  const t0 = process.hrtime.bigint();
  const answers = await Promise.all(
    pieces.map(async (input, i) => {
      const a = process.hrtime.bigint();
      const r = await client.invoke({ variant, fn: i === failAt ? 'trap' : 'histogram', mode, input, timeoutMs }).catch((e: Error) => ({ status: 'executor-lost' as const, output: Buffer.from(e.message), serverNs: 0 }));
      return { i, r, us: Number(process.hrtime.bigint() - a) / 1000, input };
    }),
  );
  // fan-in: the reduce is part of the job; the oracle checks below are not
  const ok = answers.filter((x) => x.r.status === 'ok');
  const total = new Array<number>(256).fill(0);
  for (const { r } of ok) parseCounts(Buffer.from(r.output).toString()).forEach((c, b) => (total[b]! += c));
  const jobUs = Number(process.hrtime.bigint() - t0) / 1000;
  const parts = ok.map((x) => x.us);
  for (const { i, r, input } of ok) {
    const got = Buffer.from(r.output).toString();
    const want = Buffer.from(histogram.expected(input)).toString();
    if (got !== want) throw new FatalMeasurementError(`fan-out ${variant}/${mode}: invocation ${i} of ${n} answered ${JSON.stringify(got.slice(0, 80))}, want ${JSON.stringify(want.slice(0, 80))}`);
  }
  const bad = answers.find((x) => x.r.status !== 'ok');
  if (bad) return { jobUs, parts, failure: `invocation ${bad.i} of ${n} failed (${bad.r.status}): ${Buffer.from(bad.r.output).toString().slice(0, 200)}` };
  const wrong = total.findIndex((c, b) => c !== whole[b]);
  if (wrong >= 0) throw new FatalMeasurementError(`fan-out ${variant}/${mode} N=${n}: reduced count of byte ${wrong} is ${total[wrong]}, want ${whole[wrong]}`);
  return { jobUs, parts };
}
