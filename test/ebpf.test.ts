// Tests of the eBPF core (harness/bpf/libbpf.ts) and the `ebpf` variant, with real programs loaded
// into the kernel (needs root; CI runs as root). Every test is bracketed by a check that the
// programs of ours (by name), their links, pins /sys/fs/bpf/fxh-* and fxh cgroups are exactly
// as before it.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import koffi from 'koffi';
import {
  BPF_ATTACH,
  BpfObject,
  CGROUP2_ROOT,
  LibbpfError,
  RingBuffer,
  VerifierError,
  attachedResources,
  bpfCapability,
  cleanupStale,
  createCgroup,
  detachAll,
  ensureTracefs,
  pinFd,
  pinPath,
  progAttach,
  progTestRun,
  XDP,
  type LinkHandle,
} from '../harness/bpf/libbpf.js';
import { findRepoRoot, loadCatalog, type Catalog } from '../harness/functions/catalog.js';
import type { FunctionEntry, Scale } from '../harness/functions/types.js';
import { FRAME_KINDS, buildFrame, CLASS_NAMES } from '../harness/functions/workloads/classify.js';
import { Prng } from '../harness/functions/workloads/prng.js';
import ebpfPlugin, { EBPF_MAX_INPUT, EBPF_PROGRAMS, NOT_EXPRESSIBLE, type EbpfVariant } from '../harness/variants/ebpf.js';
import nativePlugin from '../harness/variants/native.js';
import wasmPlugin from '../harness/variants/wasm.js';
import { InvokeError, type Variant } from '../harness/platform/variant.js';
import { correct, waitFor } from './helpers.js';

const REPO = findRepoRoot();
const BPF_BUILD = path.join(REPO, 'bpf', 'build');
const FUNCTIONS_O = path.join(BPF_BUILD, 'functions.bpf.o');
const SELFTEST_O = path.join(BPF_BUILD, 'selftest.bpf.o');
const BAD_O = path.join(BPF_BUILD, 'bad.bpf.o');
const LIBBPF_JS = path.join(REPO, 'build', 'harness', 'bpf', 'libbpf.js');
/** the programs of ours these tests load (other families have their own tests) */
const OUR_PROGRAMS = new Set(['fxh_noop', 'fxh_fnv1a', 'fxh_classify', 'fxh_histogram', 'fxh_bad', 'fxh_st_getpgid', 'fxh_st_egress']);
const FUNCTIONS = ['noop', 'fnv1a', 'classify', 'histogram'];
const SEEDS = [1, 2, 3, 7, 42, 1234];
const SCALES: Scale[] = ['small', 'large'];
const OPTS = { timeoutMs: 10_000 };

const capability = bpfCapability();
const skip = capability.ok ? false : `eBPF unavailable: ${capability.reason}`;

// ----------------------------------------------------------------------------- kernel state

interface KernelState {
  progs: number[];
  links: number[];
  pins: string[];
  cgroups: string[];
}

