// Tests of the cold-start tracer (bpf/coldtrace.bpf.c + harness/bpf/coldtrace.ts) with the real
// programs loaded into the kernel (needs root; skipped with the reason otherwise), the breakdown
// analysis and figures (no root needed). Every kernel test is bracketed by a check that no program
// of the tracer (by name), no link to one, and no pin /sys/fs/bpf/fxh* is left that was not there
// before, and that this process holds none of them afterwards.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ColdTracer, breakdown, coldTraceCapability, syscallTable, type CollectResult, type TraceEvent } from '../harness/bpf/coldtrace.js';
import { attachedResources } from '../harness/bpf/libbpf.js';
import { findRepoRoot, loadCatalog } from '../harness/functions/catalog.js';
import containerPlugin, { type ContainerVariant } from '../harness/variants/container.js';
import wasmPlugin from '../harness/variants/wasm.js';
import { tracedRows } from '../harness/experiments/cold-breakdown.js';
import { breakdownCells, breakdownFigures, breakdownTableText, overheadLines } from '../harness/figures/breakdown.js';
import { figureToSvg } from '../harness/figures/render.js';
import type { RawRow } from '../harness/results/schema.js';

const REPO = findRepoRoot();
const PROGRAMS = new Set(['fxh_sys_enter', 'fxh_sys_exit', 'fxh_fork', 'fxh_exec', 'fxh_exit', 'fxh_pgfault', 'fxh_mount', 'fxh_move_mount', 'fxh_pivot_root', 'fxh_unshare']);
const cap = coldTraceCapability();
const skipKernel = cap.ok ? false : `eBPF tracing unavailable here: ${cap.reason}`;

interface BpfProg {
  id: number;
  name?: string;
  map_ids?: number[];
}

function bpftool<T>(...args: string[]): T[] {
  const out = execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' }).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

/** the tracer's programs in the kernel (by name), with their links and maps, and fxh pins */
function kernelState(): { progs: BpfProg[]; links: { id: number; prog_id: number }[]; maps: number[]; pins: string[] } {
  const progs = bpftool<BpfProg>('prog', 'show').filter((p) => p.name && PROGRAMS.has(p.name));
  const ids = new Set(progs.map((p) => p.id));
  const links = bpftool<{ id: number; prog_id: number }>('link', 'show').filter((l) => ids.has(l.prog_id));
  const maps = bpftool<{ id: number }>('map', 'show').map((m) => m.id);
  const pins = fs.existsSync('/sys/fs/bpf') ? fs.readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('fxh')) : [];
  return { progs, links, maps, pins };
}

/** What a tracer in process `pid` made: the tracer programs it holds, their links and the maps they use.
 *  (By what the process holds, not by name: others may trace on this machine meanwhile.) */
interface Made {
  progs: number[];
  links: number[];
  maps: number[];
}
function madeBy(pid: number): Made {
  const st = kernelState();
  const held = heldBy(pid);
  const progs = st.progs.filter((p) => held.has(p.id));
  const ids = new Set(progs.map((p) => p.id));
  return {
    progs: [...ids].sort((x, y) => x - y),
    links: st.links.filter((l) => ids.has(l.prog_id)).map((l) => l.id).sort((x, y) => x - y),
    maps: [...new Set(progs.flatMap((p) => p.map_ids ?? []))].sort((x, y) => x - y),
  };
}

/** which of `made` are still in the kernel, after waiting (the kernel frees programs, maps and links after
 *  an RCU grace period) at most `ms` for them to go */
