// Programs and maps of a loaded object.
import os from 'node:os';
import path from 'node:path';
import { LinkHandle, linkHandle } from './attach.js';
import { PERCPU_MAP_TYPES } from './consts.js';
import { L, Ptr, check, checkPtr } from './ffi.js';
import type { BpfObject } from './object.js';
import { AttachHandle } from './registry.js';
import { pinFd } from './resources.js';
import { TestRunInput, TestRunResult, progTestRun } from './test-run.js';
import { ensureTracefs } from './mounts.js';

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

