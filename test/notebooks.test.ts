// The notebooks as files (valid nbformat-4 JSON for the tslab kernel, stored without outputs, explained in
// markdown before any code, reading the folder named by FXH_RESULTS), and executed on synthetic results folders:
// no errors, and their computed sentences follow the data (a result in the other direction says so).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../harness/paths.js';
import * as fx from './nb-fixtures.js';

const dir = path.join(repoRoot, 'notebooks');

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

// ---------------------------------------------------------------- executed notebooks

const PYTHON = '/usr/bin/python3';
const EXPERIMENTS_DIR = path.join(repoRoot, 'harness', 'experiments');

interface Output { output_type: string; text?: string | string[]; data?: Record<string, string | string[]>; ename?: string; evalue?: string }
interface Executed { cells: { cell_type: string; outputs?: Output[] }[] }

const join = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join('') : s ?? '');
const unescapeHtml = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** Executes notebooks/<name> on `folder` (FXH_RESULTS) as the runner does (nbconvert, tslab), keeping errors in the cells. */
function execute(name: string, folder: string): Executed {
  const env = { ...process.env, FXH_RESULTS: folder, PATH: `${path.join(repoRoot, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` };
  const r = spawnSync(PYTHON, ['-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.allow_errors=True', '--ExecutePreprocessor.timeout=240', '--stdout', path.join(dir, name)],
    { env, cwd: repoRoot, encoding: 'utf8', timeout: 300_000, maxBuffer: 256 * 2 ** 20 });
  assert.equal(r.status, 0, `${name} on ${folder}: nbconvert failed: ${(r.stderr || r.error?.message || '').split('\n').slice(-8).join('\n')}`);
  return JSON.parse(r.stdout) as Executed;
}

/** Error outputs, as "cell i: name: value". */
function errorsOf(nb: Executed): string[] {
  return nb.cells.flatMap((c, i) => (c.outputs ?? []).filter((o) => o.output_type === 'error').map((o) => `cell ${i}: ${o.ename}: ${o.evalue}`));
}

/** What a reader sees of the outputs: printed text, and HTML as text (figures left out). */
function proseOf(nb: Executed): string {
  const parts: string[] = [];
  for (const c of nb.cells) for (const o of c.outputs ?? []) {
    if (o.output_type === 'stream') parts.push(join(o.text));
    const html = join(o.data?.['text/html']);
    if (html) parts.push(unescapeHtml(html.replace(/<svg[\s\S]*?<\/svg>/g, ' ').replace(/<[^>]+>/g, '')).replace(/\s+/g, ' '));
  }
  return parts.join('\n');
}

interface Case { label: string; build(dir: string): void; check?(prose: string): void }