async function leftOf(made: Made, ms = 3000): Promise<Made> {
  const until = Date.now() + ms;
  for (;;) {
    const st = kernelState();
    const left = {
      progs: made.progs.filter((id) => st.progs.some((p) => p.id === id)),
      links: made.links.filter((id) => st.links.some((l) => l.id === id)),
      maps: made.maps.filter((id) => st.maps.includes(id)),
    };
    if (!left.progs.length && !left.links.length && !left.maps.length) return left;
    if (Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}
const NONE: Made = { progs: [], links: [], maps: [] };

/** ids of the bpf programs a process holds an fd of (a program fd, or a link to it), from /proc/<pid>/fdinfo
 *  (this bpftool build cannot list the pids holding a program) */
function heldBy(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) out.add(Number(m[1]));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

function run(cmd: string, args: string[], input?: Uint8Array): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
    c.stdout!.resume();
    c.on('error', reject);
    c.on('close', (code) => resolve(code ?? -1));
    if (input) c.stdin!.end(input);
  });
}

async function traced(t: ColdTracer, f: () => Promise<unknown>): Promise<CollectResult> {
  const s = t.session();
  s.mark('arrival');
  try {
    await f();
    s.mark('output');
  } finally {
    s.end();
  }
  return s.collect();
}

// ------------------------------------------------------------------------------------- no root needed

test('capability: not root and no CAP_BPF is refused with the reason (injected uid)', () => {
  const c = coldTraceCapability({ getuid: () => 1000, capEff: () => 0n });
  assert.equal(c.ok, false);
  assert.match((c as { reason: string }).reason, /not root \(uid 1000\)/);
});

test('capability: a missing object file is named', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const c = coldTraceCapability({ objectPath: '/nonexistent/coldtrace.bpf.o' });
  if (c.ok) assert.fail('should not be ok');
  assert.match(c.reason, /not built|nonexistent/);
});

