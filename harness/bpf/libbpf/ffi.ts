// The koffi bindings of libbpf and libc, loaded lazily, and the capture of libbpf's messages.
import koffi from 'koffi';
import { LIBBPF_SONAME } from './consts.js';
import { LibbpfError } from './errors.js';

// opaque libbpf types
export type Ptr = unknown; // koffi external pointer

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
  bpf_obj_get_info_by_fd(fd: number, info: Buffer, len: Buffer): number;
  bpf_enable_stats(type: number): number;
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
    bpf_obj_get_info_by_fd: f('int bpf_obj_get_info_by_fd(int bpf_fd, void *info, void *info_len)'),
    bpf_enable_stats: f('int bpf_enable_stats(int type)'),
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
export function probeLibrary(soPath: string): string | null {
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

export function L(): Lib {
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

export function capture<T>(f: () => T): { value?: T; messages: string[]; error?: unknown } {
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

export function errno(): number {
  return koffi.errno();
}

/** libbpf 1.x: int calls return -errno. */
export function check(op: string, rc: number, detail?: string): number {
  if (rc < 0) throw new LibbpfError(op, -rc, detail);
  return rc;
}

/** libbpf 1.x: pointer calls return NULL and set errno. */
export function checkPtr<T>(op: string, p: T | null, messages: string[] = []): T {
  if (p === null) throw new LibbpfError(op, errno() || 22, messages.join('; '));
  return p;
}

