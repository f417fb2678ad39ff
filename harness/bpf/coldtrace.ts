// Cold-start tracing with eBPF (bpf/coldtrace.bpf.c), through the shared libbpf FFI (libbpf.ts).
//
//   const t = ColdTracer.open();          loads the object (maps + programs), attaches nothing
//   t.attach();                           attaches every program; t.detach() detaches them all
//   const s = t.session();                traces this process (scope "self") and every process it
//   s.mark('arrival');                    forks from now on, with their descendants (scope "tree")
//   ... the invocation ...
//   s.mark('output');
//   const r = s.collect();                counts per scope + phase timestamps; the session is over
//   t.close();                            detaches and closes (also done by libbpf.ts's exit hooks)
//
// Why "descendants of the measuring process" and not hooks that hand over the child's pid: by the
// time child_process.spawn() returns a pid, libuv's child has already exec'd (uv_spawn waits for
// the exec), so its fork, its exec and its first page faults would be lost. The fork hook in the
// kernel adds every process forked by a traced process to the session at the moment it is forked,
// which covers `runc run`, runc's re-exec as `runc init`, its clone()d children and the container
// process with no cooperation from the variant. Cold starts run one at a time, so every process the
// measuring process forks during a session belongs to that invocation.
//
// Clocks: bpf_ktime_get_ns() and process.hrtime.bigint() are both CLOCK_MONOTONIC, so kernel
// events and user marks share one timeline.
//
// Everything attached or opened here is in libbpf.ts's registry (released on exit, SIGINT,
// SIGTERM, uncaught exceptions); nothing is pinned and no cgroup is made.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BpfObject,
  RingBuffer,
  TRACEFS,
  bpfCapability,
  enableRunTimeStats,
  ensureTracefs,
  progInfo,
  type BpfMap,
  type CapabilityProbe,
  type LinkHandle,
} from './libbpf.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** build/harness/bpf -> repo root, or harness/bpf when run from sources */
function repoRoot(): string {
  for (let d = HERE; path.dirname(d) !== d; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'bpf', 'build.mjs'))) return d;
  }
  return path.resolve(HERE, '..', '..', '..');
}
export const COLDTRACE_OBJECT = path.join(repoRoot(), 'bpf', 'build', 'coldtrace.bpf.o');
export const UNISTD_64 = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';

// ------------------------------------------------------------------------------------- syscall names

let sysTable: { names: Map<number, string>; source: string } | undefined;

/** Syscall nr -> name for x86_64, parsed from the system's asm/unistd_64.h (not typed by hand). */
export function syscallTable(file = UNISTD_64): { names: Map<number, string>; source: string } {
  if (file === UNISTD_64 && sysTable) return sysTable;
  const names = new Map<number, string>();
  let source = file;
  try {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/^#define\s+__NR_(\w+)\s+(\d+)\s*$/gm)) names.set(Number(m[2]), m[1]!);
  } catch (e) {
    source = `${file} unreadable (${(e as Error).message}; apt-get install linux-libc-dev): syscalls named nr_<n>`;
  }
  const t = { names, source };
  if (file === UNISTD_64) sysTable = t;
  return t;
}

export function syscallName(nr: number): string {
  return syscallTable().names.get(nr) ?? `nr_${nr}`;
}

/** syscall nrs whose positive return value counts as bytes read */
export const READ_SYSCALLS = ['read', 'pread64', 'readv', 'preadv', 'preadv2'] as const;

// ------------------------------------------------------------------------------------- layout (see coldtrace.bpf.c)

export type Scope = 'self' | 'tree';
const SCOPE_ID: Record<Scope, number> = { self: 0, tree: 1 };
const FLAG_READ = 1;
const EVENT_KINDS = ['', 'fork', 'exec', 'exit', 'mount', 'pivot_root', 'unshare'] as const;
export type EventKind = Exclude<(typeof EVENT_KINDS)[number], ''>;
const EVENT_SIZE = 120;
const COUNT_FIELDS = ['syscalls', 'page_faults', 'processes', 'threads', 'execs', 'mounts', 'bytes_read', 'exits'] as const;

