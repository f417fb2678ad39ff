// Modes are declared by the variants (VariantPlugin.modes): the core names none of them, the wire carries
// them by id, and the figures take a mode's label, order and colour from its declaration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadVariantPlugins } from '../harness/platform/registry.js';
import { declareModes, declaredModes, modeDecl } from '../harness/platform/modes.js';
import { coldStartFigure, figureToSvg } from '../harness/figures/index.js';
import { seriesColor, sortSeries } from '../harness/figures/common.js';
import { summarize } from '../harness/results/summarize.js';
import type { RawRow } from '../harness/results/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('every plug-in declares the modes its variant offers, and the registry declares them', async () => {
  const plugins = await loadVariantPlugins();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-modes-'));
  try {
    for (const name of ['wasm', 'wasm-fork', 'native', 'ebpf']) {
      const p = plugins.get(name)!;
      const v = p.create({ workDir: dir, memoryLimitMiB: 64 });
      try {
        assert.deepEqual([...v.modes].sort(), p.modes.map((d) => d.id).sort(), name);
      } finally {
        await v.teardown();
      }
    }
    for (const p of plugins.values()) for (const d of p.modes) assert.deepEqual(modeDecl(d.id), d, `${p.name}: ${d.id} declared as the plug-in says`);
    assert.deepEqual(modeDecl('local-fork')?.colour, '#c2185b');
    const ids = declaredModes().map((d) => d.id);
    assert.ok(['cold-process', 'cold-compile', 'cold', 'warm', 'local-fork'].every((m) => ids.includes(m)), ids.join(','));
    assert.deepEqual(ids.slice(0, 4), ['cold-process', 'cold-compile', 'cold', 'warm'], 'by rank, coldest first');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the core (platform, experiment runner, results, measure, figures) names no variant\'s own mode or the fork variant', () => {
  const core = ['harness/platform', 'harness/experiment', 'harness/results', 'harness/measure', 'harness/figures'];
  const named: string[] = [];
  for (const d of core) {
    for (const f of fs.readdirSync(path.join(root, d), { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      // code only: a comment may mention an example
      const text = fs.readFileSync(path.join(root, d, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
      for (const word of ['local-fork', 'wasm-fork', 'cold-compile', 'cold-process']) if (text.includes(word)) named.push(`${d}/${f}: ${word}`);
    }
  }
  assert.deepEqual(named, []);
});

test('a mode declared twice must be declared alike; an id the wire cannot carry is refused', () => {
  declareModes('test a', [{ id: 'tm-same', label: 'same', rank: 1 }]);
  declareModes('test b', [{ id: 'tm-same', label: 'same', rank: 1 }]);
  assert.throws(() => declareModes('test c', [{ id: 'tm-same', label: 'other', rank: 1 }]), /mode tm-same is declared differently by test a .* and test c/);
  for (const id of ['', 'Cold', 'a b', 'x'.repeat(65)]) assert.throws(() => declareModes('test d', [{ id, label: 'l', rank: 0 }]), /lower-case letters/, id);
  assert.throws(() => declareModes('test e', [{ id: 'tm-nolabel', label: '', rank: 0 }]), /no label/);
  assert.throws(() => declareModes('test f', [{ id: 'tm-norank', label: 'l', rank: Number.NaN }]), /rank/);
  assert.equal(modeDecl('tm-nolabel'), undefined, 'a refused declaration is not kept');
});

test('a newly declared mode gets its label, legend order and colour in the figures from its declaration alone', () => {
  // a mode no figure code names: a shade of the variant's hue by rank, and one with a colour of its own
  declareModes('test', [
    { id: 'tm-thaw', label: 'thawed copy', rank: 0 },
    { id: 'tm-own', label: 'own colour', rank: 5, colour: '#123456' },
  ]);
  const raw: RawRow[] = [];
  for (const mode of ['warm', 'tm-own', 'cold', 'tm-thaw']) {
    for (let i = 0; i < 21; i++) raw.push({ experiment: 'e', path: 'p', variant: 'wasm', function: 'noop', mode, metric: 'cold_start', params: '', iteration: i, value: 100 + i, unit: 'us' });
  }
  const fig = coldStartFigure(summarize(raw, [], []));
  const svg = figureToSvg(fig);
  assert.ok(svg.includes('wasm · thawed copy') && svg.includes('wasm · own colour'), 'the legend shows the declared labels');
  assert.ok(!svg.includes('tm-thaw') && !svg.includes('tm-own'), 'not the ids');
  const colour = fig.plot.color as { domain: string[]; range: string[] };
  assert.deepEqual(colour.domain, ['wasm · thawed copy', 'wasm · cold', 'wasm · warm', 'wasm · own colour'], 'legend order from the ranks');
  assert.deepEqual(colour.range, ['#0b2a52', '#3b7dd8', '#8db8ee', '#123456'], 'rank 0: the darkest wasm shade; the declared colour as declared');
  for (const c of colour.range) assert.ok(svg.includes(`fill="${c}"`), `a dot of ${c} is drawn`);
  // by id or by label, the same colour
  assert.equal(seriesColor('wasm · tm-thaw'), seriesColor('wasm · thawed copy'));
  // an undeclared mode sorts after the declared ones and takes the middle shade
  assert.deepEqual(sortSeries(['wasm · zz-undeclared', 'wasm · warm']), ['wasm · warm', 'wasm · zz-undeclared']);
  assert.equal(seriesColor('wasm · zz-undeclared'), '#3b7dd8');
});
