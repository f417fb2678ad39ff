// Finds variant plug-ins: every module directly in harness/variants/ whose default export is a VariantPlugin.
// Adding a variant is adding a file there; nothing else names it. Its modes are declared here as it loads.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { VariantPlugin } from './variant.js';
import { declareModes } from './modes.js';

const variantsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'variants');

let cache: Promise<Map<string, VariantPlugin>> | null = null;

function isPlugin(x: unknown): x is VariantPlugin {
  return typeof x === 'object' && x !== null && typeof (x as VariantPlugin).name === 'string' && typeof (x as VariantPlugin).create === 'function';
}

export function loadVariantPlugins(): Promise<Map<string, VariantPlugin>> {
  cache ??= (async () => {
    const files = fs.readdirSync(variantsDir).filter((f) => f.endsWith('.js')).sort();
    const plugins = new Map<string, VariantPlugin>();
    for (const f of files) {
      const mod = (await import(pathToFileURL(path.join(variantsDir, f)).href)) as { default?: unknown };
      if (!isPlugin(mod.default)) continue;
      if (plugins.has(mod.default.name)) throw new Error(`two variant plug-ins are named "${mod.default.name}" (${f})`);
      if (!Array.isArray(mod.default.modes) || !mod.default.modes.length) throw new Error(`variant plug-in "${mod.default.name}" (${f}) declares no modes`);
      declareModes(`variant ${mod.default.name}`, mod.default.modes);
      plugins.set(mod.default.name, mod.default);
    }
    return plugins;
  })();
  return cache;
}

export async function getVariantPlugin(name: string): Promise<VariantPlugin> {
  const plugins = await loadVariantPlugins();
  const p = plugins.get(name);
  if (!p) throw new Error(`unknown variant "${name}"; valid variants: ${[...plugins.keys()].join(', ')}`);
  return p;
}