/** One kernel event of a session (ring buffer record). */
export interface TraceEvent {
  kind: EventKind;
  /** CLOCK_MONOTONIC ns */
  tNs: bigint;
  scope: Scope;
  /** tgid the event is about (fork: the child) */
  pid: number;
  /** fork: the parent's tgid */
  ppid: number;
  /** the thread that ran the hook */
  tid: number;
  /** exec: old pid; exit: exit_code; mount: 0 mount / 1 move_mount; unshare: flags; fork: scope id of the forker */
  arg: bigint;
  comm: string;
  /** exec: the file exec'd */
  file: string;
}

export interface Counts {
  syscallsTotal: number;
  /** by name (x86_64 names from unistd_64.h); only syscalls seen */
  syscalls: Record<string, number>;
  /** null when the page_fault_user tracepoint is missing here */
  pageFaults: number | null;
  processes: number;
  threads: number;
  execs: number;
  /** mount(2) + move_mount(2) entries; null when those tracepoints could not be attached */
  mounts: number | null;
  bytesRead: number;
  exits: number;
}

export interface Phase {
  name: string;
  /** CLOCK_MONOTONIC ns */
  tNs: bigint;
  source: 'user' | 'kernel';
  pid?: number;
}

/** The counts of the scope that ran the invocation, flat (the brief's shape), plus both scopes, phases and events. */
export interface CollectResult extends Omit<Counts, 'exits'> {
  /** the scope that ran the invocation: "tree" when it forked processes, else "self" (in-process) */
  scope: Scope;
  /** both scopes */
  byScope: Record<Scope, Counts>;
  /** user marks and kernel events, in time order */
  phases: Phase[];
  events: TraceEvent[];
  /** ring buffer records lost (reserve failures are not visible here; lost = dropped by us) */
  notes: string[];
}

// ------------------------------------------------------------------------------------- capability

export type ColdTraceCapability = { ok: true; notes: string[] } | { ok: false; reason: string };

/**
 * Whether cold starts can be traced here: bpfCapability() (root/CAP_BPF, libbpf, bpf(), BTF), the
 * compiled object, and tracefs (mounted when missing; the mount probes need it). Parts of the
 * probe are injectable for tests (e.g. getuid).
 */
export function coldTraceCapability(probe: Partial<CapabilityProbe> & { objectPath?: string } = {}): ColdTraceCapability {
  const cap = bpfCapability(probe);
  if (!cap.ok) return { ok: false, reason: cap.reason };
  const obj = probe.objectPath ?? COLDTRACE_OBJECT;
  if (!fs.existsSync(obj)) return { ok: false, reason: `${path.relative(repoRoot(), obj)} is not built (node bpf/build.mjs)` };
  const notes: string[] = [];
  try {
    const t = ensureTracefs();
    if (t.mountedNow) notes.push(`mounted tracefs at ${t.path}`);
  } catch (e) {
    notes.push(`tracefs unavailable (${(e as Error).message}): mounts are not counted`);
  }
  if (process.arch !== 'x64') notes.push(`syscall names and bytes read assume x86_64; this is ${process.arch}`);
  return { ok: true, notes };
}

// ------------------------------------------------------------------------------------- tracer

/** programs that may be missing here; their counter becomes null */
const OPTIONAL: Record<string, { tracepoint: string; what: 'pageFaults' | 'mounts' }> = {
  fxh_pgfault: { tracepoint: 'exceptions/page_fault_user', what: 'pageFaults' },
  fxh_mount: { tracepoint: 'syscalls/sys_enter_mount', what: 'mounts' },
  fxh_move_mount: { tracepoint: 'syscalls/sys_enter_move_mount', what: 'mounts' },
  fxh_pivot_root: { tracepoint: 'syscalls/sys_enter_pivot_root', what: 'mounts' },
  fxh_unshare: { tracepoint: 'syscalls/sys_enter_unshare', what: 'mounts' },
};

let nextSession = 1;

