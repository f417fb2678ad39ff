import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  budgetFigure,
  coldStartFigure,
  daemonFigure,
  figureToSvg,
  formatParams,
  latencyVsConcurrencyFigure,
  memlockFigure,
  memoryFigure,
  paramNumber,
  parseParams,
  renderFigure,
  throughputFigure,
  warmFigure,
  type Figure,
} from '../harness/figures/index.js';
import { summarize } from '../harness/results/summarize.js';
import type { RawRow, Skip, SummaryRow } from '../harness/results/schema.js';
import { createRng } from '../harness/measure/random.js';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function synthetic(): SummaryRow[] {
  const rng = createRng(5);
  const raw: RawRow[] = [];
  const add = (o: Omit<RawRow, 'iteration' | 'value' | 'experiment' | 'path'>, center: number, n = 20) => {
    for (let i = 0; i < n; i++) {
      raw.push({ experiment: 'e', path: 'in-process', ...o, iteration: i, value: center * (1 + 0.1 * rng()) });
    }
  };
  for (const fn of ['sha256', 'echo']) {
    for (const [variant, us] of [['wasm', 50], ['native', 800], ['runc', 20000]] as const) {
      add({ variant, function: fn, mode: 'cold', metric: 'cold_start', params: '', unit: 'ns' }, us * 1e3);
      add({ variant, function: fn, mode: 'warm', metric: 'latency', params: '', unit: 'ns' }, us * 20);
      for (const c of [1, 2, 4, 8, 16]) {
        add({ variant, function: fn, mode: 'warm', metric: 'throughput', params: formatParams({ concurrency: c }), unit: 'requests/s' }, (1e6 / us) * Math.min(c, 2), 8);
        add({ variant, function: fn, mode: 'warm', metric: 'latency', params: formatParams({ concurrency: c, scale: 'small' }), unit: 'us' }, us * c, 8);
      }
      for (const n of [1, 2, 4]) {
        add({ variant, function: fn, mode: 'warm', metric: 'cgroup_per_instance', params: `n=${n}`, unit: 'MiB' }, (40 + (us / 10) * n) / n, 6);
        add({ variant, function: fn, mode: 'warm', metric: 'pss_per_instance', params: `n=${n}`, unit: 'KiB' }, ((50 + (us / 10) * n) / n) * 1024, 6);
      }
      add({ variant, function: fn, mode: 'warm', metric: 'fit_predicted', params: 'budget=4 GiB', unit: 'instances' }, 4096 / (us / 10), 3);
      add({ variant, function: fn, mode: 'warm', metric: 'fit_tried', params: `budget=4 GiB;outcome=${variant === 'wasm' ? 'oom-kill' : 'reached'}`, unit: 'instances' }, 4096 / (us / 10), 1);
    }
    for (const n of [1, 2, 4]) {
      add({ variant: 'docker', function: fn, mode: 'warm', metric: 'cgroup_per_instance', params: `n=${n}`, unit: 'MiB' }, (80 + 8 * n) / n, 1);
      add({ variant: 'docker', function: fn, mode: 'warm', metric: 'daemon_share_per_instance', params: `n=${n}`, unit: 'MiB' }, 75 / n, 1);
    }
    if (fn === 'sha256') {
      for (const n of [1, 2]) add({ variant: 'ebpf', function: fn, mode: 'warm', metric: 'memlock_per_instance', params: `n=${n}`, unit: 'MiB' }, 0.005, 1);
    }
  }
  const skips: Skip[] = [{ experiment: 'e', variant: 'crun', function: 'sha256', mode: 'cold', reason: 'cgroups hybrid <unsupported> & skipped' }];
  return summarize(raw, skips, []);
}

const dirOf = () => fs.mkdtempSync(path.join(os.tmpdir(), 'figures-test-'));

