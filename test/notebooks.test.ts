// The notebooks as files: valid nbformat-4 JSON for the tslab kernel, stored without outputs, explained in
// markdown before any code, reading the folder named by FXH_RESULTS. (Executing them is the suite's job.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../harness/paths.js';

const dir = path.join(repoRoot, 'notebooks');
const EXPECTED = ['cold-start.ipynb', 'warm.ipynb', 'throughput.ipynb', 'density.ipynb'];

interface Cell {
  cell_type: string;
  source: string | string[];
  outputs?: unknown[];
  execution_count?: number | null;
  id?: string;
}
interface Notebook {
  nbformat: number;
  metadata: { kernelspec?: { name?: string; display_name?: string; language?: string } };
  cells: Cell[];
}

const text = (c: Cell) => (Array.isArray(c.source) ? c.source.join('') : c.source);
const notebooks = () => fs.readdirSync(dir).filter((f) => f.endsWith('.ipynb')).sort();
const load = (f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Notebook;

test('the four experiment notebooks exist', () => {
  const have = notebooks();
  for (const f of EXPECTED) assert.ok(have.includes(f), `notebooks/${f} is missing`);
});

test('every notebook is valid nbformat-4 JSON with the tslab kernelspec', () => {
  for (const f of notebooks()) {
    let nb: Notebook;
    assert.doesNotThrow(() => (nb = load(f)), `${f} is not valid JSON`);
    nb = load(f);
    assert.equal(nb.nbformat, 4, `${f}: nbformat`);
    assert.deepEqual(
      { name: nb.metadata.kernelspec?.name, display_name: nb.metadata.kernelspec?.display_name, language: nb.metadata.kernelspec?.language },
      { name: 'tslab', display_name: 'TypeScript', language: 'typescript' },
      `${f}: kernelspec`,
    );
    assert.ok(Array.isArray(nb.cells) && nb.cells.length > 0, `${f}: no cells`);
    const ids = nb.cells.map((c) => c.id);
    assert.equal(new Set(ids).size, ids.length, `${f}: cell ids must be unique`);
  }
});

test('notebooks are stored without outputs', () => {
  for (const f of notebooks()) {
    for (const [i, c] of load(f).cells.entries()) {
      if (c.cell_type !== 'code') continue;
      assert.deepEqual(c.outputs ?? [], [], `${f}: cell ${i} has stored outputs (clear them before committing)`);
      assert.equal(c.execution_count ?? null, null, `${f}: cell ${i} has an execution count`);
    }
  }
});

test('each notebook starts with a markdown explanation and reads FXH_RESULTS', () => {
  for (const f of notebooks()) {
    const nb = load(f);
    const first = nb.cells[0]!;
    assert.equal(first.cell_type, 'markdown', `${f}: the first cell must be markdown`);
    const intro = text(first);
    assert.match(intro, /^# /m, `${f}: the explanation starts with a title`);
    assert.ok(intro.length > 500, `${f}: the explanation is too short to explain the experiment`);
    assert.match(intro, /FXH_RESULTS/, `${f}: the explanation says how to choose the results folder`);
    const all = nb.cells.map(text).join('\n');
    assert.match(all, /FXH_RESULTS/, `${f}: does not reference FXH_RESULTS`);
    // the setup cell finds the folder through the shared helper, which reads FXH_RESULTS
    assert.match(all, /nb-common\.mjs/, `${f}: does not load notebooks/nb-common.mjs`);
  }
  assert.match(fs.readFileSync(path.join(dir, 'nb-common.mjs'), 'utf8'), /process\.env|FXH_RESULTS/);
});

test('the shared helper formats numbers and reads a folder that does not exist without throwing', async () => {
  const nb = (await import(path.join(dir, 'nb-common.mjs'))) as {
    fmt3(v: number): string;
    fmtCI(v: number, lo: number, hi: number): string;
    escapeHtml(s: string): string;
    resolveResultsDir(root: string, env: Record<string, string | undefined>, cwd?: string): { dir: string; exists: boolean };
  };
  assert.equal(nb.fmt3(1536.34), '1,540');
  assert.equal(nb.fmt3(24.189), '24.2');
  assert.equal(nb.fmt3(NaN), '–');
  assert.equal(nb.fmtCI(24.189, 23.9, 25.12), '24.2 [23.9, 25.1]');
  assert.equal(nb.escapeHtml('<a&"b">'), '&lt;a&amp;&quot;b&quot;&gt;');
  const r = nb.resolveResultsDir(repoRoot, { FXH_RESULTS: '/nonexistent/results/folder' });
  assert.equal(r.dir, '/nonexistent/results/folder');
  assert.equal(r.exists, false);
  // an executed copy in results/<run>/notebooks/ reads the run folder it sits in
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'nb-test-'));
  try {
    fs.writeFileSync(path.join(run, 'status.json'), '{"state":"complete"}');
    fs.writeFileSync(path.join(run, 'raw.csv'), '');
    fs.mkdirSync(path.join(run, 'notebooks'));
    const inside = nb.resolveResultsDir(repoRoot, {}, path.join(run, 'notebooks'));
    assert.equal(inside.dir, run);
    assert.equal(inside.exists, true);
  } finally {
    fs.rmSync(run, { recursive: true, force: true });
  }
});