export class ColdTracer {
  private links: LinkHandle[] = [];
  private readonly rb: RingBuffer;
  private readonly traced: BpfMap;
  private readonly counts: BpfMap;
  private readonly sys: BpfMap;
  /** events per live session, filled while draining the ring buffer */
  private readonly inbox = new Map<number, TraceEvent[]>();
  private readonly missing = new Set<'pageFaults' | 'mounts'>();
  readonly notes: string[] = [];
  private closed = false;
  /** BPF run-time statistics stay on while this fd is open (fd-scoped, like sockmap.ts) */
  private statsFd = -1;

  private constructor(private readonly obj: BpfObject) {
    this.traced = obj.map('fxh_ct_traced');
    this.counts = obj.map('fxh_ct_counts');
    this.sys = obj.map('fxh_ct_sys');
    const flags = obj.map('fxh_ct_flags');
    const table = syscallTable();
    if (table.names.size === 0) this.notes.push(`syscall table: ${table.source}`);
    for (const [nr, name] of table.names) {
      if (!(READ_SYSCALLS as readonly string[]).includes(name) || nr >= flags.maxEntries) continue;
      flags.update(u32(nr), u32(FLAG_READ));
    }
    this.rb = new RingBuffer(obj.map('fxh_ct_events'), (d) => this.onEvent(d));
  }

  /** Opens and loads bpf/build/coldtrace.bpf.o. Programs whose tracepoint is missing here are not loaded. */
  static open(objectPath = COLDTRACE_OBJECT): ColdTracer {
    const obj = BpfObject.open(objectPath);
    const skipped: string[] = [];
    const missing = new Set<'pageFaults' | 'mounts'>();
    let haveTracefs = false;
    try {
      ensureTracefs();
      haveTracefs = true;
    } catch {
      /* the classic tracepoints cannot attach: leave them out */
    }
    for (const [prog, o] of Object.entries(OPTIONAL)) {
      const there = haveTracefs && fs.existsSync(path.join(TRACEFS, 'events', o.tracepoint));
      // page_fault_user is a tp_btf program: it needs the tracepoint in the kernel, not tracefs
      const btfOnly = prog === 'fxh_pgfault' && !haveTracefs && btfHas('btf_trace_page_fault_user');
      if (there || btfOnly) continue;
      obj.program(prog).setAutoload(false);
      skipped.push(`${prog} (${o.tracepoint} ${haveTracefs ? 'does not exist here' : 'needs tracefs'})`);
      missing.add(o.what);
    }
    try {
      obj.load();
    } catch (e) {
      obj.close();
      throw e;
    }
    const t = new ColdTracer(obj);
    for (const m of missing) t.missing.add(m);
    try {
      t.statsFd = enableRunTimeStats();
    } catch (e) {
      t.notes.push(`program run time not measured: ${(e as Error).message}`);
    }
    if (skipped.length) t.notes.push(`not loaded: ${skipped.join('; ')}`);
    return t;
  }

  get attached(): boolean {
    return this.links.length > 0;
  }

  /** Attaches every loaded program (all or nothing). */
  attach(): void {
    if (this.closed) throw new Error('coldtrace: tracer is closed');
    if (this.attached) return;
    try {
      for (const p of this.obj.programs()) if (p.fd >= 0) this.links.push(p.attach());
    } catch (e) {
      this.detach();
      throw e;
    }
  }

  /** Detaches every program attached by attach(). Idempotent. */
  detach(): void {
    for (const l of this.links.splice(0).reverse()) l.detach();
  }

  /**
   * Run time (ns) and runs the kernel has counted for the loaded programs so far, all processes
   * included (the tracepoints fire for every process and filter inside): what the tracing costs the
   * machine in kernel time, a lower bound of its overhead. null when statistics are not on.
   */
  programTime(): { ns: number; runs: number } | null {
    if (this.statsFd < 0 || this.closed) return null;
    let ns = 0;
    let runs = 0;
    for (const p of this.obj.programs()) {
      if (p.fd < 0) continue;
      const i = progInfo(p.fd);
      ns += i.runTimeNs;
      runs += i.runCount;
    }
    return { ns, runs };
  }

  /** names of the programs currently attached */
  attachedPrograms(): string[] {
    return this.attached ? this.obj.programs().filter((p) => p.fd >= 0).map((p) => p.name) : [];
  }

