// Opening, verifying and loading an object file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LibbpfError, VerifierError } from './errors.js';
import { L, Ptr, capture, checkPtr } from './ffi.js';
import { BpfMap, BpfProgram } from './program-map.js';
import { AttachHandle, Handle } from './registry.js';

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

