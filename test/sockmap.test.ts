// The sockmap fast path with real programs in the kernel (CI runs as root): a TCP ping-pong between
// two processes of a cgroup is redirected (run count == messages sent), the same ping-pong in a
// cgroup without the programs is not, and nothing is left attached, pinned or created afterwards —
// also after a SIGKILLed owner (the next start-up cleanup removes its cgroup and says so).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { buildDir } from '../harness/paths.js';
import { cgroupProcs, platformCgroup, spawnInCgroup, startupCleanup } from '../harness/bpf/cgroup.js';
import { PROG_SKMSG, PROG_SOCKOPS, attachSockmap, readStatsSysctl, sockmapCapability } from '../harness/bpf/sockmap.js';
import { placementCheck } from '../harness/bpf/arm.js';
import { ExecutorProcess, makeRunDir } from '../harness/platform/executor-process.js';
import { loadCatalog } from '../harness/functions/catalog.js';
import { verifyOutput } from '../harness/functions/verify.js';
import { ownCgroups, waitFor } from './helpers.js';

const cap = sockmapCapability();
const skip = cap.ok ? false : `eBPF unavailable here: ${cap.reason}`;
const hasBpftool = spawnSync('bpftool', ['version']).status === 0;

/** names of loaded programs that are ours (fxh_sockops / fxh_skmsg) */
function ourProgs(): string[] {
  if (!hasBpftool) return [];
  const r = spawnSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8' });
  const progs = JSON.parse(r.stdout || '[]') as { id: number; name?: string }[];
  return progs.filter((p) => p.name === PROG_SOCKOPS || p.name === PROG_SKMSG).map((p) => `${p.name}#${p.id}`);
}
/** our programs attached to any cgroup (bpftool cgroup tree) */
function ourCgroupAttachments(): string[] {
  if (!hasBpftool) return [];
  const r = spawnSync('bpftool', ['cgroup', 'tree'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(PROG_SOCKOPS) || /fxh-\d+-sm/.test(l));
}
const ownPins = () => (fs.existsSync('/sys/fs/bpf') ? fs.readdirSync('/sys/fs/bpf').filter((n) => n.startsWith(`fxh-${process.pid}-`)) : []);


// A 64-byte TCP ping-pong: `server` echoes, `client PORT N` sends N messages one at a time.
const PINGPONG = `
const net = require('net');
const [mode, port, n] = process.argv.slice(1);
if (mode === 'server') {
  const s = net.createServer({ noDelay: true }, (c) => { c.on('data', (d) => c.write(d)); c.on('error', () => {}); });
  s.listen(0, '127.0.0.1', () => console.log(s.address().port));
} else {
  const N = Number(n); let got = 0, i = 0, pending = 0; const buf = Buffer.alloc(64, 1);
  const c = net.connect({ host: '127.0.0.1', port: Number(port), noDelay: true }, () => { i++; c.write(buf); });
  c.on('data', (d) => { pending += d.length; while (pending >= 64) { pending -= 64; got++; if (i < N) { i++; c.write(buf); } } if (got === N) { console.log('sent ' + i); c.end(); } });
}`;

async function pingPong(cgroupPath: string, n: number): Promise<{ sent: number; mapEntriesWhileOpen?: number }> {
  const server = spawnInCgroup(cgroupPath, process.execPath, ['-e', PINGPONG, 'server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve) => readline.createInterface({ input: server.stdout! }).once('line', resolve));
    const client = spawnInCgroup(cgroupPath, process.execPath, ['-e', PINGPONG, 'client', port, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => readline.createInterface({ input: client.stdout! }).once('line', resolve));
    await new Promise((r) => client.once('exit', r));
    return { sent: Number(/^sent (\d+)$/.exec(line)?.[1]) };
  } finally {
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
  }
}

let before_: { progs: string[]; sysctl: number | null; cgroups: string[] };

before(() => {
  if (skip) return;
  before_ = { progs: ourProgs(), sysctl: readStatsSysctl(), cgroups: ownCgroups() };
  assert.deepEqual(before_.cgroups, [], 'no cgroup of this test process before');
});

after(async () => {
  if (skip) return;
  // nothing of ours left: cgroups, pins, programs (freed after their links), attachments, sysctl
  assert.deepEqual(ownCgroups(), []);
  assert.deepEqual(ownPins(), []);
  assert.ok(await waitFor(() => ourProgs().every((p) => before_.progs.includes(p))), `programs left loaded: ${ourProgs().join(', ')}`);
  assert.deepEqual(ourCgroupAttachments(), []);
  assert.equal(readStatsSysctl(), before_.sysctl, 'kernel.bpf_stats_enabled as it was');
});

test('capability: not root is reported with the reason (injected uid), eBPF variants say where they run', () => {
  const c = sockmapCapability({ getuid: () => 1000, capEff: () => 0n });
  assert.equal(c.ok, false);
  assert.match((c as { reason: string }).reason, /not root \(uid 1000\)/);
  // outside the sockmap experiment and outside an arm's cgroup, the variants refuse with the reason
  const p = placementCheck('sockmap');
  assert.equal(p.ok, false);
  assert.match((p as { reason: string }).reason, skip ? /root|bpf|libbpf|BTF|built/i : /only in the sockmap experiment/);
});

test('a TCP ping-pong between two processes of the cgroup is redirected: sk_msg run count == messages sent', { skip }, async () => {
  const cg = platformCgroup('sm-on');
  const sm = attachSockmap(cg);
  try {
    assert.match(fs.readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8'), /^[01]/);
    assert.ok(hasBpftool, 'bpftool (installed by the bootstrap) checks the attachment');
    assert.ok(ourCgroupAttachments().some((l) => l.includes(PROG_SOCKOPS)), 'sock_ops attached to the cgroup');
    const s0 = sm.stats();
    const n = 2000;
    const r = await pingPong(cg.path, n);
    assert.equal(r.sent, n);
    const s1 = sm.stats();
    const runs = s1.skMsgRunCount - s0.skMsgRunCount;
    assert.equal(runs, 2 * n, 'one sk_msg run per message, both directions');
    assert.equal(s1.redirected - s0.redirected, 2 * n, 'every message redirected to the peer');
    assert.equal(s1.bytes - s0.bytes, 2 * n * 64);
    assert.ok(s1.sockOpsRunCount > 0);
    assert.ok(s1.inserted >= 2, 'both ends of the connection went into the sockhash');
    assert.ok(await waitFor(() => sm.stats().mapEntries === 0), 'closed sockets leave the sockhash');
  } finally {
    sm.detach();
    cg.detach();
  }
  assert.equal(fs.existsSync(cg.path), false);
  sm.detach(); // idempotent
  cg.detach();
});

test('without the programs the same ping-pong does not touch sk_msg (run count stays 0)', { skip }, async () => {
  const withProgs = platformCgroup('sm-ref');
  const bare = platformCgroup('sm-off');
  const sm = attachSockmap(withProgs);
  try {
    const s0 = sm.stats();
    const r = await pingPong(bare.path, 500);
    assert.equal(r.sent, 500);
    const s1 = sm.stats();
    assert.equal(s1.skMsgRunCount - s0.skMsgRunCount, 0);
    assert.equal(s1.mapEntries, 0);
  } finally {
    sm.detach();
    withProgs.detach();
    bare.detach();
  }
});

test('an owner killed with SIGKILL leaves only a cgroup, which the next start-up cleanup removes and reports', { skip }, async () => {
  const script = `
    const { platformCgroup } = await import(${JSON.stringify(path.join(buildDir, 'harness/bpf/cgroup.js'))});
    const { attachSockmap } = await import(${JSON.stringify(path.join(buildDir, 'harness/bpf/sockmap.js'))});
    const cg = platformCgroup('sm-crash');
    attachSockmap(cg);
    console.log('READY ' + cg.path);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
  });
  const cgPath = line.slice(6);
  assert.ok(fs.existsSync(cgPath));
  // without bpftool the detach check below would pass on an empty list
  assert.ok(hasBpftool, 'bpftool (installed by the bootstrap) checks the attachment');
  assert.ok(ourCgroupAttachments().some((l) => l.includes(PROG_SOCKOPS)), 'attached while the owner lives');
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // fd-based links: the kernel detached the programs with the process; the directory remains
  assert.ok(fs.existsSync(cgPath), 'a SIGKILL leaves the cgroup directory');
  assert.ok(await waitFor(() => ourCgroupAttachments().length === 0), `still attached: ${ourCgroupAttachments().join('; ')}`);
  assert.deepEqual(cgroupProcs(cgPath), []);
  const report = startupCleanup();
  assert.ok(report.some((l) => l.includes(cgPath) && /removed stale cgroup/.test(l) && l.includes(`pid ${child.pid}`)), report.join('\n'));
  assert.equal(fs.existsSync(cgPath), false);
  assert.deepEqual(ownCgroups(child.pid), []);
});

test('platform hook: an executor reached over TCP (ExecutorSpec.transport) serves verified invocations', async () => {
  const catalog = await loadCatalog();
  const dir = makeRunDir('fxh-smtest-');
  const e = new ExecutorProcess({ variant: 'wasm', memoryLimitMiB: 32, runDir: dir, transport: 'tcp' });
  try {
    const fn = catalog.get('sha256');
    const input = fn.workload.input(3, 'small');
    const r = await e.invoke({ variant: 'wasm', fn: 'sha256', mode: 'warm', input, timeoutMs: 5000 });
    assert.equal(r.status, 'ok', Buffer.from(r.output).toString());
    verifyOutput(fn, input, r.output);
    assert.deepEqual(fs.readdirSync(dir).flatMap((d) => fs.readdirSync(path.join(dir, d))).filter((f) => f.endsWith('.sock')), [], 'no unix socket file: TCP');
  } finally {
    await e.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