  /**
   * Starts a session. self (default true): this process is traced (scope "self") and every process
   * it forks joins the tree. roots: more processes to trace in scope "tree" (with their future children).
   */
  session(opts: { self?: boolean; roots?: readonly number[] } = {}): TraceSession {
    if (this.closed) throw new Error('coldtrace: tracer is closed');
    const id = nextSession++;
    this.inbox.set(id, []);
    const self = opts.self ?? true;
    const s = new TraceSession(this, id, self);
    for (const pid of opts.roots ?? []) s.addPid(pid);
    if (self) this.track(process.pid, id, 'self');
    return s;
  }

  /** Detaches, frees the ring buffer and closes the object. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.rb.free();
    this.obj.close();
    if (this.statsFd >= 0) fs.closeSync(this.statsFd);
    this.statsFd = -1;
  }

  // ---- used by TraceSession

  /** @internal */
  track(pid: number, session: number, scope: Scope): void {
    const v = Buffer.alloc(8);
    v.writeUInt32LE(session, 0);
    v.writeUInt32LE(SCOPE_ID[scope], 4);
    this.traced.update(u32(pid), v);
  }

  /** @internal stops counting for the session: its processes leave the map */
  untrack(session: number, selfTraced: boolean): void {
    // this process first, with one bpf() call (its entry is the one syscall of ours counted in scope
    // "self"; harvest() takes it off): every syscall below would otherwise count too
    if (selfTraced) this.traced.delete(u32(process.pid));
    for (const k of this.traced.keys()) {
      const v = this.traced.lookup(k);
      if (v && v.readUInt32LE(0) === session) this.traced.delete(k);
    }
  }

  /** @internal drains the ring buffer, reads and deletes the session's counters */
  harvest(session: number, selfTraced: boolean): { events: TraceEvent[]; counts: Record<Scope, Counts>; notes: string[] } {
    this.rb.consume();
    const events = this.inbox.get(session) ?? [];
    this.inbox.delete(session);
    const counts = {} as Record<Scope, Counts>;
    const sysByScope: Record<Scope, Record<string, number>> = { self: {}, tree: {} };
    for (const k of this.sys.keys()) {
      if (k.readUInt32LE(0) !== session) continue;
      const v = this.sys.lookup(k);
      this.sys.delete(k);
      if (!v) continue;
      const scope: Scope = k.readUInt32LE(4) === 0 ? 'self' : 'tree';
      const name = syscallName(k.readUInt32LE(8));
      sysByScope[scope][name] = (sysByScope[scope][name] ?? 0) + Number(v.readBigUInt64LE(0));
    }
    for (const scope of ['self', 'tree'] as const) {
      const key = Buffer.alloc(8);
      key.writeUInt32LE(session, 0);
      key.writeUInt32LE(SCOPE_ID[scope], 4);
      const v = this.counts.lookup(key);
      if (v) this.counts.delete(key);
      const f = (name: (typeof COUNT_FIELDS)[number]) => (v ? Number(v.readBigUInt64LE(8 * COUNT_FIELDS.indexOf(name))) : 0);
      const syscalls = sysByScope[scope];
      let total = f('syscalls');
      if (scope === 'self' && selfTraced && (syscalls.bpf ?? 0) > 0) {
        // the map delete that ended the session entered bpf() while this process was still traced
        syscalls.bpf! -= 1;
        if (syscalls.bpf === 0) delete syscalls.bpf;
        total -= 1;
      }
      counts[scope] = {
        syscallsTotal: total,
        syscalls,
        pageFaults: this.missing.has('pageFaults') ? null : f('page_faults'),
        processes: f('processes'),
        threads: f('threads'),
        execs: f('execs'),
        mounts: this.missing.has('mounts') ? null : f('mounts'),
        bytesRead: f('bytes_read'),
        exits: f('exits'),
      };
    }
    return { events, counts, notes: [...this.notes] };
  }

