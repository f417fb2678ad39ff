// Turns flags into what will run: the variants that can run here, the functions, and the skips with reasons.
import fs from 'node:fs';
import path from 'node:path';
import type { Catalog } from '../functions/catalog.js';
import type { FunctionEntry } from '../functions/types.js';
import { loadVariantPlugins } from '../platform/registry.js';
import type { Variant, VariantOptions } from '../platform/variant.js';
import { UsageError } from './args.js';
import { scratchDir } from '../platform/scratch.js';

export interface VariantSet {
  active: Map<string, Variant>;
  unavailable: { variant: string; reason: string }[];
  /** per variant, the experiments it takes part in (absent: all) */
  experiments: Map<string, readonly string[] | undefined>;
  workDir: string;
  /** the options each variant was created with (a worker thread creates its own copy from them) */
  options: Map<string, VariantOptions>;
}

export async function resolveVariants(names: string[] | undefined, memoryLimitMiB: number): Promise<VariantSet> {
  const plugins = await loadVariantPlugins();
  const chosen = names ?? [...plugins.keys()];
  const unknown = chosen.filter((n) => !plugins.has(n));
  if (unknown.length) throw new UsageError(`unknown variant ${unknown.map((u) => `"${u}"`).join(', ')}; valid variants: ${[...plugins.keys()].join(', ')}`);
  const workDir = scratchDir('run');
  const active = new Map<string, Variant>();
  const unavailable: VariantSet['unavailable'] = [];
  const options = new Map<string, VariantOptions>();
  for (const name of chosen) {
    const dir = path.join(workDir, name);
    fs.mkdirSync(dir);
    options.set(name, { workDir: dir, memoryLimitMiB });
    const v = plugins.get(name)!.create(options.get(name)!);
    const cap = await v.check().catch((e: Error) => ({ ok: false as const, reason: `capability check failed: ${e.message}` }));
    if (cap.ok) active.set(name, v);
    else {
      unavailable.push({ variant: name, reason: cap.reason });
      await v.teardown().catch(() => {});
    }
  }
  const experiments = new Map(chosen.map((n) => [n, plugins.get(n)!.experiments]));
  return { active, unavailable, workDir, experiments, options };
}

export function resolveFunctions(catalog: Catalog, names: string[] | undefined): FunctionEntry[] {
  if (!names) return catalog.defaults();
  return names.map((n) => {
    try {
      return catalog.get(n);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  });
}

/** Between two runs: every active variant is torn down and created afresh (no instance, module or
 *  process carries over), with the options it was first created with. */
export async function renewVariants(set: VariantSet): Promise<void> {
  const plugins = await loadVariantPlugins();
  for (const [name, v] of [...set.active]) {
    await v.teardown();
    set.active.set(name, plugins.get(name)!.create(set.options.get(name)!));
  }
}

/** The seed of run `run` (from 1) of a run seeded `seed`: run 1 keeps the seed as given. */
export function runSeed(seed: number, run: number): number {
  return run === 1 ? seed : seed + 7919 * (run - 1);
}