function checkRender(fig: Figure, mustContain: string[]): string {
  const dir = dirOf();
  const out = renderFigure(fig, dir);
  assert.equal(out.svg, path.join(dir, `${fig.name}.svg`));
  assert.equal(out.png, path.join(dir, `${fig.name}.png`));
  const svg = fs.readFileSync(out.svg, 'utf8');
  assert.ok(svg.startsWith('<?xml'));
  assert.match(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(!svg.includes('<style'), 'no CSS the rasterizer cannot read');
  for (const s of mustContain) assert.ok(svg.includes(s), `${fig.name}.svg contains ${JSON.stringify(s)}`);
  const png = fs.readFileSync(out.png);
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  assert.ok(png.length > 10_000, `png has content (${png.length} bytes)`);
  assert.equal(png.readUInt32BE(16), 2 * Number(/width="(\d+)"/.exec(svg)?.[1]), 'PNG is 2× the SVG width');
  assert.throws(() => renderFigure(fig, dir), /EEXIST/, 'never overwrites');
  return svg;
}

const SKIP_NOTE = 'Skipped (1): crun/sha256/cold — cgroups hybrid &lt;unsupported&gt; &amp; skipped';

test('params strings', () => {
  assert.deepEqual(parseParams('concurrency=4;scale=small'), { concurrency: '4', scale: 'small' });
  assert.deepEqual(parseParams(''), {});
  assert.equal(formatParams({ scale: 'small', concurrency: 4 }), 'concurrency=4;scale=small');
  assert.equal(paramNumber('scale=small;concurrency=16', 'concurrency'), 16);
  assert.equal(paramNumber('scale=small', 'concurrency'), undefined);
  assert.throws(() => formatParams({ a: 'x;y' }));
});

test('cold start figure', () => {
  const rows = synthetic();
  const fig = coldStartFigure(rows);
  assert.equal(fig.notes?.[0], SKIP_NOTE.replace('&lt;', '<').replace('&gt;', '>').replace('&amp;', '&'));
  const svg = checkRender(fig, ['Cold start latency per function', 'cold start (µs, log scale)', SKIP_NOTE, 'wasm · cold', 'runc · cold', 'sha256', 'echo']);
  assert.ok(!svg.includes('wasm · warm'), 'only cold_start rows');
});

test('warm figure', () => {
  checkRender(warmFigure(synthetic()), ['Warm invocation latency per function', 'warm latency (µs, log scale)', 'wasm · warm']);
});

test('throughput and latency-vs-concurrency figures', () => {
  const rows = synthetic();
  const t = throughputFigure(rows);
  checkRender(t, ['Throughput against concurrency', 'concurrency (log₂)', 'requests/s', '>16<', '>8<']);
  checkRender(latencyVsConcurrencyFigure(rows), ['Latency under load', 'latency (µs, log scale)', 'dashed line: p99']);
});

test('density figures', () => {
  const rows = synthetic();
  const mem = checkRender(memoryFigure(rows), ['Memory per idle instance, like for like', 'memory per instance (log scale)', 'N idle instances', 'wasm PSS', 'native cgroup usage', '>sha256<', '>echo<']);
  assert.ok(!mem.includes('memlock'), 'eBPF memlock is not in the like-for-like figure');
  checkRender(budgetFigure(rows), ['Instances in the memory budget: predicted and tried', 'Budget: 4 GiB', 'predicted 842', 'tried 843 (oom-kill)', 'Fell short of the prediction (2): wasm/sha256 — oom-kill', 'No median CI (n &lt; 6)']);
  checkRender(memlockFigure(rows), ['eBPF: kernel memory per loaded program (memlock)', 'ebpf', 'No median CI']);
  const d = checkRender(daemonFigure(rows), ['the daemon\'s share of each idle instance', 'docker daemon share', 'docker cgroup usage']);
  assert.ok(!/>wasm</.test(d) && !d.includes('native cgroup'), 'only daemon variants in the daemon figure');
});

test('an empty input still renders and says so', () => {
  const svg = figureToSvg(coldStartFigure([]));
  assert.ok(svg.includes('No measured cells.'));
});

test('memory ticks use binary units, never an SI "m"', async () => {
  const { mibTick } = await import('../harness/figures/density.js');
  assert.equal(mibTick(0.5), '512 KiB');
  assert.equal(mibTick(0.0625), '64 KiB');
  assert.equal(mibTick(3), '3 MiB');
  assert.equal(mibTick(2048), '2 GiB');
  assert.equal(mibTick(1 / 2 ** 20), '1 B');
});

test('a figure lists a few noisy cells and counts the rest, instead of listing them all', async () => {
  const { cellNotes } = await import('../harness/figures/common.js');
  const raw: RawRow[] = [];
  for (let c = 0; c < 10; c++) {
    for (let i = 0; i < 30; i++) raw.push({ experiment: 'e', path: 'p', variant: 'wasm', function: 'noop', mode: 'warm', metric: 'latency', params: `cell=${c}`, iteration: i, value: i % 2 ? 1 : 100, unit: 'us' });
  }
  const notes = cellNotes(summarize(raw, []), ['latency']);
  const noisy = notes.find((n) => n.startsWith('Noisy'));
  assert.ok(noisy, notes.join('\n'));
  assert.match(noisy, /^Noisy, 10 of 10 cells/);
  assert.match(noisy, /and 4 more \(column noisy of summary\.csv\)$/);
  assert.equal((noisy.match(/cell=/g) ?? []).length, 6);
});

test('times are written in the unit their size wants, negative ones too', async () => {
  const { fmtUs } = await import('../harness/figures/cold-start.js');
  assert.equal(fmtUs(5270), '5.27 ms');
  assert.equal(fmtUs(-5270), '-5.27 ms');
  assert.equal(fmtUs(-28.4), '-28.4 µs');
  assert.equal(fmtUs(2.5e6), '2.50 s');
});

// ------------------------------------------------------------------------------ what is drawn

/** position of an element in the figure: its own cx/cy and every translate() of it and its ancestors */
function position(el: Element): { x: number; y: number } {
  let x = Number(el.getAttribute('cx') ?? 0);
  let y = Number(el.getAttribute('cy') ?? 0);
  for (let e: Element | null = el; e; e = e.parentElement) {
    for (const m of (e.getAttribute('transform') ?? '').matchAll(/translate\(([-\d.e]+)(?:[ ,]+([-\d.e]+))?\)/g)) {
      x += Number(m[1]);
      y += Number(m[2] ?? 0);
    }
    if (e.getAttribute('x') && e.tagName.toLowerCase() === 'svg') {
      x += Number(e.getAttribute('x'));
      y += Number(e.getAttribute('y') ?? 0);
    }
  }
  return { x, y };
}

const SI: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9 };