test('syscall names come from unistd_64.h', { skip: !fs.existsSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h') && 'no unistd_64.h' }, () => {
  const { names } = syscallTable();
  const text = fs.readFileSync('/usr/include/x86_64-linux-gnu/asm/unistd_64.h', 'utf8');
  const nr = Number(/#define __NR_getpid (\d+)/.exec(text)![1]);
  assert.equal(names.get(nr), 'getpid');
  assert.ok(names.size > 300);
  assert.equal(names.get(0), 'read');
});

const ev = (kind: TraceEvent['kind'], t: number, pid: number, extra: Partial<TraceEvent> = {}): TraceEvent => ({
  kind, tNs: BigInt(t), scope: 'tree', pid, ppid: 0, tid: pid, arg: 0n, comm: 'x', file: '', ...extra,
});

test('breakdown: a container-like timeline splits into the runtime phases and adds up', () => {
  const phases = [
    { name: 'arrival', tNs: 1000n, source: 'user' as const },
    { name: 'output', tNs: 30000n, source: 'user' as const },
  ];
  const events = [
    ev('fork', 1500, 10, { arg: 0n }),
    ev('exec', 2000, 10, { file: '/usr/sbin/runc' }),
    ev('fork', 5000, 11, { arg: 1n }),
    ev('exec', 6000, 11, { file: '/proc/self/exe' }),
    ev('exec', 7000, 11, { file: '/dev/fd/6' }),
    ev('unshare', 12000, 12),
    ev('mount', 14000, 13),
    ev('pivot_root', 15000, 13),
    ev('exec', 20000, 13, { file: '/fx' }),
    ev('exit', 22000, 13),
    ev('exit', 25000, 10),
  ];
  const b = breakdown({ phases, events });
  assert.deepEqual(b.phases.map((p) => p.name), ['spawn', 'exec runtime', 'runtime start', 'runtime init exec', 'runtime setup', 'namespaces+mounts', 'exec function', 'function run', 'runtime exit', 'return']);
  assert.equal(b.phases.reduce((a, p) => a + p.ns, 0), 29000);
  assert.equal(b.firstInstructionNs, 19000);
  assert.equal(b.totalNs, 29000);
});

test('breakdown: native (one exec) and in-process (user marks) timelines', () => {
  const u = (name: string, t: number) => ({ name, tNs: BigInt(t), source: 'user' as const });
  const n = breakdown({ phases: [u('arrival', 0), u('output', 100)], events: [ev('fork', 10, 5), ev('exec', 30, 5, { file: '/x/noop' }), ev('exit', 60, 5)] });
  assert.deepEqual(n.phases.map((p) => [p.name, p.ns]), [['spawn', 10], ['exec function', 20], ['function run', 30], ['return', 40]]);
  const w = breakdown({ phases: [u('arrival', 0), u('compile_start', 5), u('compile_done', 50), u('instantiate_start', 51), u('instantiate_done', 70), u('run_done', 90), u('output', 95)], events: [] });
  assert.deepEqual(w.phases.map((p) => p.name), ['prepare', 'compile', 'prepare instance', 'instantiate', 'function run', 'return']);
  assert.equal(w.firstInstructionNs, 70);
});

test('analysis: rows -> cells, overhead, table text and figures (with a skipped variant)', () => {
  const rows: RawRow[] = [];
  const fake = (variant: string, scope: 'tree' | 'self', base: number): CollectResult => {
    const counts = { syscallsTotal: 100, syscalls: { read: 10, getpid: 3 }, pageFaults: 50, processes: scope === 'tree' ? 2 : 0, threads: 1, execs: scope === 'tree' ? 1 : 0, mounts: 0, bytesRead: 4096, exits: 0 };
    const zero = { ...counts, syscallsTotal: 0, syscalls: {}, processes: 0, execs: 0 };
    return {
      scope, ...counts, byScope: scope === 'tree' ? { tree: counts, self: zero } : { self: counts, tree: zero },
      phases: [{ name: 'arrival', tNs: 0n, source: 'user' }, { name: 'output', tNs: BigInt(base), source: 'user' }],
      events: scope === 'tree' ? [ev('fork', base / 10, 7), ev('exec', base / 2, 7, { file: '/fx' }), ev('exit', base * 0.9, 7)] : [],
      notes: [],
    } as CollectResult;
  };
  for (let i = 0; i < 8; i++) {
    for (const [v, sc, base] of [['native', 'tree', 3e6], ['wasm', 'self', 2e5]] as const) {
      const id = { variant: { name: v }, fn: { name: 'noop' }, mode: 'cold' };
      rows.push(...tracedRows(id, 'scale=small', i, fake(v, sc, base + i * 1000)).map((r) => ({ experiment: 'cold-breakdown', ...r })));
      rows.push({ experiment: 'cold-breakdown', variant: v, function: 'noop', mode: 'cold', path: 'direct', metric: 'cold_start_untraced', params: 'scale=small', iteration: i, value: (base * 0.9 + i * 1000) / 1000, unit: 'us' });
    }
  }
  const cells = breakdownCells(rows);
  assert.equal(cells.length, 2);
  const nat = cells.find((c) => c.variant === 'native')!;
  assert.equal(nat.scope, 'tree');
  assert.equal(nat.counts.processes, 2);
  assert.equal(nat.counts.execs, 1);
  assert.ok(nat.overhead && nat.overhead.diffUs > 0);
  assert.ok(Math.abs(nat.phases.reduce((a, p) => a + p.meanUs, 0) - nat.meanTracedUs) < 1e-6);
  assert.equal(cells.find((c) => c.variant === 'wasm')!.scope, 'self');
  assert.match(breakdownTableText(cells), /native \/ noop \/ cold/);
  assert.equal(overheadLines(cells).length, 2);
  const summary = [{ experiment: 'cold-breakdown', variant: 'container', function: '*', mode: '*', path: '', metric: '', params: '', unit: '', status: 'skipped' as const, n: 0, mean: NaN, sd: NaN, min: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, ci95_mean_lo: NaN, ci95_mean_hi: NaN, ci95_median_lo: NaN, ci95_median_hi: NaN, cv: NaN, noisy: false, runs: 0, run_medians_sd: NaN, ci95_median_iid_lo: NaN, ci95_median_iid_hi: NaN, note: 'runc missing' }];
  const figs = breakdownFigures(cells, summary);
  assert.deepEqual(figs.map((f) => f.name), ['cold-breakdown-native', 'cold-breakdown-wasm', 'cold-breakdown-share', 'cold-breakdown-counts', 'cold-breakdown-syscalls']);
  for (const f of figs) assert.match(figureToSvg(f), /<svg/);
  assert.ok(figs[2]!.notes!.some((n) => /container/.test(n) && /runc missing/.test(n)));
});

// ------------------------------------------------------------------------------------- real programs

describe('coldtrace in the kernel', { skip: skipKernel }, () => {
  let tracer: ColdTracer;
  let pinsBefore: string[];
  /** what the tracer made, taken right after attach() */
  let made: Made;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fxh-coldtrace-test-'));

  before(() => {
    pinsBefore = kernelState().pins;
    assert.deepEqual(madeBy(process.pid), NONE, 'this process holds tracer programs before the tracer is opened');
    tracer = ColdTracer.open();
    tracer.attach();
    made = madeBy(process.pid);
  });
  after(async () => {
    tracer?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepEqual(madeBy(process.pid), NONE, 'this process still holds tracer programs');
    assert.deepEqual(await leftOf(made), NONE, 'programs, links or maps of the tracer left in the kernel');
    assert.deepEqual(kernelState().pins.filter((p) => !pinsBefore.includes(p)), [], 'pins left');
  });
  let resBefore: string[];
  beforeEach(() => {
    resBefore = attachedResources();
  });
  afterEach(() => {
    // sessions own nothing in the kernel: the registry is unchanged by a test
    assert.deepEqual(attachedResources(), resBefore);
  });

  test('attached: every loaded program has exactly one link, uses the tracer\'s maps, and is named fxh_', () => {
    const names = tracer.attachedPrograms();
    for (const p of names) assert.ok(PROGRAMS.has(p), `${p} is one of the tracer's programs`);
    // the five mandatory ones at the least; the optional ones only where their tracepoint exists
    for (const p of ['fxh_sys_enter', 'fxh_sys_exit', 'fxh_fork', 'fxh_exec', 'fxh_exit']) assert.ok(names.includes(p), `${p} attached`);
    assert.equal(made.progs.length, names.length, 'one kernel program per attached program');
    const st = kernelState();
    assert.deepEqual(st.progs.filter((p) => made.progs.includes(p.id)).map((p) => p.name).sort(), [...names].sort());
    assert.deepEqual(st.links.filter((l) => made.links.includes(l.id)).map((l) => l.prog_id).sort((x, y) => x - y), made.progs, 'one link per program');
    const mapNames = bpftool<{ id: number; name: string }>('map', 'show').filter((m) => made.maps.includes(m.id)).map((m) => m.name);
    for (const m of ['fxh_ct_traced', 'fxh_ct_counts', 'fxh_ct_sys', 'fxh_ct_flags', 'fxh_ct_events']) assert.ok(mapNames.includes(m), `${m} in ${mapNames}`);
  });

  test('a static /bin/true-like child: exactly 1 exec, 1 process, its phases on our clock', async () => {
    const bin = fs.existsSync('/bin/busybox') ? '/bin/busybox' : path.join(REPO, 'wasm-fixtures/build/native/noop');
    const r = await traced(tracer, () => run(bin, bin.endsWith('busybox') ? ['true'] : []));
    assert.equal(r.scope, 'tree');
    assert.equal(r.execs, 1);
    assert.equal(r.processes, 1, 'one fork: the spawn');
    assert.equal(r.byScope.tree.exits, 1);
    assert.ok(r.syscallsTotal > 0);
    // a counter may be null only where its tracepoint is missing, and the tracer says so
    if (r.pageFaults === null) assert.ok(tracer.notes.some((n) => n.includes('fxh_pgfault')), `page faults not counted, and no note says why: ${tracer.notes}`);
    else assert.ok(r.pageFaults > 0);
    const arrival = r.phases.find((p) => p.name === 'arrival')!.tNs;
    const output = r.phases.find((p) => p.name === 'output')!.tNs;
    const exec = r.events.find((e) => e.kind === 'exec')!;
    assert.ok(exec.tNs > arrival && exec.tNs < output, 'kernel and user timestamps share one clock');
    assert.equal(path.basename(exec.file), path.basename(bin));
    const b = breakdown(r);
    assert.ok(b.firstInstructionNs! > 0 && b.firstInstructionNs! < b.totalNs!);
  });

  test('N getpid calls in a child are counted as getpid (names mapped)', async () => {
    const N = 2000;
    const r = await traced(tracer, () => run('/usr/bin/python3', ['-S', '-c', `import os\nfor _ in range(${N}): os.getpid()`]));
    assert.ok((r.syscalls.getpid ?? 0) >= N, `getpid counted ${r.syscalls.getpid}`);
    assert.ok((r.syscalls.getpid ?? 0) < N + 50);
    assert.ok(r.syscallsTotal >= N);
  });

  test('the kernel accounts the programs\' own run time: N traced syscalls are at least N runs and take time', async () => {
    const N = 2000;
    const p0 = tracer.programTime();
    assert.ok(p0, 'run-time statistics are on while the tracer is open');
    await traced(tracer, () => run('/usr/bin/python3', ['-S', '-c', `import os\nfor _ in range(${N}): os.getpid()`]));
    const p1 = tracer.programTime()!;
    // enter and exit of each getpid, at the least
    assert.ok(p1.runs - p0.runs >= 2 * N, `runs ${p1.runs - p0.runs}`);
    assert.ok(p1.ns > p0.ns, 'and some kernel time');
  });

  test('bytes read from a file of known size are counted', async () => {
    const K = 300_000;
    const f = path.join(tmp, 'data.bin');
    fs.writeFileSync(f, Buffer.alloc(K, 7));
    const base = await traced(tracer, () => run('/bin/dd', [`if=${f}`, 'of=/dev/null', 'bs=65536', 'count=0', 'status=none']));
    const r = await traced(tracer, () => run('/bin/dd', [`if=${f}`, 'of=/dev/null', 'bs=65536', 'status=none']));
    const extra = r.bytesRead - base.bytesRead;
    assert.ok(extra >= K && extra < K + 16384, `bytes read ${r.bytesRead} (baseline ${base.bytesRead}), want ${K} more`);
  });

  test('the measuring process is scope "self": a WASM cold start is traced in-process with its phases', async () => {
    const catalog = await loadCatalog();
    const fn = catalog.get('noop');
    const v = wasmPlugin.create({ workDir: tmp, memoryLimitMiB: 64 });
    const input = fn.workload.input(1, 'small');
    await v.invoke(fn, 'cold', input, { timeoutMs: 5000 });
    const s = tracer.session();
    s.mark('arrival');
    await v.invoke(fn, 'cold-compile', input, { timeoutMs: 5000, onPhase: (n) => s.mark(n) });
    s.mark('output');
    const r = s.collect();
    assert.equal(r.scope, 'self');
    assert.equal(r.processes, 0);
    assert.deepEqual(r.phases.map((p) => p.name), ['arrival', 'compile_start', 'compile_done', 'instantiate_start', 'instantiate_done', 'run_done', 'output']);
    assert.ok(breakdown(r).firstInstructionNs! > 0);
    assert.equal(r.syscalls.bpf ?? 0, 0, 'the tracer\'s own bpf() calls are not counted');
    await v.teardown();
  });

  test('a runc container cold start: mounts, several processes, the runtime phases', async (t) => {
    const catalog = await loadCatalog();
    const fn = catalog.get('noop');
    const v = containerPlugin.create({ workDir: tmp, memoryLimitMiB: 64 }) as ContainerVariant;
    const c = await v.check();
    if (!c.ok) {
      t.skip(`container variant unavailable: ${c.reason}`);
      return;
    }
    const input = fn.workload.input(1, 'small');
    try {
      await v.invoke(fn, 'cold', input, { timeoutMs: 20000 }); // bundle built, caches warm
      const r = await traced(tracer, () => v.invoke(fn, 'cold', input, { timeoutMs: 20000 }));
      assert.equal(r.scope, 'tree');
      if (r.mounts === null) assert.ok(tracer.notes.some((n) => n.includes('fxh_mount')), `mounts not counted, and no note says why: ${tracer.notes}`);
      else assert.ok(r.mounts >= 1, `mounts ${r.mounts}`);
      assert.ok(r.processes >= 3, `processes ${r.processes}`);
      assert.ok(r.execs >= 2, `execs ${r.execs}`);
      assert.ok(r.threads >= 1, 'runc (Go) starts threads');
      const b = breakdown(r);
      const names = b.phases.map((p) => p.name);
      for (const want of ['spawn', 'exec runtime', 'exec function', 'function run', 'return']) assert.ok(names.includes(want), `${want} in ${names}`);
      if (r.mounts !== null) assert.ok(names.includes('namespaces+mounts'));
      assert.equal(path.basename(r.events.filter((e) => e.kind === 'exec').pop()!.file), 'fx');
    } finally {
      await v.teardown();
    }
  });

  test('detach() and attach() are symmetric: no link left after detach, the same programs again after attach', async () => {
    const now = madeBy(process.pid);
    assert.equal(now.links.length, now.progs.length);
    tracer.detach();
    assert.equal(tracer.attached, false);
    assert.deepEqual(tracer.attachedPrograms(), []);
    // every link gone, every program and map still loaded (held by the object)
    assert.deepEqual(await leftOf({ ...NONE, links: now.links }), NONE, 'links left after detach');
    assert.deepEqual(madeBy(process.pid), { ...now, links: [] });
    tracer.attach();
    const again = madeBy(process.pid);
    assert.deepEqual({ ...again, links: [] }, { ...now, links: [] }, 'the same programs and maps');
    assert.equal(again.links.length, again.progs.length, 'one link per program again');
    assert.deepEqual(again.links.filter((id) => now.links.includes(id)), [], 'new links');
    made = { ...made, links: [...made.links, ...again.links] };
  });
});

describe('a crash or Ctrl-C mid-session leaves nothing behind', { skip: skipKernel }, () => {
  const child = `
    import { ColdTracer } from ${JSON.stringify(path.join(REPO, 'build/harness/bpf/coldtrace.js'))};
    const t = ColdTracer.open();
    t.attach();
    t.session();
    process.stdout.write('ready ' + JSON.stringify(t.attachedPrograms()) + '\\n');
    setInterval(() => {}, 1000);
  `;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    test(`${sig}`, async () => {
      const pinsBefore = kernelState().pins;
      const c = spawn(process.execPath, ['--input-type=module', '-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
      const names = await new Promise<string[]>((resolve, reject) => {
        let out = '';
        c.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /^ready (.*)\n/m.exec(out);
          if (m) resolve(JSON.parse(m[1]!) as string[]);
        });
        c.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      const theirs = madeBy(c.pid!);
      assert.ok(names.length >= 5, `child attached ${names}`);
      assert.equal(theirs.progs.length, names.length, 'the child holds every program it attached');
      assert.equal(theirs.links.length, names.length, 'one link per program');
      assert.ok(theirs.maps.length >= 5, `maps ${theirs.maps}`);
      c.kill(sig);
      await new Promise((r) => c.once('exit', r));
      assert.deepEqual(await leftOf(theirs), NONE, `programs, links or maps of the ${sig}ed child left`);
      assert.deepEqual(kernelState().pins.filter((p) => !pinsBefore.includes(p)), []);
    });
  }
});
