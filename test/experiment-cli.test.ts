// The experiment entry points as a user runs them: bad input, an existing folder, Ctrl-C, a missing
// runtime, a wrong output. Real processes throughout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../harness/paths.js';
import { readRawCsv } from '../harness/results/raw-writer.js';
import { readSummaryCsv } from '../harness/results/summarize.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

function run(script: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [path.join(repoRoot, 'experiments', script), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 180_000, env: { ...process.env, ...env } });
}

const out = (name: string) => path.join(scratch, name);

test('an unknown flag is refused with the valid flags listed', () => {
  const r = run('warm.mjs', ['--bogus']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /Unknown option '--bogus'/);
  assert.match(r.stderr, /valid flags: .*--quick.*--variants/);
});

test('unknown variant and function names are refused with the valid choices', () => {
  const v = run('warm.mjs', ['--variants', 'wasm,nosuch']);
  assert.equal(v.status, 2);
  assert.match(v.stderr, /unknown variant "nosuch"; valid variants: .*container.*native.*wasm/);
  const f = run('warm.mjs', ['--functions', 'nosuch']);
  assert.equal(f.status, 2);
  assert.match(f.stderr, /nosuch.*noop.*sha256/s);
  const n = run('warm.mjs', ['--reps=0']);
  assert.equal(n.status, 2);
  assert.match(n.stderr, /--reps wants a positive integer/);
});

test('--help lists the common and the experiment\'s own flags', () => {
  const r = run('throughput.mjs', ['--help']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--concurrency/);
  assert.match(r.stdout, /--seed/);
});

test('an existing results folder is never written into', () => {
  const dir = out('existing');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'precious.txt'), 'keep me');
  const r = run('warm.mjs', ['--quick', '--variants', 'wasm', '--functions', 'noop', '--out', dir, '--no-notebooks']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /exists/);
  assert.deepEqual(fs.readdirSync(dir), ['precious.txt']);
  assert.equal(fs.readFileSync(path.join(dir, 'precious.txt'), 'utf8'), 'keep me');
});

test('a quick run writes a complete, verified folder', () => {
  const dir = out('complete');
  const r = run('warm.mjs', ['--quick', '--variants', 'wasm,native', '--functions', 'noop,sha256,noop-as', '--out', dir, '--no-notebooks', '--reps', '20']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')).state, 'complete');
  const raw = readRawCsv(path.join(dir, 'raw.csv'));
  const cells = new Set(raw.map((x) => `${x.variant}/${x.function}/${x.path}`));
  assert.deepEqual([...cells].sort(), ['native/noop/direct', 'native/noop/gateway', 'native/sha256/direct', 'native/sha256/gateway', 'wasm/noop-as/direct', 'wasm/noop-as/gateway', 'wasm/noop/direct', 'wasm/noop/gateway', 'wasm/sha256/direct', 'wasm/sha256/gateway']);
  for (const c of cells) assert.equal(raw.filter((x) => `${x.variant}/${x.function}/${x.path}` === c).length, 20, c);
  const summary = readSummaryCsv(path.join(dir, 'summary.csv'));
  const skipped = summary.filter((s) => s.status === 'skipped');
  assert.ok(skipped.some((s) => s.variant === 'native' && s.function === 'noop-as' && /no native build/.test(s.note)), JSON.stringify(skipped));
  const env = JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8'));
  assert.equal(env.seed, 1);
  assert.ok(fs.existsSync(path.join(dir, 'figures', 'warm-gateway.png')));
});

test('a missing OCI runtime skips the container variant with the reason; the rest runs', () => {
  const dir = out('no-runc');
  const r = run('cold-start.mjs', ['--quick', '--variants', 'wasm,container', '--functions', 'noop', '--out', dir, '--no-notebooks', '--reps', '6'], { FXH_OCI_RUNTIME: '/nonexistent/runc' });
  assert.equal(r.status, 0, r.stderr);
  const summary = readSummaryCsv(path.join(dir, 'summary.csv'));
  const skip = summary.find((s) => s.variant === 'container' && s.status === 'skipped');
  assert.ok(skip, 'container must appear as skipped');
  assert.match(skip.note, /nonexistent\/runc/);
  assert.ok(summary.some((s) => s.variant === 'wasm' && s.status === 'ok' && s.n === 6));
  const env = JSON.parse(fs.readFileSync(path.join(dir, 'env.json'), 'utf8'));
  assert.ok(env.skips.some((s: { variant: string; reason: string }) => s.variant === 'container' && /nonexistent/.test(s.reason)));
});

test('a wrong output fails the run loudly and keeps what was measured', () => {
  const fns = out('user-fns');
  fs.mkdirSync(path.join(fns, 'liar'), { recursive: true });
  // a WASI command module that prints "ok\n" while its manifest promises something else
  fs.writeFileSync(path.join(fns, 'liar', 'liar.wat'), `(module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "ok\\n")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 3))
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`);
  const wat = spawnSync('wat2wasm', [path.join(fns, 'liar', 'liar.wat'), '-o', path.join(fns, 'liar', 'liar.wasm')], { encoding: 'utf8' });
  assert.equal(wat.status, 0, wat.stderr);
  fs.writeFileSync(path.join(fns, 'liar', 'function.json'), JSON.stringify({ name: 'liar', wasm: 'liar.wasm', input: { text: '' }, expect: { stdout: 'not what it prints\n' } }));
  const dir = out('wrong');
  const r = run('cold-start.mjs', ['--quick', '--variants', 'wasm', '--functions', 'noop,liar', '--out', dir, '--no-notebooks'], { FXH_USER_FUNCTIONS: fns });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /RUN FAILED \(wrong output\): wrong output from wasm\/cold(-compile)?: .*liar/);
  const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8'));
  assert.equal(status.state, 'incomplete');
  assert.ok(fs.existsSync(path.join(dir, 'raw.csv')));
  assert.ok(fs.existsSync(path.join(dir, 'summary.csv')));
});

test('Ctrl-C keeps what was measured, marks the run incomplete, and leaves no container behind', async () => {
  const dir = out('interrupted');
  const child = spawn(process.execPath, [path.join(repoRoot, 'experiments', 'warm.mjs'), '--variants', 'wasm,container', '--functions', 'noop', '--reps', '1000000', '--out', dir, '--no-notebooks'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const rawPath = path.join(dir, 'raw.csv');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (fs.existsSync(rawPath) && fs.readFileSync(rawPath, 'utf8').split('\n').length > 50) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  const status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8'));
  assert.equal(status.state, 'incomplete');
  assert.match(status.reason, /SIGINT/);
  assert.ok(readRawCsv(rawPath).length > 40);
  assert.ok(fs.existsSync(path.join(dir, 'summary.csv')));
  const runc = spawnSync('runc', ['list', '-q'], { encoding: 'utf8' });
  assert.deepEqual(runc.stdout.split('\n').filter((l) => l.startsWith(`fxh-${child.pid}-`)), []);
});
