// A small typed FFI over Debian's libbpf (libbpf.so.1, libbpf 1.1) through koffi. No bpftool, no
// shelling out: objects are opened, verified, loaded, attached and run by libbpf in this process.
//
//   BpfObject.open(path) -> .program(name) / .map(name) -> .load() (VerifierError with the log)
//   progTestRun(fd, {dataIn})                BPF_PROG_RUN (a function invocation, a unit test)
//   prog.attach() / attachCgroup / attachTracepoint / attachKprobe / attachXdp   bpf_link based
//   progAttach(progFd, targetFd, type)       bpf_prog_attach (e.g. BPF_SK_MSG_VERDICT on a sockhash)
//   linkCreate(progFd, targetFd, type)       bpf_link_create (e.g. BPF_CGROUP_SOCK_OPS, fd based)
//   RingBuffer(map, cb).poll(ms)             ring_buffer__new/poll with a koffi callback
//
// Everything this process attaches, pins or creates (links, attachments, pins, cgroups, open
// objects, ring buffers) is in one registry; detachAll() releases it, and exit hooks (exit,
// SIGINT, SIGTERM, uncaught exceptions) call it. Pins live only under /sys/fs/bpf/fxh-<pid>-*,
// cgroups under /sys/fs/cgroup/unified/fxh-<pid>-*; cleanupStale() removes those of dead pids.
//
// libbpf is loaded lazily (importing this module never fails): bpfCapability() reports why eBPF
// cannot run here instead.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import koffi from 'koffi';

// ------------------------------------------------------------------------------------- constants

export const LIBBPF_SONAME = 'libbpf.so.1';
export const BPFFS = '/sys/fs/bpf';
export const CGROUP2_ROOT = '/sys/fs/cgroup/unified';
export const TRACEFS = '/sys/kernel/tracing';
export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux';
/** Prefix of everything of ours in the kernel: program/map names (fxh_), pins and cgroups (fxh-<pid>-). */
export const NAME_PREFIX = 'fxh';

/** enum bpf_attach_type (linux/bpf.h), the values later users need. */
export const BPF_ATTACH = Object.freeze({
  CGROUP_INET_INGRESS: 0,
  CGROUP_INET_EGRESS: 1,
  CGROUP_INET_SOCK_CREATE: 2,
  CGROUP_SOCK_OPS: 3,
  SK_SKB_STREAM_PARSER: 4,
  SK_SKB_STREAM_VERDICT: 5,
  CGROUP_DEVICE: 6,
  SK_MSG_VERDICT: 7,
  SK_SKB_VERDICT: 38,
});

/** enum bpf_prog_type, for probes and checks. */
export const BPF_PROG_TYPE = Object.freeze({
  SOCKET_FILTER: 1,
  KPROBE: 2,
  SCHED_CLS: 3,
  TRACEPOINT: 5,
  XDP: 6,
  CGROUP_SKB: 8,
  SOCK_OPS: 13,
  SK_SKB: 14,
  SK_MSG: 16,
});

/** enum bpf_map_type values whose lookups return one value per possible CPU. */
const PERCPU_MAP_TYPES = new Set([5, 6, 10, 21]);

/** XDP verdicts (retval of an XDP program under BPF_PROG_RUN). */
export const XDP = Object.freeze({ ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 });

// ------------------------------------------------------------------------------------- errors

function errnoName(n: number): string {
  for (const [k, v] of Object.entries(os.constants.errno)) if (v === n) return k;
  return `errno ${n}`;
}

/** A libbpf/bpf() call failed. `errno` is positive. */
export class LibbpfError extends Error {
  constructor(
    readonly op: string,
    readonly errno: number,
    detail = '',
  ) {
    super(`${op}: ${errnoName(errno)} (${errno})${detail ? `: ${detail}` : ''}`);
    this.name = 'LibbpfError';
  }
}

/** The verifier rejected a program; the message contains libbpf's messages and the verifier log. */
export class VerifierError extends LibbpfError {
  constructor(
    readonly object: string,
    readonly program: string,
    errno: number,
    readonly log: string,
    readonly libbpfMessages: string[],
  ) {
    super(
      `load ${path.basename(object)}`,
      errno,
      `the verifier rejected program '${program}'\n` +
        (libbpfMessages.length ? `libbpf:\n${libbpfMessages.map((m) => `  ${m}`).join('\n')}\n` : '') +
        `verifier log:\n${log.trimEnd()}`,
    );
    this.name = 'VerifierError';
  }
}

// ------------------------------------------------------------------------------------- the library

// opaque libbpf types
type Ptr = unknown; // koffi external pointer