// One or more synthetic folders per notebook, with what its computed prose must say about them.
const CASES: Record<string, Case[]> = {
  'sockmap.ipynb': [
    {
      label: 'splicing faster than the baseline',
      build: (d) => fx.sockmapFolder(d, { tcp: 70, relayed: 63, spliced: 35, hopTcp: 6, hopSockmap: 4 }),
      check: (p) => {
        assert.match(p, /spliced, 64 B: the spliced round trip was 50\.0% lower than the wasm\+tcp baseline \(35 µs against 70 µs/);
        assert.match(p, /relayed, 64 B: the relayed round trip \(wasm\+sockmap\) was 10\.0% lower .*; the 20% target is not met/);
        assert.match(p, /hop, 64 B: the kernel hop with sk_msg was 33\.3% lower .*; it saved 1 µs per message/);
        assert.match(p, /relaying, 64 B: the spliced round trip was 28 µs shorter than the relayed one/);
        assert.doesNotMatch(p, /not lower/);
      },
    },
    {
      label: 'the fast path slower than the baseline',
      build: (d) => fx.sockmapFolder(d, { tcp: 70, relayed: 80, spliced: 90, hopTcp: 6, hopSockmap: 7 }),
      check: (p) => {
        assert.match(p, /spliced, 64 B: the spliced round trip was not lower: it was 28\.6% higher than the wasm\+tcp baseline \(90 µs against 70 µs/);
        assert.match(p, /relayed, 64 B: the relayed round trip \(wasm\+sockmap\) was not lower: it was 14\.3% higher/);
        assert.match(p, /hop, 64 B: the kernel hop with sk_msg was not lower.*it added 0\.5 µs per message/);
        assert.match(p, /relaying, 64 B: the spliced round trip was not shorter than the relayed one/);
        assert.doesNotMatch(p, /% lower than/);
      },
    },
  ],
  'cold-start.ipynb': [
    {
      label: 'ratios against three WASM cold modes in cold-start-ratios.csv',
      build: (d) => fx.coldStartFolder(d, {
        medians: { 'container/cold': 20000, 'wasm/cold': 100, 'wasm/cold-compile': 2000, 'wasm/cold-process': 5000, 'native/cold': 1000 },
        ratioDenominators: ['wasm/cold', 'wasm/cold-compile', 'wasm/cold-process'],
      }),
      check: (p) => {
        for (const [den, x] of [['wasm/cold', '200×'], ['wasm/cold-compile', '10×'], ['wasm/cold-process', '4×']]) {
          assert.match(p, new RegExp(`median ${den} \\(µs\\)`), `a table for the denominator ${den}`);
          assert.match(p, new RegExp(`gateway path: a container/cold cold start takes ${x} as long as a ${den} cold start`), `the sentence for ${den}`);
        }
        assert.match(p, /Source: cold-start-ratios\.csv/);
      },
    },
    {
      label: 'no ratio file: the ratios are recomputed for every WASM cold mode in raw.csv',
      build: (d) => fx.coldStartFolder(d, { medians: { 'container/cold': 20000, 'wasm/cold': 400, 'wasm/cold-process': 8000 }, ratioDenominators: [] }),
      check: (p) => {
        assert.match(p, /direct path: a container\/cold cold start takes 50× as long as a wasm\/cold cold start/);
        assert.match(p, /direct path: a container\/cold cold start takes 2\.5× as long as a wasm\/cold-process cold start/);
        assert.match(p, /Source: computed here from raw\.csv \(cold-start-ratios\.csv is missing\)/);
      },
    },
  ],
  'warm.ipynb': [{
    label: 'the gateway slower for wasm, faster for native',
    build: (d) => fx.warmFolder(d, { wasm: { direct: 5, gateway: 40 }, native: { direct: 30, gateway: 25 } }),
    check: (p) => {
      assert.match(p, /wasm: the gateway adds 35 µs to a warm call/);
      assert.match(p, /native: the gateway path was 5 µs shorter than the direct call/);
      assert.doesNotMatch(p, /adds -/);
    },
  }],
  'throughput.ipynb': [{
    label: 'native peaks above wasm',
    build: (d) => fx.throughputFolder(d, { wasm: 25000, native: 30000 }),
    check: (p) => {
      assert.match(p, /Its peak median is 25,000 req\/s at concurrency 16/);
      assert.match(p, /native · noop · warm: peak 30,000 req\/s at concurrency 16 \(1\.2× the wasm peak\)/);
      assert.doesNotMatch(p, /less than wasm/);
    },
  }],
  'fork.ipynb': [{
    label: 'remote dirty meets 2 ms at 1 MiB, pulled and pushed, eager does not',
    build: (d) => fx.forkFolder(d, { 'remote-fork dirty': 1500, 'remote-fork dirty push': 1300, 'remote-fork eager': 2500, 'local-fork dirty': 300, 'cold none': 1400, 'warm none': 400 }),
    check: (p) => {
      assert.match(p, /remote-fork dirty \(pulled\) over tcp, 1 MiB: median 1\.50 ms to the first verified response .*target ≤ 2 ms: met/);
      assert.match(p, /remote-fork dirty \(pushed\) over tcp, 1 MiB: median 1\.30 ms to the first verified response .*target ≤ 2 ms: met/);
      assert.match(p, /remote-fork eager \(pulled\) over tcp, 1 MiB: median 2\.50 ms .*target ≤ 2 ms: not met/);
      assert.match(p, /2 child node\(s\): 600 verified forks\/s from one parent/);
    },
  }],
  'rdma.ipynb': [{
    label: 'rdma faster than tcp; the harness within 2x of perftest',
    build: (d) => fx.rdmaFolder(d, { rpc: { tcp: 400, rdma: 250 }, write: { harness: 15, perftest: 10 } }),
    check: (p) => {
      assert.match(p, /rpc_latency, 64 B: rdma 250 us against tcp 400 us \(rdma\/tcp = 0\.63\)/);
      assert.match(p, /remote fork \(dirty\), 1 MiB, to the first verified response: rdma 40\.00 ms against tcp 80\.00 ms \(rdma\/tcp = 0\.50\)/);
      assert.match(p, /RDMA WRITE, 64 B: the harness's median 15(\.0)? µs against ib_write_lat's typical 10(\.0)? µs: 1\.50×; target within 2×: met/);
    },
  }, {
    label: 'the harness 3x perftest',
    build: (d) => fx.rdmaFolder(d, { rpc: { tcp: 400, rdma: 500 }, write: { harness: 30, perftest: 10 } }),
    check: (p) => assert.match(p, /: 3\.00×; target within 2×: not met/),
  }],
  'parallel.ipynb': [{
    label: 'scalar in the Not So Fast band, SIMD within 20%',
    build: (d) => fx.parallelFolder(d, { native: 1000, wasm: 1500, 'wasm-simd': 1100, 'wasm-threads': 1200 }),
    check: (p) => {
      assert.match(p, /WASM\/native geometric mean, wasm: 1\.50× \(inside the "Not So Fast" band\)/);
      assert.match(p, /WASM\/native geometric mean, wasm-simd: 1\.10× \(within the 20% of "Leaps and bounds"\)/);
      assert.match(p, /native reduce size 1024: 1\.82× at 2 threads over one \(efficiency 0\.91\)/);
      assert.match(p, /eBPF kernels loaded, verified and timed: reduce/);
      assert.match(p, /wasm · [^,]*, pool 2, N = 16: job 12\.0 ms, straggler 10\.0 ms/);
    },
  }],
  'rdma-ebpf.ipynb': [{
    label: 'every proof equal, the drops seen exactly, the telemetry adds 10% in generic XDP',
    build: (d) => fx.rdmaEbpfFolder(d, { proofSeen: 100, lossMissing: 20, arms: { detached: 100, generic: 110, 'generic-pass': 101, native: 105, 'native-pass': 100 } }),
    check: (p) => {
      assert.match(p, /proof, phase proof: in all 7 direction\(s\) of 4 perftest test\(s\) \(write_lat, send_lat, read_lat, write_bw\) the eBPF per-QP counters equal what perftest posted/);
      assert.match(p, /proof, phase loss-baseline: in all 3 direction\(s\) of 2 perftest test\(s\)/);
      assert.match(p, /loss, write_bw \(drop every 50th request to the server, 1000 × 1024 B\): 20 packet\(s\) dropped; the telemetry found exactly as many PSNs missing \(20, in 20 gap\(s\)\); 20 NAK\(s\) \(PSN sequence error\), one per gap/);
      assert.match(p, /recovery, write_bw: recovered: perftest exited 0 and 1,000 of 1,000 operations/);
      assert.match(p, /accounting, write_bw: the loss program saw 40 packet\(s\) beyond the 1,000 posted; dropped 20 \+ retransmissions 20 = 40 \(equal\)/);
      assert.match(p, /bandwidth, write_bw: 4\.50 MB\/s with loss against 6\.00 MB\/s lossless \(-25\.0%\)/);
      assert.match(p, /latency, write_lat: median 130 µs with loss against 100 µs lossless: the loss added 30 µs to the median/);
      assert.match(p, /overhead, generic vs detached \(telemetry, generic XDP\): generic is slower: it adds 10\.0% \(CI [\d.]+% … [\d.]+%\); ratio of block medians 1\.100, 95% CI 1\.0\d\d … 1\.1\d\d over 4\/4 blocks/);
      assert.match(p, /overhead, native-pass vs detached \(a native XDP hook on the veth, doing nothing\): no difference distinguishable/);
      assert.match(p, /time, RDMA WRITE \(write_bw, 50 operations, one in flight\): post to completion 97\.3 µs median; .*share of the total time posting 3\.2%, rxe processing 42\.6%, the wire 43\.2%, completion 11\.1%; the longest step is wire \(ack\)/);
      assert.match(p, /time, SEND \(send_bw, 50 operations/);
      assert.doesNotMatch(p, /do NOT equal|NOT recovered|NOT equal|MISSING/);
    },
  }, {
    label: 'one direction counted short, one drop unseen, no overhead, the native arm without samples',
    build: (d) => fx.rdmaEbpfFolder(d, { proofSeen: 99, lossMissing: 19, arms: { detached: 100, generic: 100, 'generic-pass': 100, native: 0, 'native-pass': 100 } }),
    check: (p) => {
      assert.match(p, /proof, phase proof: the eBPF per-QP counters do NOT equal what perftest posted in 1 of 7 direction\(s\): write_lat to_client write: posted 100 ops \/ 6400 B, counted 99 ops \/ 6336 B/);
      assert.match(p, /the telemetry found 19 PSN\(s\) missing in 19 gap\(s\), 1 fewer than the drops/);
      assert.match(p, /overhead, generic vs detached \(telemetry, generic XDP\): no difference distinguishable \(the CI includes 1/);
      assert.match(p, /overhead, native vs detached \(telemetry, native XDP\): not compared: native has no measured block/);
      assert.match(p, /MISSING: overhead arm native: 0 of 4 planned blocks brought latency samples/);
      assert.doesNotMatch(p, /is slower|exactly as many PSNs missing/);
    },
  }],
  'density.ipynb': [{ label: 'three variants', build: (d) => fx.densityFolder(d) }],
  'cold-breakdown.ipynb': [{
    label: 'container, wasm and native traced',
    build: (d) => fx.coldBreakdownFolder(d),
    check: (p) => {
      assert.match(p, /Container \(noop, cold\): 18 ms median/);
      assert.match(p, /WASM \(noop, cold\): 50 µs median.* no process, no exec, no mount/);
      assert.match(p, /the container adds 17\.2 ms \(median\), 5 processes, 2 execs and 12 mounts/);
      assert.match(p, /Largest relative overhead: container · noop · cold \(5\.9%/);
    },
  }, {
    label: 'native slower than the container',
    build: (d) => fx.coldBreakdownFolder(d, 30),
    check: (p) => {
      assert.match(p, /the container was not slower: 7\.5 ms faster \(median\), with 5 processes, 2 execs and 12 mounts more/);
      assert.doesNotMatch(p, /the container adds -/);
    },
  }],
  'chains.ipynb': [{
    label: 'direct ways faster at N = 1, the gateway at N = 8',
    build: (d) => fx.chainsFolder(d, { 'wasm+gateway': [60, 250], 'wasm+sockmap': [30, 420], 'wasm+sockmap+shm': [35, 480], 'container+gateway': [200, 1500] }),
    check: (p) => {
      assert.match(p, /64 B: fastest at N=1 wasm\+sockmap \(30 µs\), at N=8 wasm\+gateway \(250 µs\)/);
      assert.match(p, /64 B: fastest at N=1 [^;]*, at N=8 [^;]*; wasm\+gateway is faster than both direct ways from N=8 on/);
      assert.match(p, /slowest .* container\+gateway/);
    },
  }],
};

test('every notebook is written by an experiment, and every experiment\'s notebook exists', () => {
  const named = new Set(fs.readdirSync(EXPERIMENTS_DIR).filter((f) => f.endsWith('.ts'))
    .flatMap((f) => [...fs.readFileSync(path.join(EXPERIMENTS_DIR, f), 'utf8').matchAll(/notebook: '([^']+)'/g)].map((m) => m[1]!)));
  assert.ok(named.size > 0, 'no experiment names a notebook');
  for (const n of named) assert.ok(notebooks().includes(n), `an experiment names notebooks/${n}, which does not exist`);
  for (const n of notebooks()) assert.ok(named.has(n), `notebooks/${n} is executed by no experiment (no "notebook: '${n}'" in harness/experiments/)`);
});

describe('each notebook executes on synthetic results folders and says what their data show', () => {
  test('the tools to execute notebooks are installed', () => {
    assert.ok(fs.existsSync(PYTHON), `${PYTHON} is missing (apt-get install python3-notebook jupyter-nbconvert)`);
    assert.ok(fs.existsSync(path.join(repoRoot, 'node_modules', '.bin', 'tslab')), 'node_modules/.bin/tslab is missing (npm ci)');
  });
  for (const name of notebooks()) {
    test(`${name} has synthetic folders to be executed on`, () => {
      assert.ok(CASES[name]?.length, `no synthetic folder for notebooks/${name}: add one to CASES in test/notebooks.test.ts`);
    });
    for (const c of CASES[name] ?? []) {
      test(`${name}: ${c.label}`, () => {
        const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-nb-'));
        try {
          c.build(folder);
          const nb = execute(name, folder);
          assert.deepEqual(errorsOf(nb), [], `${name} raised errors`);
          const prose = proseOf(nb);
          assert.match(prose, new RegExp(`results folder: ${folder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), `${name} did not read the folder it was given`);
          c.check?.(prose);
        } finally {
          fs.rmSync(folder, { recursive: true, force: true });
        }
      });
    }
    test(`${name}: a folder that does not exist is reported, not raised`, () => {
      const nb = execute(name, path.join(os.tmpdir(), 'fxh-nb-does-not-exist'));
      assert.deepEqual(errorsOf(nb), [], `${name} raised errors`);
      assert.match(proseOf(nb), /NO RESULTS FOLDER/);
    });
  }
});