  private onEvent(d: Buffer): void {
    if (d.length < EVENT_SIZE) return;
    const session = d.readUInt32LE(12);
    const list = this.inbox.get(session);
    if (!list) return; // a session that is over (a late exit of a killed process)
    const kind = EVENT_KINDS[d.readUInt32LE(8)];
    if (!kind) return;
    list.push({
      kind,
      tNs: d.readBigUInt64LE(0),
      scope: d.readUInt32LE(16) === 0 ? 'self' : 'tree',
      pid: d.readUInt32LE(20),
      ppid: d.readUInt32LE(24),
      tid: d.readUInt32LE(28),
      arg: d.readBigUInt64LE(32),
      comm: cstr(d, 40, 16),
      file: cstr(d, 56, 64),
    });
  }
}

export class TraceSession {
  private readonly marks: Phase[] = [];
  private ended = false;

  /** @internal */
  constructor(
    private readonly tracer: ColdTracer,
    readonly id: number,
    private readonly selfTraced: boolean,
  ) {}

  /** Traces `pid` (and the processes it forks from now on) in scope "tree". */
  addPid(pid: number): void {
    if (this.ended) throw new Error(`coldtrace session ${this.id} is over`);
    this.tracer.track(pid, this.id, 'tree');
  }

  /** A user-space phase mark at process.hrtime.bigint() (the clock of bpf_ktime_get_ns). */
  mark(name: string): void {
    this.marks.push({ name, tNs: process.hrtime.bigint(), source: 'user' });
  }

  /** Stops counting (idempotent). collect() calls it. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.tracer.untrack(this.id, this.selfTraced);
  }

  /** Ends the session and returns what it saw. */
  collect(): CollectResult {
    this.end();
    const { events, counts, notes } = this.tracer.harvest(this.id, this.selfTraced);
    const scope: Scope = counts.tree.processes > 0 ? 'tree' : 'self';
    const c = counts[scope];
    const kernelPhases: Phase[] = events.map((e) => ({ name: eventPhaseName(e), tNs: e.tNs, source: 'kernel', pid: e.pid }));
    const phases = [...this.marks, ...kernelPhases].sort((a, b) => (a.tNs < b.tNs ? -1 : a.tNs > b.tNs ? 1 : 0));
    const { exits: _exits, ...flat } = c;
    return {
      ...flat,
      scope,
      byScope: counts,
      phases,
      events,
      notes,
    };
  }
}

function eventPhaseName(e: TraceEvent): string {
  switch (e.kind) {
    case 'fork':
      return `fork:${e.comm}`;
    case 'exec':
      return `exec:${path.basename(e.file) || e.comm}`;
    case 'exit':
      return `exit:${e.comm}`;
    case 'mount':
      return e.arg === 1n ? 'move_mount' : 'mount';
    default:
      return e.kind;
  }
}

// ------------------------------------------------------------------------------------- breakdown

/** A milestone of a cold start and the name of the phase that ends at it. */
export interface Milestone {
  key: string;
  /** name of the phase from the previous milestone to this one */
  phase: string;
  tNs: bigint;
}

export interface Breakdown {
  milestones: Milestone[];
  /** consecutive phases, ns; they add up to output − arrival */
  phases: { name: string; ns: number }[];
  /** arrival -> the function's first instruction (exec of the function, or instantiate done), ns */
  firstInstructionNs?: number;
  totalNs?: number;
}

/**
 * Where one cold start went, from a session's marks and kernel events.
 *   process variants: arrival → fork of the first child (spawn) → first exec, when a runtime execs
 *   before the function (exec runtime) → the runtime's first fork (runtime start) → its helper's
 *   last exec before unsharing (runtime init exec: runc init, re-exec'd from its memfd copy) →
 *   first unshare (runtime setup) → last mount/pivot_root
 *   (namespaces+mounts) → exec of the function = the last exec (exec function; its first
 *   instruction follows) → its exit (function run) → the root's exit (runtime exit) → output (return).
 *   in-process variants (user marks): arrival → compile_start (prepare) → compile_done (compile) →
 *   instantiate_start (prepare instance) → instantiate_done (instantiate; first instruction) →
 *   run_done (function run) → output (return).
 * Missing milestones fold their phase into the next one.
 */
