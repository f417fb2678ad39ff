// Variant `ebpf`: functions as eBPF programs, run in the kernel through BPF_PROG_RUN.
//   cold: open bpf/build/functions.bpf.o, load (the verifier checks the program), run once, close
//   warm: the function's program stays loaded; an invocation is one BPF_PROG_RUN
// The input is the payload of an XDP test-run packet behind a 32-byte header (bpf/fxh_frame.h);
// the program writes its numbers into that header (and the histogram into a map) and this file
// prints them exactly as the C fixture of the same function does.
//
// Only functions that fit the verifier have an eBPF version (EBPF_PROGRAMS); NOT_EXPRESSIBLE says,
// for every other built-in, why it cannot be written as a BPF program.
import fs from 'node:fs';
import path from 'node:path';
import { findRepoRoot } from '../functions/catalog.js';
import type { FunctionEntry } from '../functions/types.js';
import { BpfObject, TestRunner, XDP, bpfCapability, type BpfMap, type BpfProgram } from '../bpf/libbpf.js';
import { restoreMaps, snapshotMaps, type BpfSnapshot } from '../bpf/map-snapshot.js';
import {
  InvokeError,
  type Capability,
  type IdleInstances,
  type IdleOptions,
  type Invocation,
  type InvokeOptions,
  type Mode,
  type Variant,
  type VariantOptions,
  type VariantPlugin,
} from '../platform/variant.js';
import { COLD_WARM } from './common-modes.js';

const MODES: readonly Mode[] = COLD_WARM.map((m) => m.id);

/**
 * Largest input (bytes) the eBPF functions accept: FXH_MAX_INPUT in bpf/fxh_frame.h. BPF_PROG_RUN
 * gives an XDP program one linear page minus 256 B headroom and 320 B skb_shared_info (3520 B; the
 * rest of a larger packet goes to fragments the program cannot index), less the 32-byte header;
 * the programs' bounded loops are verified for exactly this many iterations.
 */
export const EBPF_MAX_INPUT = 3072;
const FRAME_BYTES = 32;

/** Why each built-in function without an eBPF version cannot be one (recorded with skipped cells). */
export const NOT_EXPRESSIBLE: Readonly<Record<string, string>> = Object.freeze({
  json:
    'not expressible under the verifier: the parser is recursive and builds a tree of dynamically allocated nodes; BPF has no heap (memory is the fixed maps declared at load), forbids recursion (bpf-to-bpf calls must form no cycle, 512-byte stack) and every loop needs a bound, while JSON nesting depth and input length (~1 MB large) are unbounded',
  sha256:
    'not expressible under the verifier for its input sizes: 4 KiB-4 MiB inputs do not fit the one linear page (3520 B) BPF_PROG_RUN hands an XDP/TC program (the rest is fragments readable only chunk by chunk through helpers), and a bounded loop is verified iteration by iteration: 65536 blocks x 64 rounds (4 MiB) far exceed the 1,000,000-instruction verification limit',
  matmul:
    'not expressible under the verifier: n x n uint32 matrices (n=256 large: 3 x 256 KiB) do not fit the 512-byte BPF stack and would live in maps reached only through helper-returned pointers; n^3 = 16.7 M multiply-adds in nested bounded loops exceed the 1,000,000-instruction verification limit',
  compress:
    'not expressible under the verifier: greedy LZ77 needs a 64Ki-entry hash table and a 64 KiB window over inputs up to 1 MiB, match loops whose length depends on the data (up to 65535) and an output whose size is only known at the end; BPF offers no allocation, only bounded loops verified per iteration, and packet output limited to one page',
  pagerank:
    'not expressible under the verifier: it generates a 20000-node, 100000-edge graph into run-time-sized arrays (BPF has no allocation; maps are sized at load), then 20 iterations over every edge plus a top-10 selection: ~2 M loop steps, above the 1,000,000-instruction verification limit',
  'noop-as': 'the AssemblyScript build of noop; the eBPF version of noop is measured as function noop',
  'matmul-as': 'the AssemblyScript build of matmul, which has no eBPF version (see matmul)',
  loop: 'not expressible by design: the verifier rejects every program it cannot prove terminates, so an eBPF function cannot spin forever',
  trap: 'not expressible: BPF has no trap instruction; a BPF program cannot fault, the verifier rejects any instruction that could',
  memhog: 'not expressible: BPF programs cannot allocate; their memory is the fixed set of maps created at load time',
  crash: 'not expressible: the verifier rejects any dereference of a possibly-NULL pointer, so the program would never load',
  chainstep:
    'not built as eBPF: one stage (+1 on every byte) is a bounded loop the verifier would take, but chain payloads go up to 1 MiB, far over the 3072-byte input limit of an XDP program under BPF_PROG_RUN; the chains experiment runs its stages in WASM and containers',
  statefill:
    'not expressible: its state is N MiB allocated on the first call, N taken from the input at run time; BPF programs cannot allocate, their memory is the maps sized when the object is loaded, and a bounded loop over N MiB exceeds the 1,000,000-instruction verification limit; eBPF state fork is tested with counter (its map)',
});