interface Lib {
  bpf_object__open_file(path: string, opts: null): Ptr;
  bpf_object__load(obj: Ptr): number;
  bpf_object__close(obj: Ptr): void;
  bpf_object__next_program(obj: Ptr, prev: Ptr): Ptr;
  bpf_object__next_map(obj: Ptr, prev: Ptr): Ptr;
  bpf_object__find_program_by_name(obj: Ptr, name: string): Ptr;
  bpf_object__find_map_by_name(obj: Ptr, name: string): Ptr;
  bpf_program__name(p: Ptr): string;
  bpf_program__section_name(p: Ptr): string;
  bpf_program__fd(p: Ptr): number;
  bpf_program__type(p: Ptr): number;
  bpf_program__set_autoload(p: Ptr, on: boolean): number;
  bpf_program__set_log_buf(p: Ptr, buf: Buffer, size: number): number;
  bpf_program__set_log_level(p: Ptr, level: number): number;
  bpf_program__attach(p: Ptr): Ptr;
  bpf_program__attach_cgroup(p: Ptr, fd: number): Ptr;
  bpf_program__attach_xdp(p: Ptr, ifindex: number): Ptr;
  bpf_program__attach_tracepoint(p: Ptr, cat: string, name: string): Ptr;
  bpf_program__attach_kprobe(p: Ptr, retprobe: boolean, fn: string): Ptr;
  bpf_link__destroy(l: Ptr): number;
  bpf_link__fd(l: Ptr): number;
  bpf_link__pin(l: Ptr, path: string): number;
  bpf_map__name(m: Ptr): string;
  bpf_map__fd(m: Ptr): number;
  bpf_map__type(m: Ptr): number;
  bpf_map__key_size(m: Ptr): number;
  bpf_map__value_size(m: Ptr): number;
  bpf_map__max_entries(m: Ptr): number;
  bpf_map_lookup_elem(fd: number, key: Buffer, value: Buffer): number;
  bpf_map_update_elem(fd: number, key: Buffer, value: Buffer, flags: bigint): number;
  bpf_map_delete_elem(fd: number, key: Buffer): number;
  bpf_map_get_next_key(fd: number, key: Buffer | null, next: Buffer): number;
  bpf_obj_pin(fd: number, path: string): number;
  bpf_prog_attach(prog: number, target: number, type: number, flags: number): number;
  bpf_prog_detach2(prog: number, target: number, type: number): number;
  bpf_link_create(prog: number, target: number, type: number, opts: null): number;
  bpf_prog_test_run_opts(fd: number, opts: unknown): number;
  libbpf_probe_bpf_prog_type(type: number, opts: null): number;
  libbpf_num_possible_cpus(): number;
  libbpf_set_print(fn: unknown): unknown;
  ring_buffer__new(fd: number, cb: unknown, ctx: null, opts: null): Ptr;
  ring_buffer__poll(rb: Ptr, timeoutMs: number): number;
  ring_buffer__consume(rb: Ptr): number;
  ring_buffer__epoll_fd(rb: Ptr): number;
  ring_buffer__free(rb: Ptr): void;
  // libc
  vsnprintf(buf: Buffer, size: number, fmt: unknown, ap: unknown): number;
  mount(src: string, target: string, type: string, flags: number, data: null): number;
}

let lib: Lib | null = null;
let libError: string | null = null;

/** libbpf's messages of the current capture (open/load), else null. */
let sink: string[] | null = null;
/** the last libbpf messages, whatever the capture, for diagnostics */
const recent: string[] = [];
let printCallback: unknown = null; // keeps the registered koffi callback alive
const printScratch = Buffer.alloc(64 * 1024);