test('latency figure: one dot per ok cell, at its median on the log axis, in its function\'s panel and its series\' colour; skipped, failed and noisy cells in the notes', async () => {
  const { parseHTML } = await import('linkedom');
  const { seriesColor } = await import('../harness/figures/common.js');
  const raw: RawRow[] = [];
  // medians in a different order in each panel, so a dot in the wrong panel or row shows
  const medians: Record<string, Record<string, number>> = { sha256: { wasm: 50, native: 800, container: 20000 }, echo: { wasm: 3000, native: 90, container: 400 } };
  for (const [fn, byVariant] of Object.entries(medians)) {
    for (const [variant, us] of Object.entries(byVariant)) {
      for (let i = 0; i < 21; i++) raw.push({ experiment: 'e', path: 'p', variant, function: fn, mode: 'cold', metric: 'cold_start', params: '', iteration: i, value: us * (1 + (i - 10) / 1000), unit: 'us' });
    }
  }
  // a noisy cell: values far apart, so its median's CI is wide
  for (let i = 0; i < 21; i++) raw.push({ experiment: 'e', path: 'p', variant: 'ebpf', function: 'echo', mode: 'cold', metric: 'cold_start', params: '', iteration: i, value: i % 2 ? 10 : 1000, unit: 'us' });
  const skips: Skip[] = [{ experiment: 'e', variant: 'crun', function: 'sha256', mode: 'cold', reason: 'crun refuses hybrid cgroups' }];
  const failures = [{ experiment: 'e', variant: 'ebpf', function: 'sha256', mode: 'cold', metric: 'cold_start', reason: 'verifier said no' }];
  const rows = summarize(raw, skips, failures);
  const ok = rows.filter((r) => r.status === 'ok' && r.metric === 'cold_start');
  assert.equal(ok.length, 7);
  const fig = coldStartFigure(rows);
  const { document } = parseHTML(`<html><body>${figureToSvg(fig).replace(/^<\?xml[^>]*>/, '')}</body></html>`);

  // the x scale, from the labelled ticks: log10(value) is linear in x
  const ticks = Array.from(document.querySelectorAll('g[aria-label="x-axis tick label"] text') as ArrayLike<Element>)
    .filter((t) => /^[\d.]+[kMG]?$/.test(t.textContent ?? ''))
    .map((t) => {
      const m = /^([\d.]+)([kMG]?)$/.exec(t.textContent!)!;
      return { x: position(t).x, v: Number(m[1]) * SI[m[2]!]! };
    });
  assert.ok(ticks.length >= 2, 'labelled x ticks');
  const a = ticks[0]!;
  const b = ticks[ticks.length - 1]!;
  const valueAt = (x: number): number => 10 ** (Math.log10(a.v) + ((x - a.x) / (b.x - a.x)) * (Math.log10(b.v) - Math.log10(a.v)));
  for (const t of ticks) assert.ok(Math.abs(valueAt(t.x) / t.v - 1) < 1e-6, `tick ${t.v} on the log scale`);

  // the panels (functions) and rows (series), by their labels' heights
  const panels = Array.from(document.querySelectorAll('g[aria-label="fy-axis tick label"] text') as ArrayLike<Element>).map((t) => ({ fn: t.textContent!, y: position(t).y }));
  assert.deepEqual(panels.map((p) => p.fn).sort(), ['echo', 'sha256']);
  const dots = Array.from(document.querySelectorAll('g[aria-label="dot"] circle') as ArrayLike<Element>);
  assert.equal(dots.length, ok.length, 'one dot per ok cell (none for skipped or failed ones)');
  const seen = new Set<string>();
  for (const d of dots) {
    const p = position(d);
    const fn = panels.reduce((best, q) => (Math.abs(q.y - p.y) < Math.abs(best.y - p.y) ? q : best)).fn;
    const cell = ok.find((r) => r.function === fn && seriesColor(`${r.variant} · ${r.mode}`) === d.getAttribute('fill'));
    assert.ok(cell, `a dot of colour ${d.getAttribute('fill')} in panel ${fn} belongs to a cell`);
    const key = `${cell.variant}/${cell.function}`;
    assert.ok(!seen.has(key), `one dot for ${key}`);
    seen.add(key);
    assert.ok(Math.abs(valueAt(p.x) / cell.p50 - 1) < 0.005, `${key}: dot at ${valueAt(p.x).toFixed(1)} µs, median ${cell.p50} µs`);
  }
  assert.equal(seen.size, ok.length);

  const notes = fig.notes ?? [];
  assert.ok(notes.some((n) => /^Skipped \(1\): crun\/sha256\/cold — crun refuses hybrid cgroups$/.test(n)), notes.join('\n'));
  assert.ok(notes.some((n) => /^Failed \(1, not drawn\): ebpf\/sha256\/cold — verifier said no$/.test(n)), notes.join('\n'));
  assert.ok(notes.some((n) => /^Noisy, 1 of 7 cells .*: ebpf\/echo\/cold$/.test(n)), notes.join('\n'));
  const svg = figureToSvg(fig);
  for (const n of ['Skipped (1)', 'Failed (1, not drawn)', 'Noisy, 1 of 7 cells']) assert.ok(svg.includes(n), `the drawn notes say ${n}`);
});