type Formatter = (frame: Buffer, hist: () => Buffer) => string;

interface EbpfFunction {
  /** program in bpf/functions.bpf.c, or in `object` */
  program: string;
  /** another object in the folder of functions.bpf.o (a test-only function's own map stays out of the others' loads) */
  object?: string;
  /** map the loader reads after a run */
  map?: string;
  format: Formatter;
}

const CLASSES = ['', 'short', 'non-ipv4', 'bad-ipv4', 'fragment', 'tcp', 'icmp', 'other-l4', 'bad-udp', 'dns', 'ntp', 'quic', 'vxlan', 'udp'];
const PASSES = new Set([2, 5, 6, 7, 9, 10, 11, 12, 13]);

const r = (frame: Buffer, i: number): number => frame.readUInt32LE(8 + 4 * i);
const ipv4 = (a: number): string => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;

/** The functions with an eBPF version, by function name; each prints what wasm-fixtures/src/<name>.c prints. */
export const EBPF_PROGRAMS: Readonly<Record<string, EbpfFunction>> = Object.freeze({
  noop: { program: 'fxh_noop', format: (f) => (r(f, 0) === 1 ? 'ok\n' : `noop: unexpected r0=${r(f, 0)}\n`) },
  fnv1a: { program: 'fxh_fnv1a', format: (f) => `fnv1a32=${r(f, 0).toString(16).padStart(8, '0')} len=${r(f, 1)}\n` },
  classify: {
    program: 'fxh_classify',
    format: (f) => {
      const cls = r(f, 0);
      let s = `class=${cls} ${CLASSES[cls] ?? '?'} verdict=${PASSES.has(cls) ? 'pass' : 'drop'}`;
      if (cls === 2) s += ` ethertype=0x${r(f, 4).toString(16).padStart(4, '0')}`;
      if (cls >= 4) s += ` proto=${r(f, 4)} src=${ipv4(r(f, 1))} dst=${ipv4(r(f, 2))}`;
      if (cls >= 9) s += ` sport=${r(f, 3) >>> 16} dport=${r(f, 3) & 0xffff}`;
      return `${s}\n`;
    },
  },
  counter: { program: 'fxh_counter', object: 'counter.bpf.o', format: (f) => `${r(f, 0)}\n` },
  histogram: {
    program: 'fxh_histogram',
    map: 'fxh_hist',
    format: (f, hist) => {
      const h = hist();
      const lines = [`len=${r(f, 0)} distinct=${r(f, 1)}`];
      for (let v = 0; v < 256; v++) {
        const c = h.readUInt32LE(4 * v);
        if (c) lines.push(`${v.toString(16).padStart(2, '0')} ${c}`);
      }
      return `${lines.join('\n')}\n`;
    },
  },
});

interface Loaded {
  obj: BpfObject;
  prog: BpfProgram;
  map?: BpfMap;
}

const STATUS = ['ok', 'input length larger than the packet', `input longer than ${EBPF_MAX_INPUT} bytes`, 'map lookup failed'];
const ZERO_KEY = Buffer.alloc(4);

export class EbpfVariant implements Variant {
  readonly name = 'ebpf';
  readonly modes = MODES;
  /** BPF programs always terminate (the verifier proves it), so an invocation cannot overrun. */
  readonly enforcesTimeouts = true;
  readonly objectPath: string;
  private readonly warm = new Map<string, Loaded>();
  private runner: TestRunner | null = null;
  private readonly histValue = Buffer.alloc(1024);
  /** kernel-measured duration (ns, BPF_PROG_RUN) of the last invocation */
  lastKernelNs = 0;