function declare(libbpf: ReturnType<typeof koffi.load>, libc: ReturnType<typeof koffi.load>): Lib {
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_link');
  koffi.opaque('ring_buffer');
  koffi.proto('int fxh_libbpf_print_fn(int level, void *fmt, void *ap)');
  koffi.proto('int fxh_ring_buffer_sample_fn(void *ctx, void *data, size_t size)');
  const f = (sig: string) => libbpf.func(sig);
  const l = {
    bpf_object__open_file: f('bpf_object *bpf_object__open_file(const char *path, void *opts)'),
    bpf_object__load: f('int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: f('void bpf_object__close(bpf_object *obj)'),
    bpf_object__next_program: f('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)'),
    bpf_object__next_map: f('bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *prev)'),
    bpf_object__find_program_by_name: f('bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
    bpf_object__find_map_by_name: f('bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    bpf_program__name: f('const char *bpf_program__name(bpf_program *p)'),
    bpf_program__section_name: f('const char *bpf_program__section_name(bpf_program *p)'),
    bpf_program__fd: f('int bpf_program__fd(bpf_program *p)'),
    bpf_program__type: f('int bpf_program__type(bpf_program *p)'),
    bpf_program__set_autoload: f('int bpf_program__set_autoload(bpf_program *p, bool autoload)'),
    bpf_program__set_log_buf: f('int bpf_program__set_log_buf(bpf_program *p, void *buf, size_t size)'),
    bpf_program__set_log_level: f('int bpf_program__set_log_level(bpf_program *p, uint32_t level)'),
    bpf_program__attach: f('bpf_link *bpf_program__attach(bpf_program *p)'),
    bpf_program__attach_cgroup: f('bpf_link *bpf_program__attach_cgroup(bpf_program *p, int cgroup_fd)'),
    bpf_program__attach_xdp: f('bpf_link *bpf_program__attach_xdp(bpf_program *p, int ifindex)'),
    bpf_program__attach_tracepoint: f('bpf_link *bpf_program__attach_tracepoint(bpf_program *p, const char *cat, const char *name)'),
    bpf_program__attach_kprobe: f('bpf_link *bpf_program__attach_kprobe(bpf_program *p, bool retprobe, const char *fn)'),
    bpf_link__destroy: f('int bpf_link__destroy(bpf_link *l)'),
    bpf_link__fd: f('int bpf_link__fd(bpf_link *l)'),
    bpf_link__pin: f('int bpf_link__pin(bpf_link *l, const char *path)'),
    bpf_map__name: f('const char *bpf_map__name(bpf_map *m)'),
    bpf_map__fd: f('int bpf_map__fd(bpf_map *m)'),
    bpf_map__type: f('int bpf_map__type(bpf_map *m)'),
    bpf_map__key_size: f('uint32_t bpf_map__key_size(bpf_map *m)'),
    bpf_map__value_size: f('uint32_t bpf_map__value_size(bpf_map *m)'),
    bpf_map__max_entries: f('uint32_t bpf_map__max_entries(bpf_map *m)'),
    bpf_map_lookup_elem: f('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_update_elem: f('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_delete_elem: f('int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: f('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
    bpf_obj_pin: f('int bpf_obj_pin(int fd, const char *path)'),
    bpf_prog_attach: f('int bpf_prog_attach(int prog_fd, int target_fd, int type, unsigned int flags)'),
    bpf_prog_detach2: f('int bpf_prog_detach2(int prog_fd, int target_fd, int type)'),
    bpf_link_create: f('int bpf_link_create(int prog_fd, int target_fd, int type, void *opts)'),
    bpf_prog_test_run_opts: f('int bpf_prog_test_run_opts(int fd, void *opts)'),
    libbpf_probe_bpf_prog_type: f('int libbpf_probe_bpf_prog_type(int type, void *opts)'),
    libbpf_num_possible_cpus: f('int libbpf_num_possible_cpus(void)'),
    libbpf_set_print: f('void *libbpf_set_print(fxh_libbpf_print_fn *fn)'),
    ring_buffer__new: f('ring_buffer *ring_buffer__new(int map_fd, fxh_ring_buffer_sample_fn *cb, void *ctx, void *opts)'),
    ring_buffer__poll: f('int ring_buffer__poll(ring_buffer *rb, int timeout_ms)'),
    ring_buffer__consume: f('int ring_buffer__consume(ring_buffer *rb)'),
    ring_buffer__epoll_fd: f('int ring_buffer__epoll_fd(ring_buffer *rb)'),
    ring_buffer__free: f('void ring_buffer__free(ring_buffer *rb)'),
    vsnprintf: libc.func('int vsnprintf(void *buf, size_t size, void *fmt, void *ap)'),
    mount: libc.func('int mount(const char *src, const char *target, const char *type, unsigned long flags, void *data)'),
  };
  return l as unknown as Lib;
}

/** Loads libbpf.so.1 once (declaring its functions); returns the reason when it cannot. */
function tryLoadLib(): { lib: Lib } | { error: string } {
  if (lib) return { lib };
  if (libError) return { error: libError };
  try {
    const l = declare(koffi.load(LIBBPF_SONAME), koffi.load('libc.so.6'));
    printCallback = koffi.register(onLibbpfPrint, koffi.pointer('fxh_libbpf_print_fn'));
    l.libbpf_set_print(printCallback);
    lib = l;
    return { lib };
  } catch (e) {
    libError = libLoadError(LIBBPF_SONAME, e);
    return { error: libError };
  }
}

function libLoadError(soPath: string, e: unknown): string {
  return `cannot load ${soPath}: ${(e as Error).message} (install it: apt-get install libbpf1)`;
}

/** Whether a shared library other than the default one loads (capability tests inject a path). */
function probeLibrary(soPath: string): string | null {
  if (soPath === LIBBPF_SONAME) {
    const r = tryLoadLib();
    return 'error' in r ? r.error : null;
  }
  try {
    koffi.load(soPath);
    return null;
  } catch (e) {
    return libLoadError(soPath, e);
  }
}

function L(): Lib {
  const r = tryLoadLib();
  if ('error' in r) throw new Error(r.error);
  return r.lib;
}

const LEVELS = ['warn', 'info', 'debug'];

function onLibbpfPrint(level: number, fmt: unknown, ap: unknown): number {
  // va_list is consumed once: format into a fixed 64 KiB scratch (verifier logs do not come through
  // here, they go to per-program log buffers; see BpfObject.load)
  const n = lib!.vsnprintf(printScratch, printScratch.length, fmt, ap);
  const text = printScratch.toString('utf8', 0, Math.max(0, Math.min(n, printScratch.length - 1))).trimEnd();
  const line = `${LEVELS[level] ?? level}: ${text}`;
  if (level <= 1) sink?.push(text);
  recent.push(line);
  if (recent.length > 200) recent.splice(0, recent.length - 200);
  if (process.env.FXH_LIBBPF_DEBUG) process.stderr.write(`libbpf ${line}\n`);
  return 0;
}

/** The last (up to 200) messages libbpf printed, for diagnostics. */
export function libbpfMessages(): string[] {
  return recent.slice();
}

function capture<T>(f: () => T): { value?: T; messages: string[]; error?: unknown } {
  const prev = sink;
  const mine: string[] = [];
  sink = mine;
  try {
    return { value: f(), messages: mine };
  } catch (error) {
    return { error, messages: mine };
  } finally {
    sink = prev;
  }
}

function errno(): number {
  return koffi.errno();
}

/** libbpf 1.x: int calls return -errno. */
function check(op: string, rc: number, detail?: string): number {
  if (rc < 0) throw new LibbpfError(op, -rc, detail);
  return rc;
}

/** libbpf 1.x: pointer calls return NULL and set errno. */
function checkPtr<T>(op: string, p: T | null, messages: string[] = []): T {
  if (p === null) throw new LibbpfError(op, errno() || 22, messages.join('; '));
  return p;
}

// ------------------------------------------------------------------------------------- capability

export type BpfCapability = { ok: true } | { ok: false; reason: string };

export interface CapabilityProbe {
  getuid: () => number;
  /** CapEff of this process (bit n = capability n) */
  capEff: () => bigint;
  libbpfPath: string;
  btfPath: string;
  /** 0 when a bpf() syscall (an XDP program probe) works, else the positive errno */
  probeSyscall: () => number;
}

const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

function readCapEff(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

function defaultProbe(): CapabilityProbe {
  return {
    getuid: () => process.getuid?.() ?? -1,
    capEff: readCapEff,
    libbpfPath: LIBBPF_SONAME,
    btfPath: VMLINUX_BTF,
    probeSyscall: () => {
      const r = L().libbpf_probe_bpf_prog_type(BPF_PROG_TYPE.XDP, null);
      if (r === 1) return 0;
      return r < 0 ? -r : 95; /* EOPNOTSUPP: the kernel rejected a trivial XDP program */
    },
  };
}

/**
 * Whether this process can load and run eBPF programs here. Checks, in order: root or CAP_BPF,
 * libbpf.so.1 loadable, the bpf() syscall (a trivial XDP program loads), kernel BTF.
 * Every part is injectable for tests.
 */
export function bpfCapability(probe: Partial<CapabilityProbe> = {}): BpfCapability {
  const p = { ...defaultProbe(), ...probe };
  const uid = p.getuid();
  if (uid !== 0) {
    const caps = p.capEff();
    const hasBpf = ((caps >> CAP_BPF) & 1n) === 1n || ((caps >> CAP_SYS_ADMIN) & 1n) === 1n;
    if (!hasBpf) {
      return { ok: false, reason: `not root (uid ${uid}) and no CAP_BPF/CAP_SYS_ADMIN: loading eBPF programs needs root (run as root, or grant CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN)` };
    }
  }
  const libProblem = probeLibrary(p.libbpfPath);
  if (libProblem) return { ok: false, reason: libProblem };
  let e: number;
  try {
    e = p.probeSyscall();
  } catch (err) {
    return { ok: false, reason: `bpf() syscall probe failed: ${(err as Error).message}` };
  }
  if (e === os.constants.errno.ENOSYS) return { ok: false, reason: 'the kernel has no bpf() syscall (CONFIG_BPF_SYSCALL is off): ENOSYS' };
  if (e === os.constants.errno.EPERM || e === os.constants.errno.EACCES) {
    return { ok: false, reason: `the bpf() syscall is denied (${errnoName(e)}): missing privileges, kernel lockdown or a seccomp filter` };
  }
  if (e !== 0) return { ok: false, reason: `the bpf() syscall is unavailable: a trivial XDP program does not load (${errnoName(e)})` };
  if (!fs.existsSync(p.btfPath)) return { ok: false, reason: `no kernel BTF at ${p.btfPath} (kernel built without CONFIG_DEBUG_INFO_BTF)` };
  return { ok: true };
}

// ------------------------------------------------------------------------------------- registry

/** Something this process attached, pinned or created in the kernel. detach() is idempotent. */
export interface AttachHandle {
  readonly description: string;
  readonly detached: boolean;
  detach(): void;
}

const registry = new Set<Handle>();
let nextSeq = 1;
let hooksInstalled = false;

class Handle implements AttachHandle {
  private release: (() => void) | null;
  /** creation order: detachAll releases newest first within an order class */
  readonly seq = nextSeq++;
  constructor(
    readonly description: string,
    /** lower first in detachAll: 0 links/attachments, 1 ring buffers, 2 pins, 3 cgroups, 4 objects */
    readonly order: number,
    release: () => void,
  ) {
    this.release = release;
    registry.add(this);
    installExitHooks();
  }
  get detached(): boolean {
    return this.release === null;
  }
  detach(): void {
    const r = this.release;
    if (r === null) return;
    this.release = null;
    registry.delete(this);
    r();
  }
}

/** Descriptions of everything currently attached, pinned or open (this process). */
export function attachedResources(): string[] {
  return [...registry].map((h) => h.description);
}

/** Releases everything in the registry (links first, objects last). Returns what it released; never throws. */
export function detachAll(): string[] {
  const done: string[] = [];
  const handles = [...registry].sort((a, b) => a.order - b.order || b.seq - a.seq);
  for (const h of handles) {
    try {
      h.detach();
      done.push(h.description);
    } catch (err) {
      done.push(`${h.description} (release failed: ${(err as Error).message})`);
    }
  }
  return done;
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => void detachAll());
  // A monitor, not a handler: it must not change what an uncaught exception does (print, exit 1).
  process.on('uncaughtExceptionMonitor', () => void detachAll());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      detachAll();
      // Listening to a signal disables Node's default action. When nobody else listens, restore it.
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}

// ------------------------------------------------------------------------------------- pins, cgroups

function ownName(suffix: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(suffix)) throw new Error(`bad name suffix ${JSON.stringify(suffix)} (use [A-Za-z0-9_.-])`);
  return `${NAME_PREFIX}-${process.pid}-${suffix}`;
}

/** /sys/fs/bpf/fxh-<pid>-<suffix>: the only place this process pins. */
export function pinPath(suffix: string): string {
  return path.join(BPFFS, ownName(suffix));
}

/** Pins any bpf fd (map, program, link) at pinPath(suffix); detach() unlinks it. */
export function pinFd(fd: number, suffix: string): AttachHandle & { path: string } {
  const p = pinPath(suffix);
  check(`bpf_obj_pin ${p}`, L().bpf_obj_pin(fd, p));
  const h = new Handle(`pin ${p}`, 2, () => fs.rmSync(p, { force: true }));
  return Object.assign(h, { path: p });
}

export interface Cgroup extends AttachHandle {
  readonly path: string;
  /** an O_RDONLY fd of the cgroup directory, for attach calls */
  readonly fd: number;
  /** moves a process into this cgroup */
  addProcess(pid: number): void;
}

/** Creates /sys/fs/cgroup/unified/fxh-<pid>-<suffix>; detach() moves its processes back to the root and removes it. */
export function createCgroup(suffix: string, root: string = CGROUP2_ROOT): Cgroup {
  const dir = path.join(root, ownName(suffix));
  fs.mkdirSync(dir);
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    fs.rmdirSync(dir);
    throw e;
  }
  const h = new Handle(`cgroup ${dir}`, 3, () => {
    try {
      fs.closeSync(fd);
    } catch {}
    emptyCgroup(dir, root);
    fs.rmdirSync(dir);
  });
  return Object.assign(h, {
    path: dir,
    fd,
    addProcess(pid: number): void {
      fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    },
  });
}

function emptyCgroup(dir: string, root: string): void {
  let procs: string[] = [];
  try {
    procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const pid of procs) {
    try {
      fs.writeFileSync(path.join(root, 'cgroup.procs'), pid);
    } catch {}
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface StaleOptions {
  bpffs?: string;
  cgroupRoot?: string;
  isAlive?: (pid: number) => boolean;
}

/**
 * Removes pins /sys/fs/bpf/fxh-<pid>-* and cgroups /sys/fs/cgroup/unified/fxh-<pid>-* whose pid is
 * dead (a crashed run). Returns one line per thing removed or that could not be removed.
 */
export function cleanupStale(opts: StaleOptions = {}): string[] {
  const bpffs = opts.bpffs ?? BPFFS;
  const cgRoot = opts.cgroupRoot ?? CGROUP2_ROOT;
  const alive = opts.isAlive ?? pidAlive;
  const report: string[] = [];
  const stale = (name: string): number | null => {
    const m = /^fxh-(\d+)-/.exec(name);
    if (!m) return null;
    const pid = Number(m[1]);
    return pid !== process.pid && !alive(pid) ? pid : null;
  };
  for (const name of safeReaddir(bpffs)) {
    const pid = stale(name);
    if (pid === null) continue;
    const p = path.join(bpffs, name);
    try {
      fs.rmSync(p, { recursive: true, force: true });
      report.push(`removed stale pin ${p} (pid ${pid} is gone)`);
    } catch (e) {
      report.push(`could not remove stale pin ${p}: ${(e as Error).message}`);
    }
  }
  for (const name of safeReaddir(cgRoot)) {
    const pid = stale(name);
    if (pid === null) continue;
    const p = path.join(cgRoot, name);
    try {
      if (!fs.statSync(p).isDirectory()) continue;
      emptyCgroup(p, cgRoot);
      fs.rmdirSync(p); // detaches the programs attached to it (bpf_prog_attach or links) as the cgroup dies
      report.push(`removed stale cgroup ${p} (pid ${pid} is gone)`);
    } catch (e) {
      report.push(`could not remove stale cgroup ${p}: ${(e as Error).message}`);
    }
  }
  return report;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

// ------------------------------------------------------------------------------------- tracefs

let tracefsMountedByUs = false;

/**
 * Makes sure tracefs is mounted at /sys/kernel/tracing (tracepoint and kprobe attach need it; it is
 * not mounted at boot here). Mounts it when missing and records that. It stays mounted on purpose:
 * a tracefs mount is a view of kernel state, owns nothing and holds nothing alive, so it is not a
 * leak, and unmounting it could break another tool that started using it meanwhile.
 */
export function ensureTracefs(): { path: string; mountedByUs: boolean; mountedNow: boolean } {
  if (fs.existsSync(path.join(TRACEFS, 'events'))) return { path: TRACEFS, mountedByUs: tracefsMountedByUs, mountedNow: false };
  const rc = L().mount('nodev', TRACEFS, 'tracefs', 0, null);
  if (rc !== 0) throw new LibbpfError(`mount -t tracefs nodev ${TRACEFS}`, errno());
  tracefsMountedByUs = true;
  return { path: TRACEFS, mountedByUs: true, mountedNow: true };
}

// ------------------------------------------------------------------------------------- BPF_PROG_RUN

export interface TestRunInput {
  /** packet (XDP/SCHED_CLS/SOCKET_FILTER) or other input data */
  dataIn: Uint8Array;
  /** optional context (e.g. struct xdp_md, struct __sk_buff) */
  ctxIn?: Uint8Array;
  /** room for data_out (default dataIn.length + 256, enough for XDP tail growth) */
  dataOutSize?: number;
  /** repetitions inside the kernel; durationNs is the average per repetition (default 1) */
  repeat?: number;
  flags?: number;
}

export interface TestRunResult {
  retval: number;
  /** a copy of the packet after the run */
  dataOut: Buffer;
  /** kernel-measured average duration of one run, ns */
  durationNs: number;
  ctxOut?: Buffer;
}

// struct bpf_test_run_opts (libbpf 1.1, 80 bytes): field offsets
const TR = { sz: 0, dataIn: 8, dataOut: 16, sizeIn: 24, sizeOut: 28, ctxIn: 32, ctxOut: 40, ctxSizeIn: 48, ctxSizeOut: 52, retval: 56, repeat: 60, duration: 64, flags: 68, cpu: 72, batch: 76 } as const;
const TR_SIZE = 80;

/**
 * BPF_PROG_RUN through bpf_prog_test_run_opts with the opts struct and the buffers in native memory
 * allocated once (koffi.alloc): a call costs one copy in, one copy out and the syscall. Marshalling a
 * JS object into the struct on every call instead costs ~4 µs more here.
 */
export class TestRunner {
  private mem: unknown;
  private view: Buffer;
  private readonly base: bigint;
  private freed = false;

  /** room for `maxData` bytes of data in and out, and `maxCtx` bytes of context in and out */
  constructor(
    readonly maxData = 64 * 1024,
    readonly maxCtx = 256,
  ) {
    L();
    const total = TR_SIZE + 2 * maxData + 2 * maxCtx;
    this.mem = koffi.alloc('uint8_t', total);
    this.base = koffi.address(this.mem);
    this.view = Buffer.from(koffi.view(this.mem, total));
  }

  run(progFd: number, input: TestRunInput): TestRunResult {
    if (this.freed) throw new Error('TestRunner is freed');
    const v = this.view;
    const n = input.dataIn.byteLength;
    const outSize = input.dataOutSize ?? n + 256;
    const ctxN = input.ctxIn?.byteLength ?? 0;
    if (n > this.maxData || outSize > this.maxData) throw new RangeError(`test run data of ${Math.max(n, outSize)} bytes > ${this.maxData} (TestRunner maxData)`);
    if (ctxN > this.maxCtx) throw new RangeError(`test run ctx of ${ctxN} bytes > ${this.maxCtx} (TestRunner maxCtx)`);
    const dIn = TR_SIZE, dOut = dIn + this.maxData, cIn = dOut + this.maxData, cOut = cIn + this.maxCtx;
    v.fill(0, 0, TR_SIZE);
    v.writeBigUInt64LE(BigInt(TR_SIZE), TR.sz);
    v.writeBigUInt64LE(this.base + BigInt(dIn), TR.dataIn);
    v.writeBigUInt64LE(this.base + BigInt(dOut), TR.dataOut);
    v.writeUInt32LE(n, TR.sizeIn);
    v.writeUInt32LE(outSize, TR.sizeOut);
    v.set(input.dataIn, dIn);
    if (input.ctxIn) {
      v.writeBigUInt64LE(this.base + BigInt(cIn), TR.ctxIn);
      v.writeBigUInt64LE(this.base + BigInt(cOut), TR.ctxOut);
      v.writeUInt32LE(ctxN, TR.ctxSizeIn);
      v.writeUInt32LE(ctxN, TR.ctxSizeOut);
      v.set(input.ctxIn, cIn);
    }
    v.writeInt32LE(input.repeat ?? 1, TR.repeat);
    v.writeUInt32LE(input.flags ?? 0, TR.flags);
    check(`bpf_prog_test_run_opts fd ${progFd}`, L().bpf_prog_test_run_opts(progFd, this.mem));
    const outN = Math.min(v.readUInt32LE(TR.sizeOut), outSize);
    const r: TestRunResult = {
      retval: v.readUInt32LE(TR.retval),
      dataOut: Buffer.from(v.subarray(dOut, dOut + outN)),
      durationNs: v.readUInt32LE(TR.duration),
    };
    if (input.ctxIn) r.ctxOut = Buffer.from(v.subarray(cOut, cOut + Math.min(v.readUInt32LE(TR.ctxSizeOut), ctxN)));
    return r;
  }

  /** Releases the native memory (not a kernel resource). Idempotent. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.view = Buffer.alloc(0);
    koffi.free(this.mem);
  }
}

let sharedRunner: TestRunner | null = null;

/** BPF_PROG_RUN (bpf_prog_test_run_opts) of a loaded program, through a shared TestRunner. */
export function progTestRun(progFd: number, input: TestRunInput): TestRunResult {
  const need = Math.max(input.dataIn.byteLength, input.dataOutSize ?? input.dataIn.byteLength + 256);
  const needCtx = input.ctxIn?.byteLength ?? 0;
  if (!sharedRunner || sharedRunner.maxData < need || sharedRunner.maxCtx < needCtx) {
    const old = sharedRunner;
    sharedRunner = new TestRunner(Math.max(need, old?.maxData ?? 64 * 1024), Math.max(needCtx, old?.maxCtx ?? 256));
    old?.free();
  }
  return sharedRunner.run(progFd, input);
}

// ------------------------------------------------------------------------------------- attach helpers

function linkHandle(desc: string, link: Ptr): AttachHandle & { fd: number; pin(suffix: string): AttachHandle & { path: string } } {
  const l = L();
  const h = new Handle(desc, 0, () => void l.bpf_link__destroy(link));
  return Object.assign(h, {
    fd: l.bpf_link__fd(link),
    pin(suffix: string): AttachHandle & { path: string } {
      return pinFd(l.bpf_link__fd(link), suffix);
    },
  });
}

export type LinkHandle = ReturnType<typeof linkHandle>;

/** bpf_prog_attach (the legacy, non-fd-based attachment: it outlives this process unless detached).
 *  Used for BPF_SK_MSG_VERDICT / BPF_SK_SKB_* on a sockmap/sockhash fd, or cgroup types. */
export function progAttach(progFd: number, targetFd: number, attachType: number, flags = 0): AttachHandle {
  const l = L();
  check(`bpf_prog_attach type ${attachType}`, l.bpf_prog_attach(progFd, targetFd, attachType, flags));
  return new Handle(`prog_attach prog fd ${progFd} -> fd ${targetFd} type ${attachType}`, 0, () => {
    const rc = l.bpf_prog_detach2(progFd, targetFd, attachType);
    if (rc < 0 && -rc !== os.constants.errno.ENOENT) throw new LibbpfError('bpf_prog_detach2', -rc);
  });
}

/** bpf_link_create: an fd-based attachment (e.g. BPF_CGROUP_SOCK_OPS on a cgroup fd) that the kernel
 *  releases when the last fd closes, including when this process dies. */
export function linkCreate(progFd: number, targetFd: number, attachType: number): AttachHandle & { fd: number } {
  const fd = check(`bpf_link_create type ${attachType}`, L().bpf_link_create(progFd, targetFd, attachType, null));
  const h = new Handle(`link fd ${fd}: prog fd ${progFd} -> fd ${targetFd} type ${attachType}`, 0, () => fs.closeSync(fd));
  return Object.assign(h, { fd });
}

// ------------------------------------------------------------------------------------- programs, maps

export class BpfProgram {
  private logBuf: Buffer | null = null;

  /** @internal */
  constructor(
    private readonly owner: BpfObject,
    /** @internal */ readonly ptr: Ptr,
    readonly name: string,
  ) {}

  /** the program's fd after load() (-1 before, or when autoload was off) */
  get fd(): number {
    return L().bpf_program__fd(this.ptr);
  }

  get type(): number {
    return L().bpf_program__type(this.ptr);
  }

  /** before load(): whether load() loads this program (default true) */
  setAutoload(on: boolean): this {
    check(`set_autoload ${this.name}`, L().bpf_program__set_autoload(this.ptr, on));
    return this;
  }

  /** @internal before load(): give the program its own verifier log buffer */
  setLog(size: number, level: number): void {
    this.logBuf = Buffer.alloc(size);
    check(`set_log_buf ${this.name}`, L().bpf_program__set_log_buf(this.ptr, this.logBuf, size));
    if (level) check(`set_log_level ${this.name}`, L().bpf_program__set_log_level(this.ptr, level));
  }

  /** the verifier log of the last load (with logLevel > 0 also for a successful load) */
  verifierLog(): string {
    if (!this.logBuf) return '';
    const end = this.logBuf.indexOf(0);
    return this.logBuf.toString('utf8', 0, end < 0 ? this.logBuf.length : end);
  }

  private link(op: string, p: Ptr | null): LinkHandle {
    return linkHandle(`${op} ${this.name} (${path.basename(this.owner.path)})`, checkPtr(`${op} ${this.name}`, p));
  }

  /** bpf_program__attach: attach as the SEC() name says (tracepoint/..., kprobe/..., ...) */
  attach(): LinkHandle {
    if (/^(tp|tracepoint|kprobe|kretprobe)\b/.test(this.owner.sectionHint(this.name))) ensureTracefs();
    return this.link('attach', L().bpf_program__attach(this.ptr));
  }

  attachTracepoint(category: string, name: string): LinkHandle {
    ensureTracefs();
    return this.link(`attach_tracepoint ${category}/${name}`, L().bpf_program__attach_tracepoint(this.ptr, category, name));
  }

  attachKprobe(fn: string, retprobe = false): LinkHandle {
    ensureTracefs();
    return this.link(`attach_kprobe ${fn}`, L().bpf_program__attach_kprobe(this.ptr, retprobe, fn));
  }

  /** bpf_link to a cgroup (cgroup_skb, sock_ops, ...): fd-based, released when this process dies */
  attachCgroup(cgroupFd: number): LinkHandle {
    return this.link(`attach_cgroup fd ${cgroupFd}`, L().bpf_program__attach_cgroup(this.ptr, cgroupFd));
  }

  attachXdp(ifindex: number): LinkHandle {
    return this.link(`attach_xdp ifindex ${ifindex}`, L().bpf_program__attach_xdp(this.ptr, ifindex));
  }

  testRun(input: TestRunInput): TestRunResult {
    return progTestRun(this.fd, input);
  }
}

export class BpfMap {
  readonly fd: number;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;

  /** @internal */
  constructor(
    readonly ptr: Ptr,
    readonly name: string,
  ) {
    const l = L();
    this.fd = l.bpf_map__fd(ptr);
    this.type = l.bpf_map__type(ptr);
    this.keySize = l.bpf_map__key_size(ptr);
    this.valueSize = l.bpf_map__value_size(ptr);
    this.maxEntries = l.bpf_map__max_entries(ptr);
  }

  /** size of a lookup result: per-CPU maps return one 8-byte-aligned value per possible CPU */
  get lookupSize(): number {
    if (!PERCPU_MAP_TYPES.has(this.type)) return this.valueSize;
    return Math.ceil(this.valueSize / 8) * 8 * L().libbpf_num_possible_cpus();
  }

  private key(k: Uint8Array): Buffer {
    if (k.byteLength !== this.keySize) throw new Error(`map ${this.name}: key of ${k.byteLength} bytes, want ${this.keySize}`);
    return Buffer.from(k.buffer, k.byteOffset, k.byteLength);
  }

  /** the value, or null when the key is absent */
  lookup(key: Uint8Array, into?: Buffer): Buffer | null {
    const v = into ?? Buffer.alloc(this.lookupSize);
    if (v.length < this.lookupSize) throw new Error(`map ${this.name}: value buffer of ${v.length} bytes, want ${this.lookupSize}`);
    const rc = L().bpf_map_lookup_elem(this.fd, this.key(key), v);
    if (rc === -os.constants.errno.ENOENT) return null;
    check(`lookup ${this.name}`, rc);
    return v;
  }

  /** flags: 0 BPF_ANY, 1 BPF_NOEXIST, 2 BPF_EXIST */
  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    if (value.byteLength !== this.lookupSize) throw new Error(`map ${this.name}: value of ${value.byteLength} bytes, want ${this.lookupSize}`);
    check(`update ${this.name}`, L().bpf_map_update_elem(this.fd, this.key(key), Buffer.from(value.buffer, value.byteOffset, value.byteLength), BigInt(flags)));
  }

  /** true when the key was there */
  delete(key: Uint8Array): boolean {
    const rc = L().bpf_map_delete_elem(this.fd, this.key(key));
    if (rc === -os.constants.errno.ENOENT) return false;
    check(`delete ${this.name}`, rc);
    return true;
  }

  keys(): Buffer[] {
    const out: Buffer[] = [];
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = L().bpf_map_get_next_key(this.fd, prev, next);
      if (rc === -os.constants.errno.ENOENT) return out;
      check(`get_next_key ${this.name}`, rc);
      out.push(next);
      prev = next;
    }
  }

  pin(suffix: string): AttachHandle & { path: string } {
    return pinFd(this.fd, suffix);
  }
}

// ------------------------------------------------------------------------------------- ring buffer

/** ring_buffer__new over a BPF_MAP_TYPE_RINGBUF map; `onSample` gets a copy of each record. */
export class RingBuffer {
  private readonly rb: Ptr;
  private readonly cb: unknown;
  private readonly handle: AttachHandle;

  constructor(map: BpfMap, onSample: (data: Buffer) => void | number) {
    const l = L();
    this.cb = koffi.register(
      (_ctx: unknown, data: unknown, size: number | bigint): number => {
        const r = onSample(Buffer.from(koffi.view(data, Number(size))).subarray(0));
        return typeof r === 'number' ? r : 0;
      },
      koffi.pointer('fxh_ring_buffer_sample_fn'),
    );
    const rb = l.ring_buffer__new(map.fd, this.cb, null, null);
    if (rb === null) {
      const e = errno();
      koffi.unregister(this.cb as never);
      throw new LibbpfError(`ring_buffer__new ${map.name}`, e || 22);
    }
    this.rb = rb;
    this.handle = new Handle(`ring buffer on ${map.name}`, 1, () => {
      l.ring_buffer__free(rb);
      koffi.unregister(this.cb as never);
    });
  }

  /** Waits up to timeoutMs (blocking this thread) and consumes; returns the number of records. */
  poll(timeoutMs: number): number {
    if (this.handle.detached) throw new Error('ring buffer is freed');
    return check('ring_buffer__poll', L().ring_buffer__poll(this.rb, timeoutMs));
  }

  /** Consumes what is there without waiting. */
  consume(): number {
    if (this.handle.detached) throw new Error('ring buffer is freed');
    return check('ring_buffer__consume', L().ring_buffer__consume(this.rb));
  }

  /** for an event loop: readable when records are there (e.g. koffi.node.poll(fd, cb) then consume()) */
  get epollFd(): number {
    return L().ring_buffer__epoll_fd(this.rb);
  }

  free(): void {
    this.handle.detach();
  }
}

// ------------------------------------------------------------------------------------- objects

export interface OpenOptions {
  /** only these programs are loaded (the others get autoload off); default: all */
  only?: readonly string[];
  /** per-program verifier log buffer size (default 256 KiB); the log of a rejection goes there */
  logSize?: number;
  /** verifier log level for every load: 0 (default: log only on rejection), 1, 2 (verbose), 4 (stats) */
  logLevel?: number;
}

export class BpfObject {
  private ptr: Ptr | null;
  private readonly handle: AttachHandle;
  private readonly progs = new Map<string, BpfProgram>();
  private readonly maps_ = new Map<string, BpfMap>();
  private sections: Map<string, string> | null = null;
  private loaded = false;

  private constructor(
    readonly path: string,
    ptr: Ptr,
    readonly openMessages: string[],
  ) {
    this.ptr = ptr;
    const l = L();
    this.handle = new Handle(`bpf object ${path}`, 4, () => l.bpf_object__close(ptr));
  }

  /** bpf_object__open_file: parses the ELF (no kernel objects yet). */
  static open(file: string, opts: OpenOptions = {}): BpfObject {
    const l = L();
    if (!fs.existsSync(file)) throw new LibbpfError(`open ${file}`, os.constants.errno.ENOENT, 'no such object file (build it: node bpf/build.mjs)');
    const c = capture(() => l.bpf_object__open_file(file, null));
    if (c.error) throw c.error;
    const obj = new BpfObject(file, checkPtr(`bpf_object__open_file ${file}`, c.value ?? null, c.messages), c.messages);
    try {
      for (let p = l.bpf_object__next_program(obj.ptr, null); p !== null; p = l.bpf_object__next_program(obj.ptr, p)) {
        const name = l.bpf_program__name(p);
        const prog = new BpfProgram(obj, p, name);
        obj.progs.set(name, prog);
        if (opts.only && !opts.only.includes(name)) prog.setAutoload(false);
        else prog.setLog(opts.logSize ?? 256 * 1024, opts.logLevel ?? 0);
      }
      for (const want of opts.only ?? []) obj.program(want);
    } catch (e) {
      obj.close();
      throw e;
    }
    return obj;
  }

  private live(): Ptr {
    if (this.ptr === null) throw new Error(`bpf object ${this.path} is closed`);
    return this.ptr;
  }

  get isLoaded(): boolean {
    return this.loaded;
  }

  /** Creates the maps and loads (verifies) the programs. A rejection throws VerifierError with the log. */
  load(): this {
    const ptr = this.live();
    const c = capture(() => L().bpf_object__load(ptr));
    if (c.error) throw c.error;
    const rc = c.value!;
    if (rc < 0) {
      const bad = [...this.progs.values()].find((p) => p.verifierLog().length > 0 && p.fd < 0);
      if (bad) throw new VerifierError(this.path, bad.name, -rc, bad.verifierLog(), c.messages);
      throw new LibbpfError(`load ${this.path}`, -rc, c.messages.join('\n'));
    }
    this.loaded = true;
    return this;
  }

  programs(): BpfProgram[] {
    this.live();
    return [...this.progs.values()];
  }

  program(name: string): BpfProgram {
    this.live();
    const p = this.progs.get(name);
    if (!p) throw new Error(`${path.basename(this.path)} has no program "${name}"; programs: ${[...this.progs.keys()].join(', ')}`);
    return p;
  }

  /** maps exist once the object is loaded */
  maps(): BpfMap[] {
    const l = L();
    const ptr = this.live();
    for (let m = l.bpf_object__next_map(ptr, null); m !== null; m = l.bpf_object__next_map(ptr, m)) {
      const name = l.bpf_map__name(m);
      if (!this.maps_.has(name)) this.maps_.set(name, new BpfMap(m, name));
    }
    return [...this.maps_.values()];
  }

  map(name: string): BpfMap {
    if (!this.loaded) throw new Error(`map ${name}: load ${path.basename(this.path)} first`);
    const cached = this.maps_.get(name);
    if (cached) return cached;
    const m = L().bpf_object__find_map_by_name(this.live(), name);
    if (m === null) throw new Error(`${path.basename(this.path)} has no map "${name}"; maps: ${this.maps().map((x) => x.name).join(', ')}`);
    const map = new BpfMap(m, name);
    this.maps_.set(name, map);
    return map;
  }

  /** @internal the ELF section (SEC()) of a program */
  sectionHint(name: string): string {
    if (!this.sections) {
      this.sections = new Map();
      for (const [n, p] of this.progs) this.sections.set(n, L().bpf_program__section_name(p.ptr));
    }
    return this.sections.get(name) ?? '';
  }

  /** Closes the object: its programs and maps go away with their last reference. Idempotent. */
  close(): void {
    if (this.ptr === null) return;
    this.ptr = null;
    this.handle.detach();
  }
}