function bpftoolJson<T>(...args: string[]): T[] {
  // bpftool fails when an object vanishes while it lists: retry
  for (let attempt = 0; ; attempt++) {
    try {
      const out = execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
      return out ? (JSON.parse(out) as T[]) : [];
    } catch (e) {
      if (attempt >= 4) throw e;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** fxh-<pid>-* names of this process or of dead ones (a crashed child's leftovers); live other
 *  processes (another run on the machine) own theirs. */
function oursOrStale(name: string): boolean {
  const m = /^fxh-(\d+)-/.exec(name);
  if (!m) return name.startsWith('fxh');
  const pid = Number(m[1]);
  return pid === process.pid || !alive(pid);
}

function kernelState(): KernelState {
  const progs = bpftoolJson<{ id: number; name?: string }>('prog', 'show').filter((p) => p.name && OUR_PROGRAMS.has(p.name)).map((p) => p.id);
  const ids = new Set(progs);
  const links = bpftoolJson<{ id: number; prog_id: number }>('link', 'show').filter((l) => ids.has(l.prog_id)).map((l) => l.id);
  const pins = fs.readdirSync('/sys/fs/bpf').filter((n) => n.startsWith('fxh-') && oursOrStale(n)).sort();
  const cgroups = fs.readdirSync(CGROUP2_ROOT).filter((n) => n.startsWith('fxh') && oursOrStale(n)).sort();
  return { progs: progs.sort((a, b) => a - b), links: links.sort((a, b) => a - b), pins, cgroups };
}

/** The kernel frees programs after an RCU grace period: wait (up to 5 s) for the state to settle. */
async function settledState(want: KernelState): Promise<KernelState> {
  let s = kernelState();
  for (let i = 0; i < 100 && JSON.stringify(s) !== JSON.stringify(want); i++) {
    await new Promise((r) => setTimeout(r, 50));
    s = kernelState();
  }
  return s;
}

function progIds(name: string): number[] {
  return bpftoolJson<{ id: number; name?: string }>('prog', 'show').filter((p) => p.name === name).map((p) => p.id);
}

// ----------------------------------------------------------------------------- setup

let catalog: Catalog;
let ebpf: EbpfVariant;
let wasm: Variant;
let native: Variant;
let stateBefore: KernelState;

before(async () => {
  if (skip) return;
  const b = spawnSync(process.execPath, [path.join(REPO, 'bpf', 'build.mjs')], { encoding: 'utf8' });
  assert.equal(b.status, 0, `bpf/build.mjs failed: ${b.stderr}`);
  catalog = await loadCatalog(REPO);
  const opts = { workDir: os.tmpdir(), memoryLimitMiB: 256 };
  ebpf = ebpfPlugin.create(opts) as EbpfVariant;
  wasm = wasmPlugin.create(opts);
  native = nativePlugin.create(opts);
});

after(async () => {
  await Promise.all([ebpf?.teardown(), wasm?.teardown(), native?.teardown()]);
});

beforeEach(() => {
  if (!skip) stateBefore = kernelState();
});

afterEach(async () => {
  if (skip) return;
  await ebpf.teardown(); // warm programs of one test do not outlive it
  // What a test left is noted, then released before asserting, so one failing test fails alone
  // instead of leaving its programs and pins to fail every test after it.
  const left = attachedResources();
  detachAll();
  const now = await settledState(stateBefore);
  assert.deepEqual(left, [], 'the registry is empty after every test');
  assert.deepEqual(now, stateBefore, 'programs/links/pins/cgroups of ours before and after the test');
});

// ----------------------------------------------------------------------------- functions

async function outputs(fn: FunctionEntry, input: Uint8Array): Promise<Record<string, string>> {
  const text = (u: Uint8Array) => Buffer.from(u).toString('latin1');
  return {
    'ebpf/cold': text((await ebpf.invoke(fn, 'cold', input)).output),
    'ebpf/warm': text((await ebpf.invoke(fn, 'warm', input)).output),
    'wasm/warm': text((await wasm.invoke(fn, 'warm', input, OPTS)).output),
    'native/cold': text((await native.invoke(fn, 'cold', input, OPTS)).output),
    'native/warm': text((await native.invoke(fn, 'warm', input, OPTS)).output),
  };
}

describe('eBPF functions = oracle = wasm = native', { skip }, () => {
  for (const name of FUNCTIONS) {
    test(`${name}: ${SEEDS.length} seeds x ${SCALES.length} scales, cold and warm`, async () => {
      const fn = catalog.get(name);
      assert.equal(ebpf.supports(fn, 'cold'), null);
      assert.equal(ebpf.supports(fn, 'warm'), null);
      for (const seed of SEEDS) {
        for (const scale of SCALES) {
          const input = fn.workload.input(seed, scale);
          const want = Buffer.from(fn.workload.expected(input)).toString('latin1');
          const got = await outputs(fn, input);
          for (const [where, out] of Object.entries(got)) assert.equal(out, want, `${name} seed ${seed} ${scale}: ${where}`);
        }
      }
    });
  }

  test('edge inputs: empty, one byte, exactly the limit', async () => {
    const rng = new Prng(9);
    for (const name of ['fnv1a', 'histogram', 'classify']) {
      const fn = catalog.get(name);
      for (const input of [new Uint8Array(0), Uint8Array.of(0xff), rng.bytes(EBPF_MAX_INPUT)]) {
        const want = Buffer.from(fn.workload.expected(input)).toString('latin1');
        for (const [where, out] of Object.entries(await outputs(fn, input))) assert.equal(out, want, `${name} ${input.length} B: ${where}`);
      }
    }
  });

  test('classify: every kind of frame (VLAN, IPv4 options) gets its class, identical everywhere', async () => {
    const fn = catalog.get('classify');
    const expectClass: Record<string, string> = { gre: 'other-l4', ipv6: 'non-ipv4', arp: 'non-ipv4' };
    const rng = new Prng(5);
    for (const kind of FRAME_KINDS) {
      for (const vlan of [false, true]) {
        for (const ihl of [5, 6, 15]) {
          const input = buildFrame({ kind, payload: 32, vlan, ihl }, rng);
          const want = Buffer.from(fn.workload.expected(input)).toString('latin1');
          const cls = expectClass[kind] ?? kind;
          if (kind !== 'bad-ipv4') assert.match(want, new RegExp(`^class=\\d+ ${cls} `), `${kind} vlan=${vlan} ihl=${ihl}: ${want}`);
          for (const [where, out] of Object.entries(await outputs(fn, input))) assert.equal(out, want, `${kind} vlan=${vlan} ihl=${ihl}: ${where}`);
        }
      }
    }
    assert.equal(CLASS_NAMES.length, 14);
  });

  test(`input limit: ${EBPF_MAX_INPUT} bytes; one more is a clear bad-request error`, async () => {
    const fn = catalog.get('fnv1a');
    await ebpf.invoke(fn, 'warm', new Uint8Array(EBPF_MAX_INPUT));
    for (const mode of ['cold', 'warm'] as const) {
      await assert.rejects(ebpf.invoke(fn, mode, new Uint8Array(EBPF_MAX_INPUT + 1)), (e: InvokeError) => {
        assert.equal(e.kind, 'bad-request');
        assert.match(e.message, new RegExp(`input of ${EBPF_MAX_INPUT + 1} bytes exceeds the eBPF limit of ${EBPF_MAX_INPUT} bytes`));
        return true;
      });
    }
  });

  test('supports(): a specific reason for every function without an eBPF version; no cold-compile', async () => {
    for (const fn of catalog.all()) {
      const why = ebpf.supports(fn, 'warm');
      if (EBPF_PROGRAMS[fn.name]) {
        assert.equal(why, null, fn.name);
        assert.match(ebpf.supports(fn, 'cold-compile') ?? '', /no mode cold-compile/);
      } else {
        assert.ok(why && why.length > 40, `${fn.name}: ${why}`);
        if (fn.origin !== 'user') assert.ok(NOT_EXPRESSIBLE[fn.name], `${fn.name} is in NOT_EXPRESSIBLE`);
        await assert.rejects(ebpf.invoke(fn, 'warm', new Uint8Array(0)), (e: InvokeError) => e.kind === 'unavailable');
      }
    }
    for (const name of ['json', 'sha256', 'matmul', 'compress', 'pagerank']) assert.match(NOT_EXPRESSIBLE[name]!, /verifier/);
    assert.match(NOT_EXPRESSIBLE.json!, /recursi/);
    assert.match(NOT_EXPRESSIBLE.sha256!, /MiB/);
    assert.equal(ebpf.enforcesTimeouts, true);
    assert.deepEqual(await ebpf.check(), { ok: true });
  });

  test('warm invocations report wall and kernel time; idle instances report memlock, growing with N', async () => {
    const fn = catalog.get('fnv1a');
    const input = fn.workload.input(1, 'small');
    const r = await ebpf.invoke(fn, 'warm', input);
    assert.ok(r.elapsedNs > 0 && r.kernelNs > 0 && r.kernelNs < r.elapsedNs, JSON.stringify({ e: r.elapsedNs, k: r.kernelNs }));
    const placement = { wrap: () => assert.fail('eBPF instances start no process') };
    const idle = await ebpf.startIdle(fn, { placement, timeoutMs: 5000 });
    try {
      correct(fn, input, await idle.add(input));
      const one = idle.kernelMemory!();
      correct(fn, input, await idle.add(input));
      const two = idle.kernelMemory!();
      assert.ok(one.bytes >= 4096, `memlock ${one.bytes}`);
      assert.equal(two.bytes, 2 * one.bytes);
      assert.match(two.method, /memlock/);
    } finally {
      await idle.close();
    }
  });
});

// ----------------------------------------------------------------------------- libbpf core

describe('libbpf FFI', { skip }, () => {
  test('a program the verifier rejects throws VerifierError carrying the verifier log', () => {
    const obj = BpfObject.open(BAD_O);
    try {
      assert.throws(
        () => obj.load(),
        (e: unknown) => {
          assert.ok(e instanceof VerifierError, String(e));
          assert.equal(e.program, 'fxh_bad');
          assert.equal(e.errno, os.constants.errno.EACCES);
          assert.match(e.message, /the verifier rejected program 'fxh_bad'/);
          assert.match(e.message, /invalid access to packet/);
          assert.match(e.message, /processed \d+ insns/);
          assert.match(e.message, /BPF program load failed/); // from libbpf's print callback
          assert.match(e.log, /R1 offset is outside of the packet/);
          return true;
        },
      );
      assert.deepEqual(progIds('fxh_bad'), []);
    } finally {
      obj.close();
    }
    obj.close(); // idempotent
  });

  test('open/load/program/map errors name what exists', () => {
    assert.throws(() => BpfObject.open('/nonexistent/x.bpf.o'), /no such object file.*bpf\/build\.mjs/);
    const obj = BpfObject.open(FUNCTIONS_O, { only: ['fxh_fnv1a'] });
    try {
      assert.throws(() => obj.program('nope'), /programs: .*fxh_fnv1a/);
      assert.throws(() => obj.map('fxh_hist'), /load .* first/);
      obj.load();
      assert.throws(() => obj.map('nope'), /maps: .*fxh_hist/);
      assert.equal(obj.program('fxh_noop').fd < 0, true, 'autoload off for the others');
      assert.ok(obj.program('fxh_fnv1a').fd > 0);
    } finally {
      obj.close();
    }
    assert.throws(() => obj.program('fxh_fnv1a'), /closed/);
  });

  test('progTestRun: retval, dataOut, kernel duration, repeat; map lookup/update/delete/keys', () => {
    const obj = BpfObject.open(FUNCTIONS_O, { only: ['fxh_histogram'] }).load();
    try {
      const prog = obj.program('fxh_histogram');
      const pkt = Buffer.alloc(32 + 5);
      pkt.writeUInt32LE(5, 0);
      pkt.write('aabbb', 32, 'latin1');
      const r = progTestRun(prog.fd, { dataIn: pkt, repeat: 10 });
      assert.equal(r.retval, XDP.PASS);
      assert.equal(r.dataOut.length, pkt.length);
      assert.equal(r.dataOut.readUInt32LE(8), 5);
      assert.equal(r.dataOut.readUInt32LE(12), 2);
      assert.ok(r.durationNs > 0);
      const map = obj.map('fxh_hist');
      assert.equal(map.keySize, 4);
      assert.equal(map.valueSize, 1024);
      const key = Buffer.alloc(4);
      const v = map.lookup(key)!;
      assert.equal(v.readUInt32LE(4 * 0x61), 2);
      assert.equal(v.readUInt32LE(4 * 0x62), 3);
      v.writeUInt32LE(77, 0);
      map.update(key, v);
      assert.equal(map.lookup(key)!.readUInt32LE(0), 77);
      assert.equal(map.lookup(Buffer.from([1, 0, 0, 0])), null, 'out of range key of an array: absent');
      assert.deepEqual(map.keys(), [key]);
      assert.throws(() => map.delete(key), (e: LibbpfError) => e.errno === os.constants.errno.EINVAL, 'arrays refuse delete');
      assert.throws(() => map.lookup(Buffer.alloc(3)), /key of 3 bytes, want 4/);
    } finally {
      obj.close();
    }
  });

  test('tracepoint attach (tracefs mounted if missing), counter map, ring buffer callback, idempotent detach', () => {
    const tfs = ensureTracefs();
    assert.ok(fs.existsSync(path.join(tfs.path, 'events', 'syscalls')));
    const obj = BpfObject.open(SELFTEST_O, { only: ['fxh_st_getpgid'] }).load();
    const getpgid = koffi.load('libc.so.6').func('int getpgid(int pid)') as (pid: number) => number;
    let rb: RingBuffer | undefined;
    let link: LinkHandle | undefined;
    try {
      // only calls with this argument count: above PID_MAX_LIMIT (2^22), so no one else asks about it
      const magic = 0x40000000 + Math.floor(Math.random() * 0x1000000);
      const cfg = Buffer.alloc(4);
      cfg.writeUInt32LE(magic);
      obj.map('fxh_st_cfg').update(Buffer.alloc(4), cfg);
      const seen: bigint[] = [];
      rb = new RingBuffer(obj.map('fxh_st_rb'), (d) => void seen.push(d.readBigUInt64LE(0)));
      link = obj.program('fxh_st_getpgid').attach();
      assert.equal(link.detached, false);
      for (let i = 0; i < 100; i++) assert.equal(getpgid(magic), -1, 'no such process group');
      assert.equal(getpgid(magic + 1), -1);
      assert.equal(obj.map('fxh_st_count').lookup(Buffer.alloc(4))!.readBigUInt64LE(0), 100n);
      let n = 0;
      while (n < 100) {
        const got = rb.poll(1000);
        assert.ok(got > 0, 'ring buffer records arrive');
        n += got;
      }
      assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
      link.detach();
      link.detach();
      assert.equal(link.detached, true);
      getpgid(magic);
      assert.equal(obj.map('fxh_st_count').lookup(Buffer.alloc(4))!.readBigUInt64LE(0), 100n, 'no counting after detach');
      rb.free();
      rb.free();
    } finally {
      // also when an assertion failed: the next test counts what the registry holds
      link?.detach();
      rb?.free();
      obj.close();
    }
  });

  test('cgroup: bpf_link and bpf_prog_attach, pins under /sys/fs/bpf/fxh-<pid>-*, detachAll releases all', () => {
    const obj = BpfObject.open(SELFTEST_O, { only: ['fxh_st_egress'] }).load();
    const prog = obj.program('fxh_st_egress');
    const cg = createCgroup('egress');
    assert.ok(cg.path.startsWith(`${CGROUP2_ROOT}/fxh-${process.pid}-`));
    const link = prog.attachCgroup(cg.fd);
    const cg2 = createCgroup('legacy');
    const legacy = progAttach(prog.fd, cg2.fd, BPF_ATTACH.CGROUP_INET_EGRESS);
    const pin = pinFd(prog.fd, 'prog');
    const linkPin = link.pin('link');
    assert.equal(pin.path, pinPath('prog'));
    assert.ok(fs.existsSync(pin.path) && fs.existsSync(linkPin.path));
    const shown = execFileSync('bpftool', ['cgroup', 'show', cg2.path], { encoding: 'utf8' });
    assert.match(shown, /fxh_st_egress/);
    const released = detachAll();
    assert.equal(released.length, 7, released.join('\n'));
    assert.match(released[0]!, /attach_cgroup|prog_attach/);
    assert.match(released.at(-1)!, /bpf object/);
    for (const h of [link, legacy, pin, linkPin, cg, cg2]) {
      assert.equal(h.detached, true);
      h.detach();
    }
    assert.equal(fs.existsSync(cg.path) || fs.existsSync(cg2.path) || fs.existsSync(pin.path), false);
    obj.close();
  });
});

// ----------------------------------------------------------------------------- capability

describe('bpfCapability', () => {
  test('not root and no CAP_BPF: says so', () => {
    const r = bpfCapability({ getuid: () => 1000, capEff: () => 0n });
    assert.equal(r.ok, false);
    assert.match((r as { reason: string }).reason, /not root \(uid 1000\) and no CAP_BPF/);
  });

  test('each missing piece has its own reason', { skip }, () => {
    const root = { getuid: () => 0 };
    assert.deepEqual(bpfCapability({ getuid: () => 1000, capEff: () => 1n << 39n }), { ok: true }, 'CAP_BPF without root');
    const lib = bpfCapability({ ...root, libbpfPath: '/nonexistent/libbpf.so.1' });
    assert.match((lib as { reason: string }).reason, /cannot load \/nonexistent\/libbpf\.so\.1.*apt-get install libbpf1/);
    const nosys = bpfCapability({ ...root, probeSyscall: () => os.constants.errno.ENOSYS });
    assert.match((nosys as { reason: string }).reason, /no bpf\(\) syscall/);
    const eperm = bpfCapability({ ...root, probeSyscall: () => os.constants.errno.EPERM });
    assert.match((eperm as { reason: string }).reason, /bpf\(\) syscall is denied \(EPERM\)/);
    const btf = bpfCapability({ ...root, btfPath: '/nonexistent/vmlinux' });
    assert.match((btf as { reason: string }).reason, /no kernel BTF at \/nonexistent\/vmlinux/);
    assert.deepEqual(bpfCapability(), { ok: true });
  });
});

// ----------------------------------------------------------------------------- crashes and exits

/** A child node process running `body` with libbpf.js imported as b; prints READY <json> and waits. */
function child(body: string): { proc: ReturnType<typeof spawn>; ready: Promise<Record<string, unknown>> } {
  const code = `import * as b from ${JSON.stringify(LIBBPF_JS)};\n${body}\nprocess.stdout.write('READY ' + JSON.stringify(info) + '\\n');\nsetInterval(() => {}, 1000);`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (.*)\n/.exec(out);
      if (m) resolve(JSON.parse(m[1]!) as Record<string, unknown>);
    });
    proc.on('exit', (c, s) => reject(new Error(`child exited ${c ?? s} before READY: ${err}`)));
  });
  return { proc, ready };
}