  constructor(_opts: VariantOptions, objectPath?: string) {
    this.objectPath = objectPath ?? path.join(findRepoRoot(), 'bpf', 'build', 'functions.bpf.o');
  }

  async check(): Promise<Capability> {
    const cap = bpfCapability();
    if (!cap.ok) return cap;
    if (!fs.existsSync(this.objectPath)) return { ok: false, reason: `not built: ${this.objectPath} (run node bpf/build.mjs)` };
    return { ok: true };
  }

  supports(fn: FunctionEntry, mode: Mode): string | null {
    if (!MODES.includes(mode)) return `ebpf variant has no mode ${mode} (only ${MODES.join(', ')}): loading is verification, there is nothing to compile separately`;
    if (EBPF_PROGRAMS[fn.name]) return null;
    const why = NOT_EXPRESSIBLE[fn.name];
    if (why) return `${fn.name}: ${why}`;
    if (fn.origin === 'user') return `${fn.name} is a user function: it has no eBPF version (eBPF functions are written for the verifier in bpf/*.bpf.c)`;
    return `${fn.name} has no eBPF version in bpf/functions.bpf.c`;
  }

  private load(fn: FunctionEntry): Loaded {
    const spec = EBPF_PROGRAMS[fn.name]!;
    let obj: BpfObject;
    try {
      obj = BpfObject.open(spec.object ? path.join(path.dirname(this.objectPath), spec.object) : this.objectPath, { only: [spec.program] });
    } catch (e) {
      throw new InvokeError('invalid-module', `ebpf ${fn.name}: ${(e as Error).message}`);
    }
    try {
      obj.load();
      const loaded: Loaded = { obj, prog: obj.program(spec.program) };
      if (spec.map) loaded.map = obj.map(spec.map);
      return loaded;
    } catch (e) {
      obj.close();
      throw new InvokeError('invalid-module', `ebpf ${fn.name}: ${(e as Error).message}`);
    }
  }

  private run(fn: FunctionEntry, l: Loaded, input: Uint8Array): Uint8Array {
    const spec = EBPF_PROGRAMS[fn.name]!;
    const packet = Buffer.alloc(FRAME_BYTES + input.length);
    packet.writeUInt32LE(input.length, 0);
    packet.set(input, FRAME_BYTES);
    this.runner ??= new TestRunner(FRAME_BYTES + EBPF_MAX_INPUT + 256, 0);
    const res = this.runner.run(l.prog.fd, { dataIn: packet, dataOutSize: packet.length });
    this.lastKernelNs = res.durationNs;
    if (res.retval !== XDP.PASS) throw new InvokeError('function-error', `ebpf ${fn.name}: program returned ${res.retval}, not XDP_PASS`);
    const status = res.dataOut.readUInt32LE(4);
    if (status !== 0) throw new InvokeError('function-error', `ebpf ${fn.name}: status ${status} (${STATUS[status] ?? 'unknown'})`);
    const hist = (): Buffer => {
      if (!l.map?.lookup(ZERO_KEY, this.histValue)) throw new InvokeError('function-error', `ebpf ${fn.name}: ${spec.map}[0] missing`);
      return this.histValue;
    };
    return Buffer.from(spec.format(res.dataOut, hist), 'latin1');
  }

