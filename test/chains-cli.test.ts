// The chains experiment as a user runs it, when things go wrong (real processes, real eBPF):
//   - a chain node SIGKILLed mid-run: both sockmap ways get a `failed` row whose reason names the
//     stage and its pid, the gateway way goes on to the end, the run ends with status 1 and keeps
//     what was measured, and no node, cgroup, /dev/shm file or scratch folder is left;
//   - Ctrl-C mid-run: status 130, the folder marked incomplete, nothing left behind;
//   - the owner of a chain SIGKILLed: its nodes leave by themselves and take the shared file and
//     scratch folder with them; the cgroup is removed by the next run's start-up cleanup, which says
//     so (and the files too, when the nodes were killed with their owner).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { buildDir, repoRoot } from '../harness/paths.js';
import { CGROUP2_ROOT, cgroupProcs, startupCleanup } from '../harness/bpf/cgroup.js';
import { sockmapCapability } from '../harness/bpf/sockmap.js';
import { CHAIN_PREFIX, SHM_DIR, staleChainCleanup } from '../harness/chains/chain.js';
import { pidAlive } from '../harness/platform/proc-memory.js';
import { readRawCsv } from '../harness/results/raw-writer.js';
import { readSummaryCsv } from '../harness/results/summarize.js';
import { ownCgroups, waitFor } from './helpers.js';

const cap = sockmapCapability();
const skip = cap.ok ? false : `eBPF unavailable here: ${cap.reason}`;
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'chains-cli-test-'));
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

/** what a process with this pid left: cgroups, /dev/shm files, scratch folders of its chains */
function leftBy(pid: number): string[] {
  const chainOf = (d: string) => fs.readdirSync(d).filter((n) => n.startsWith(`${CHAIN_PREFIX}${pid}-`)).map((n) => path.join(d, n));
  return [...ownCgroups(pid), ...chainOf(SHM_DIR), ...chainOf(os.tmpdir())];
}
const stageOf = (pid: number) => Number(/--stage\0(\d+)\0/.exec(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1'))?.[1]);

function runChains(out: string, extra: string[]): { child: ChildProcess; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'experiments', 'chains.mjs'), '--variants', 'wasm', '--payloads', '64', '--out', out, '--no-notebooks', '--warmup', '0', ...extra], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  const exit = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return { child, stderr: () => stderr, exit };
}

/** waits until the run measures the sockmap ways; returns the chain nodes' pids by stage */
async function whileMeasuringSockmap(pid: number, out: string, nodes: number): Promise<Map<number, number>> {
  const cg = path.join(CGROUP2_ROOT, `fxh-${pid}-chains`);
  assert.ok(await waitFor(() => cgroupProcs(cg).length === nodes, 60_000), `${nodes} chain nodes in ${cg}`);
  const byStage = new Map(cgroupProcs(cg).map((p) => [stageOf(p), p]));
  const raw = path.join(out, 'raw.csv');
  assert.ok(await waitFor(() => fs.existsSync(raw) && fs.readFileSync(raw, 'utf8').includes(',wasm+sockmap'), 60_000), 'sockmap rows in raw.csv');
  return byStage;
}

test('a chain node SIGKILLed mid-run: both sockmap ways fail naming the stage, the gateway way goes on, nothing is left', { skip }, async () => {
  const out = path.join(scratch, 'node-killed');
  const reps = 1500;
  const run = runChains(out, ['--lengths', '1,4', '--reps', String(reps)]);
  const pid = run.child.pid!;
  const byStage = await whileMeasuringSockmap(pid, out, 4);
  const victim = byStage.get(2)!;
  process.kill(victim, 'SIGKILL');
  const code = await run.exit;
  assert.equal(code, 1, run.stderr());
  const reason = new RegExp(`chain node of stage 2 \\(pid ${victim}\\) killed by SIGKILL`);
  assert.match(run.stderr(), new RegExp(`FAILED wasm\\+sockmap(\\+shm)?/chainstep/warm/chain: ${reason.source}`));
  const summary = readSummaryCsv(path.join(out, 'summary.csv'));
  for (const way of ['wasm+sockmap', 'wasm+sockmap+shm']) {
    const failed = summary.filter((s) => s.variant === way && s.status === 'failed');
    assert.ok(failed.length >= 1, `${way}: a failed row`);
    for (const f of failed) assert.match(f.note, reason);
  }
  // the gateway way ran to the end, every stage's compute time and the overhead recorded
  for (const n of [1, 4]) {
    const cell = summary.filter((s) => s.variant === 'wasm+gateway' && s.status === 'ok' && s.params.includes(`length=${n};`));
    assert.equal(cell.find((s) => s.metric === 'e2e')?.n, reps, `wasm+gateway N=${n}`);
    assert.equal(cell.filter((s) => s.metric === 'stage_compute').length, n);
    assert.equal(cell.find((s) => s.metric === 'overhead')?.n, reps);
  }
  // what was measured before the kill stays
  const raw = readRawCsv(path.join(out, 'raw.csv'));
  assert.ok(raw.some((r) => r.variant.startsWith('wasm+sockmap') && r.metric === 'e2e'));
  const status = JSON.parse(fs.readFileSync(path.join(out, 'status.json'), 'utf8'));
  assert.equal(status.state, 'incomplete');
  assert.ok([...byStage.values()].every((p) => !pidAlive(p)), 'every chain node gone');
  assert.deepEqual(leftBy(pid), []);
});