function exited(proc: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve({ code: proc.exitCode, signal: proc.signalCode });
    else proc.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

const CHILD_SETUP = `
const fo = b.BpfObject.open(${JSON.stringify(FUNCTIONS_O)}).load();
const so = b.BpfObject.open(${JSON.stringify(SELFTEST_O)}, { only: ['fxh_st_egress'] }).load();
const prog = so.program('fxh_st_egress');
const cg = b.createCgroup('crash');
prog.attachCgroup(cg.fd);                                    // fd-based link
const cg2 = b.createCgroup('legacy');
b.progAttach(prog.fd, cg2.fd, b.BPF_ATTACH.CGROUP_INET_EGRESS); // held by the cgroup, not by an fd
const pin = fo.map('fxh_hist').pin('hist');
const info = { pid: process.pid, cg: cg.path, cg2: cg2.path, pin: pin.path };
`;

describe('crashes and exits', { skip }, () => {
  test('SIGKILLed child: fd-held programs are freed by the kernel; cleanupStale() removes and reports the stale cgroups and pin', async () => {
    const { proc, ready } = child(CHILD_SETUP);
    const info = (await ready) as { pid: number; cg: string; cg2: string; pin: string };
    assert.ok(fs.existsSync(info.pin) && fs.existsSync(info.cg) && fs.existsSync(info.cg2));
    const fnvBefore = progIds('fxh_fnv1a');
    assert.ok(fnvBefore.length > 0, 'the child loaded fxh_fnv1a');
    proc.kill('SIGKILL');
    await exited(proc);
    // functions.bpf.o programs were only held by the child's fds: the kernel frees them
    assert.ok(await waitFor(() => progIds('fxh_fnv1a').length < fnvBefore.length, 5000, 25), 'timed out waiting for fxh_fnv1a of the killed child to be freed');
    // a bpf_prog_attach attachment is held by its cgroup, and the pin holds its map: they outlive the child
    assert.ok(fs.existsSync(info.pin), 'the pin survives the crash');
    assert.match(execFileSync('bpftool', ['cgroup', 'show', info.cg2], { encoding: 'utf8' }), /fxh_st_egress/);
    const report = cleanupStale();
    assert.ok(report.includes(`removed stale pin ${info.pin} (pid ${info.pid} is gone)`), report.join('\n'));
    assert.ok(report.includes(`removed stale cgroup ${info.cg} (pid ${info.pid} is gone)`), report.join('\n'));
    assert.ok(report.includes(`removed stale cgroup ${info.cg2} (pid ${info.pid} is gone)`), report.join('\n'));
    assert.deepEqual(cleanupStale(), [], 'nothing left the second time');
    // afterEach: every program of ours, link, pin and cgroup is back to the state before the test
  });

  for (const how of ['SIGTERM', 'SIGINT', 'exit', 'uncaught exception'] as const) {
    test(`exit hooks: a child ending by ${how} detaches, unpins and removes its cgroups itself`, async () => {
      const trigger =
        how === 'exit'
          ? "setTimeout(() => process.exit(0), 100);"
          : how === 'uncaught exception'
            ? "setTimeout(() => { throw new Error('boom'); }, 100);"
            : '';
      const { proc, ready } = child(CHILD_SETUP + trigger);
      const info = (await ready) as { pid: number; cg: string; cg2: string; pin: string };
      if (how === 'SIGTERM' || how === 'SIGINT') proc.kill(how);
      const end = await exited(proc);
      if (how === 'SIGTERM' || how === 'SIGINT') assert.equal(end.signal, how, 'the default action of the signal is kept');
      else if (how === 'exit') assert.equal(end.code, 0);
      else assert.equal(end.code, 1, 'an uncaught exception still ends the process with status 1');
      assert.equal(fs.existsSync(info.pin), false, 'pin removed');
      assert.equal(fs.existsSync(info.cg) || fs.existsSync(info.cg2), false, 'cgroups removed');
      assert.deepEqual(cleanupStale(), []);
    });
  }
});