  async invoke(fn: FunctionEntry, mode: Mode, input: Uint8Array, opts?: InvokeOptions): Promise<Invocation & { kernelNs: number }> {
    const why = this.supports(fn, mode);
    if (why) throw new InvokeError('unavailable', why);
    if (input.length > EBPF_MAX_INPUT) {
      throw new InvokeError(
        'bad-request',
        `ebpf ${fn.name}: input of ${input.length} bytes exceeds the eBPF limit of ${EBPF_MAX_INPUT} bytes (one BPF_PROG_RUN packet page minus headroom, tailroom and the 32-byte frame header; the verified loops are bounded by it)`,
      );
    }
    const t0 = process.hrtime.bigint();
    let output: Uint8Array;
    if (mode === 'warm') {
      let l = this.warm.get(fn.name);
      if (!l) {
        opts?.onPhase?.('compile_start');
        l = this.load(fn);
        opts?.onPhase?.('compile_done');
        this.warm.set(fn.name, l);
      }
      output = this.run(fn, l, input);
      opts?.onPhase?.('run_done');
    } else {
      // cold: open + load is this variant's compile (the verifier, then the JIT)
      opts?.onPhase?.('compile_start');
      const l = this.load(fn);
      opts?.onPhase?.('compile_done');
      try {
        output = this.run(fn, l, input);
        opts?.onPhase?.('run_done');
      } finally {
        l.obj.close();
      }
    }
    const elapsedNs = Number(process.hrtime.bigint() - t0);
    return { output, elapsedNs, kernelNs: this.lastKernelNs };
  }

  /** The state (map entries) of fn's warm instance; a warm call must have loaded it. */
  snapshot(fn: FunctionEntry): BpfSnapshot {
    const l = this.warm.get(fn.name);
    if (!l) throw new InvokeError('bad-request', `ebpf ${fn.name}: no warm instance to snapshot (make a warm call first)`);
    return snapshotMaps(l.obj, EBPF_PROGRAMS[fn.name]!.object ?? path.basename(this.objectPath));
  }

  /** A fork of a snapshot: a fresh load of fn's object, the snapshot written into its maps, one run, then closed. */
  async forkInvoke(fn: FunctionEntry, snap: BpfSnapshot, input: Uint8Array): Promise<Invocation & { loadNs: number; restoreNs: number }> {
    const why = this.supports(fn, 'cold');
    if (why) throw new InvokeError('unavailable', why);
    const t0 = process.hrtime.bigint();
    const l = this.load(fn);
    try {
      const t1 = process.hrtime.bigint();
      try {
        restoreMaps(l.obj, snap);
      } catch (e) {
        throw new InvokeError('bad-request', `ebpf ${fn.name}: ${(e as Error).message}`);
      }
      const t2 = process.hrtime.bigint();
      const output = this.run(fn, l, input);
      return { output, elapsedNs: Number(process.hrtime.bigint() - t0), loadNs: Number(t1 - t0), restoreNs: Number(t2 - t1) };
    } finally {
      l.obj.close();
    }
  }

  /** Idle instances are loaded programs of this process: kernel objects, no process of their own; their cost is memlock. */
  async startIdle(fn: FunctionEntry, _opts: IdleOptions): Promise<IdleInstances> {
    const why = this.supports(fn, 'warm');
    if (why) throw new InvokeError('unavailable', why);
    const all: Loaded[] = [];
    let closed = false;
    return {
      method: 'loaded XDP programs (and their maps) of the measuring process: kernel memory only, read as memlock, no process of their own',
      add: async (input) => {
        if (closed) throw new InvokeError('unavailable', 'closed');
        const l = this.load(fn);
        all.push(l);
        return this.run(fn, l, input);
      },
      alive: async () => all.length,
      kernelMemory: () => {
        const fds = all.flatMap((l) => [l.prog.fd, ...l.obj.maps().map((m) => m.fd)]);
        return {
          bytes: fds.reduce((s, fd) => s + memlock(fd), 0),
          method: `sum of memlock in /proc/self/fdinfo/<fd> of ${all.length} program(s) and their map(s) (JIT image, instructions, map memory)`,
        };
      },
      close: async () => {
        closed = true;
        for (const l of all.splice(0)) l.obj.close();
      },
    };
  }

  async teardown(): Promise<void> {
    for (const l of this.warm.values()) l.obj.close();
    this.warm.clear();
    this.runner?.free();
    this.runner = null;
  }
}

function memlock(fd: number): number {
  try {
    const m = /^memlock:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const plugin: VariantPlugin = {
  name: 'ebpf',
  modes: COLD_WARM,
  summary: `functions as eBPF (XDP) programs run with BPF_PROG_RUN: cold = open + verify/load + run + close per call, warm = program loaded once, one BPF_PROG_RUN per call; inputs up to ${EBPF_MAX_INPUT} bytes; functions without an eBPF version are skipped with the reason (NOT_EXPRESSIBLE)`,
  create: (opts) => new EbpfVariant(opts),
};
export default plugin;