test('Ctrl-C mid-run: status 130, the folder marked incomplete, no node, cgroup, /dev/shm file or scratch folder left', { skip }, async () => {
  const out = path.join(scratch, 'interrupted');
  const run = runChains(out, ['--lengths', '1,2', '--reps', '1000000']);
  const pid = run.child.pid!;
  const byStage = await whileMeasuringSockmap(pid, out, 2);
  run.child.kill('SIGINT'); // the harness only, not its process group: the nodes must be stopped by it
  const code = await run.exit;
  // the chain's own things first: nodes, cgroup, /dev/shm file, scratch folder
  assert.ok(await waitFor(() => [...byStage.values()].every((p) => !pidAlive(p)), 3000), 'every chain node gone');
  assert.deepEqual(leftBy(pid), []);
  assert.ok(readRawCsv(path.join(out, 'raw.csv')).some((r) => r.variant.startsWith('wasm+sockmap')), 'rows measured before Ctrl-C kept');
  // then the run as a whole: it finished its folder and said it was interrupted
  assert.equal(code, 130, `${run.child.signalCode ? `the harness was ended by ${run.child.signalCode} before it finished its folder` : `status ${code}`}:\n${run.stderr()}`);
  const status = JSON.parse(fs.readFileSync(path.join(out, 'status.json'), 'utf8'));
  assert.equal(status.state, 'incomplete');
  assert.match(status.reason, /SIGINT/);
});

const OWNER = `
  const { platformCgroup } = await import(${JSON.stringify(path.join(buildDir, 'harness/bpf/cgroup.js'))});
  const { attachSockmap } = await import(${JSON.stringify(path.join(buildDir, 'harness/bpf/sockmap.js'))});
  const { startChain } = await import(${JSON.stringify(path.join(buildDir, 'harness/chains/chain.js'))});
  const cg = platformCgroup('chain-crash');
  attachSockmap(cg);
  const chain = await startChain({ nodes: 2, cgroupPath: cg.path });
  await chain.call('desc', new Uint8Array(64), 2);
  console.log('READY ' + JSON.stringify({ cg: cg.path, pids: chain.pids, shm: chain.shmPath, dir: chain.dir }));
  setInterval(() => {}, 1000);`;

/** a process that owns a 2-node chain in a cgroup with the sockmap programs; what it made */
async function owner(): Promise<{ child: ChildProcess; cg: string; pids: number[]; shm: string; dir: string }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', OWNER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`owner exited ${c}`)));
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
  });
  return { child, ...(JSON.parse(line.slice(6)) as { cg: string; pids: number[]; shm: string; dir: string }) };
}

test('the owner of a chain SIGKILLed: its nodes leave and remove the shared file and scratch folder; the next start-up cleanup removes the cgroup', { skip }, async () => {
  const o = await owner();
  assert.ok(fs.existsSync(o.shm) && fs.existsSync(o.dir) && fs.existsSync(o.cg));
  o.child.kill('SIGKILL');
  await new Promise((r) => o.child.once('exit', r));
  assert.ok(await waitFor(() => o.pids.every((p) => !pidAlive(p)), 5000), 'the nodes leave when their owner is gone');
  assert.equal(fs.existsSync(o.shm), false, 'shared file removed by the nodes');
  assert.equal(fs.existsSync(o.dir), false, 'scratch folder removed by the nodes');
  assert.ok(fs.existsSync(o.cg), 'a SIGKILL leaves the cgroup directory');
  const report = startupCleanup();
  assert.ok(report.some((l) => l.includes(o.cg) && /removed stale cgroup/.test(l) && l.includes(`pid ${o.child.pid}`)), report.join('\n'));
  assert.deepEqual(leftBy(o.child.pid!), []);
});

test('the owner and its nodes SIGKILLed together: the next start-up cleanup removes the shared file, scratch folder and cgroup, and says so', { skip }, async () => {
  const o = await owner();
  for (const p of [o.child.pid!, ...o.pids]) process.kill(p, 'SIGKILL');
  await new Promise((r) => o.child.once('exit', r));
  assert.ok(await waitFor(() => o.pids.every((p) => !pidAlive(p)), 5000));
  assert.ok(fs.existsSync(o.shm) && fs.existsSync(o.dir) && fs.existsSync(o.cg), 'everything left');
  const report = [...startupCleanup(), ...staleChainCleanup()];
  for (const p of [o.cg, o.shm, o.dir]) {
    assert.ok(report.some((l) => l.includes(p) && /removed stale/.test(l) && l.includes(`pid ${o.child.pid}`)), `${p} in:\n${report.join('\n')}`);
    assert.equal(fs.existsSync(p), false, p);
  }
  assert.deepEqual(leftBy(o.child.pid!), []);
});