export function breakdown(r: Pick<CollectResult, 'phases' | 'events'>): Breakdown {
  const mark = (n: string) => r.phases.find((p) => p.source === 'user' && p.name === n)?.tNs;
  const arrival = mark('arrival');
  const output = mark('output');
  const tree = r.events.filter((e) => e.scope === 'tree' && (arrival === undefined || e.tNs >= arrival));
  const root = tree.find((e) => e.kind === 'fork' && e.arg === 0n);
  const execs = tree.filter((e) => e.kind === 'exec');
  const fnExec = execs[execs.length - 1];
  const runtimeExec = execs.length > 1 ? execs[0] : undefined;
  const beforeFn = (e: TraceEvent) => fnExec === undefined || e.tNs <= fnExec.tNs;
  // a runtime that forks its own helper and re-execs it (runc run -> runc init) before the function
  const runtimeFork = runtimeExec ? tree.find((e) => e.kind === 'fork' && e.arg !== 0n && e.tNs > runtimeExec.tNs && beforeFn(e)) : undefined;
  const unshare = tree.find((e) => e.kind === 'unshare' && beforeFn(e));
  const initExecs = runtimeFork ? execs.filter((e) => e !== fnExec && e.tNs > runtimeFork.tNs && (unshare === undefined || e.tNs <= unshare.tNs)) : [];
  const initExec = initExecs[initExecs.length - 1];
  const mounts = tree.filter((e) => (e.kind === 'mount' || e.kind === 'pivot_root') && beforeFn(e));
  const lastMount = mounts[mounts.length - 1];
  const fnExit = fnExec ? tree.find((e) => e.kind === 'exit' && e.pid === fnExec.pid && e.tNs >= fnExec.tNs) : undefined;
  const rootExit = root && root.pid !== fnExec?.pid ? tree.find((e) => e.kind === 'exit' && e.pid === root.pid) : undefined;
  const cand: [string, string, bigint | undefined][] = [
    ['arrival', '', arrival],
    ['compile_start', 'prepare', mark('compile_start')],
    ['compile_done', 'compile', mark('compile_done')],
    ['instantiate_start', 'prepare instance', mark('instantiate_start')],
    ['instantiate_done', 'instantiate', mark('instantiate_done')],
    ['run_done', 'function run', mark('run_done')],
    ['fork', 'spawn', root?.tNs],
    ['runtime_exec', 'exec runtime', runtimeExec?.tNs],
    ['runtime_fork', 'runtime start', runtimeFork?.tNs],
    ['init_exec', 'runtime init exec', initExec?.tNs],
    ['unshare', 'runtime setup', unshare?.tNs],
    ['mounts_done', 'namespaces+mounts', lastMount?.tNs],
    ['function_exec', 'exec function', fnExec?.tNs],
    ['function_exit', 'function run', fnExit?.tNs],
    ['root_exit', 'runtime exit', rootExit?.tNs],
    ['output', 'return', output],
  ];
  const milestones: Milestone[] = [];
  for (const [key, phase, t] of cand) {
    if (t === undefined) continue;
    const prev = milestones[milestones.length - 1];
    if (prev && t < prev.tNs) continue; // out of order (should not happen): dropped, its time folds into the next
    milestones.push({ key, phase, tNs: t });
  }
  const phases = milestones.slice(1).map((m, i) => ({ name: m.phase, ns: Number(m.tNs - milestones[i]!.tNs) }));
  // no instantiate mark (e.g. the ebpf variant: compile = verify + load, then BPF_PROG_RUN): the first instruction follows compile_done
  const first = fnExec?.tNs ?? mark('instantiate_done') ?? mark('compile_done');
  return {
    milestones,
    phases,
    ...(arrival !== undefined && first !== undefined && first >= arrival ? { firstInstructionNs: Number(first - arrival) } : {}),
    ...(arrival !== undefined && output !== undefined ? { totalNs: Number(output - arrival) } : {}),
  };
}

// ------------------------------------------------------------------------------------- helpers

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.toString('utf8', 0, z < 0 ? len : z);
}

let btfText: Buffer | undefined;
function btfHas(name: string): boolean {
  try {
    btfText ??= fs.readFileSync('/sys/kernel/btf/vmlinux');
    return btfText.includes(Buffer.from(`\0${name}\0`));
  } catch {
    return false;
  }
}
