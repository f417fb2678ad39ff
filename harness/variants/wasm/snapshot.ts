// The engine's snapshot and restore steps. A module prepared for forking exports its mutable globals
// and tables (module-globals.ts); its initial image is the memory of a fresh instance before
// _initialize runs (data segments over zeroed memory). A snapshot keeps the pages that differ from it;
// a fork is a fresh, uninitialised instance with those pages (dirty) or the whole image (eager)
// written over its memory and the globals set: initialisation does not run again.
import { InvokeError } from '../../platform/variant.js';
import { createHash } from 'node:crypto';
import { compile, instantiate, loadBytes, type Live, type WasmCode } from './engine.js';
import { exportState, type ExportedGlobal } from './module-globals.js';
import { SNAPSHOT_VERSION, SnapshotError, type Snapshot, type SnapshotMeta } from './snapshot-format.js';
import { WASM_PAGE } from './module-edit.js';

export type CopyMode = 'eager' | 'dirty';
export const COPY_MODES: readonly CopyMode[] = ['eager', 'dirty'];
export const DEFAULT_PAGE_SIZE = 4096;

/** A module ready to snapshot and fork: compiled once, with its initial image. */
export interface ForkImage {
  code: WasmCode;
  maxPages: number;
  /** the bytes instantiated (capped, state exported) and their sha256 (hex) */
  bytes: Uint8Array;
  sha256: string;
  module: WebAssembly.Module;
  globals: ExportedGlobal[];
  tables: string[];
  /** memory of a fresh instance before _initialize */
  initial: Uint8Array;
  initialTables: (number | null)[][];
}

export function prepareImage(code: WasmCode, maxPages: number): ForkImage {
  const capped = loadBytes(code, maxPages);
  let st: ReturnType<typeof exportState>;
  try {
    st = exportState(capped);
  } catch (e) {
    throw new InvokeError('invalid-module', `${code.name}: cannot expose its state for snapshots: ${(e as Error).message}`);
  }
  const module = compile(code, st.bytes);
  const fresh = instantiate(code, module, maxPages, false);
  return {
    code,
    maxPages,
    bytes: st.bytes,
    sha256: createHash('sha256').update(st.bytes).digest('hex'),
    module,
    globals: st.globals,
    tables: st.tables,
    initial: new Uint8Array(fresh.memory.buffer.slice(0)),
    initialTables: readTables(fresh, st.tables),
  };
}

/** An initialised instance of the prepared module (the parent). */
export function instantiateParent(img: ForkImage): Live {
  return instantiate(img.code, img.module, img.maxPages);
}

// V8 names an exported WebAssembly function by its index in the module's function space.
function readTables(live: Live, names: string[]): (number | null)[][] {
  return names.map((n) => {
    const t = live.instance.exports[n] as WebAssembly.Table;
    const out: (number | null)[] = [];
    for (let i = 0; i < t.length; i++) {
      const f = t.get(i) as { name?: string } | null;
      out.push(f === null ? null : Number(f.name));
    }
    return out;
  });
}

/** Whether `live`'s tables are still the module's own (a call could have changed them). */
export function tablesIntact(img: ForkImage, live: Live): boolean {
  return readTables(live, img.tables).every((entries, t) => entries.length === img.initialTables[t]!.length && entries.every((e, j) => e === img.initialTables[t]![j]));
}

const WASI_FDS = [
  { fd: 0, kind: 'stdin (the call input)' },
  { fd: 1, kind: 'stdout (the call output)' },
  { fd: 2, kind: 'stderr' },
];

/** Snapshot of `live` (an instance of `img`) after it served `calls` calls. */
export function takeSnapshot(img: ForkImage, live: Live, calls: number, pageSize = DEFAULT_PAGE_SIZE): Snapshot {
  const tables = readTables(live, img.tables);
  tables.forEach((entries, t) => {
    const was = img.initialTables[t]!;
    const i = entries.findIndex((e, j) => e !== was[j]);
    if (entries.length !== was.length || i >= 0) {
      throw new SnapshotError(`${img.code.name}: table ${t} changed at run time (${i >= 0 ? `entry ${i}: function ${was[i]} -> ${entries[i]}` : `length ${was.length} -> ${entries.length}`}); restoring function references is not supported`);
    }
  });
  const mem = Buffer.from(live.memory.buffer);
  const init = Buffer.from(img.initial.buffer, img.initial.byteOffset, img.initial.byteLength);
  const zero = Buffer.alloc(pageSize);
  const dirty: number[] = [];
  for (let i = 0, o = 0; o < mem.length; i++, o += pageSize) {
    const base = o < init.length ? init.subarray(o, o + pageSize) : zero;
    if (!mem.subarray(o, o + pageSize).equals(base)) dirty.push(i);
  }
  const data = new Uint8Array(dirty.length * pageSize);
  dirty.forEach((p, k) => data.set(mem.subarray(p * pageSize, (p + 1) * pageSize), k * pageSize));
  const meta: SnapshotMeta = {
    module: img.code.name,
    calls,
    wasi: { args: [...live.host.args], env: {}, fds: WASI_FDS },
    tables: tables.map((entries) => ({ length: entries.length, entries })),
  };
  return {
    version: SNAPSHOT_VERSION,
    moduleSha256: img.sha256,
    pageSize,
    memoryBytes: mem.length,
    globals: img.globals.map((g) => ({ index: g.index, type: g.type, value: (live.instance.exports[g.exportName] as WebAssembly.Global).value as number | bigint })),
    pages: Uint32Array.from(dirty),
    data,
    meta,
  };
}

const checked = new WeakMap<Snapshot, ForkImage>();

/** Refuses a snapshot that `img` cannot restore, naming why. Checked once per (snapshot, image). */
export function checkRestorable(img: ForkImage, s: Snapshot): void {
  if (checked.get(s) === img) return;
  if (s.moduleSha256 !== img.sha256) {
    throw new SnapshotError(`snapshot of module "${s.meta.module}" (sha256 ${s.moduleSha256.slice(0, 16)}…) cannot restore into "${img.code.name}" (sha256 ${img.sha256.slice(0, 16)}…): the module hash differs`);
  }
  if (s.memoryBytes > img.maxPages * WASM_PAGE) throw new SnapshotError(`snapshot memory of ${s.memoryBytes} bytes exceeds the module's maximum`);
  if (Object.keys(s.meta.wasi.env).length) throw new SnapshotError('snapshot has WASI environment variables; this host provides none');
  const fds = s.meta.wasi.fds.map((f) => f.fd).join(',');
  if (fds !== '0,1,2') throw new SnapshotError(`snapshot has WASI descriptors ${fds} open; this host restores only 0,1,2`);
  if (s.globals.length !== img.globals.length || s.globals.some((g, i) => g.index !== img.globals[i]!.index || g.type !== img.globals[i]!.type)) {
    throw new SnapshotError('snapshot globals do not match the module\'s mutable globals');
  }
  s.meta.tables.forEach((t, i) => {
    const want = img.initialTables[i];
    if (!want || t.entries.length !== want.length || t.entries.some((e, j) => e !== want[j])) throw new SnapshotError(`snapshot table ${i} differs from the module's own`);
  });
  checked.set(s, img);
}

/** A fresh, uninitialised instance with memory grown to `memoryBytes`. */
export function freshInstance(img: ForkImage, args: string[], memoryBytes: number): Live {
  const live = instantiate(img.code, img.module, img.maxPages, false, args);
  const grow = memoryBytes / WASM_PAGE - live.memory.buffer.byteLength / WASM_PAGE;
  if (grow > 0) live.memory.grow(grow);
  return live;
}

const images = new WeakMap<Snapshot, Uint8Array>();

/** The snapshot's whole memory image (initial image, zeroes, and its pages over them), built once. */
export function fullImage(img: ForkImage, s: Snapshot): Uint8Array {
  let m = images.get(s);
  if (!m) {
    m = new Uint8Array(s.memoryBytes);
    m.set(img.initial.subarray(0, Math.min(img.initial.length, s.memoryBytes)));
    writePages(m, s);
    images.set(s, m);
  }
  return m;
}

/** Hands each run of consecutive snapshot pages to `put`: its bytes, and their offset in memory. */
export function forEachPageRun(s: Pick<Snapshot, 'pages' | 'pageSize' | 'data'>, put: (bytes: Uint8Array, memoryOffset: number) => void): void {
  const { pages, pageSize: P, data } = s;
  let k = 0;
  while (k < pages.length) {
    let e = k + 1;
    while (e < pages.length && pages[e] === pages[e - 1]! + 1) e++;
    put(data.subarray(k * P, e * P), pages[k]! * P);
    k = e;
  }
}

/** Writes the snapshot's pages into `mem`, a run of consecutive pages at a time. */
function writePages(mem: Uint8Array, s: Snapshot): void {
  forEachPageRun(s, (bytes, at) => mem.set(bytes, at));
}

/**
 * A child of the snapshot: `target` (a fresh instance from freshInstance or a pool, never run) gets the
 * snapshot's memory and globals. `eager` copies every byte of the image, `dirty` only the pages that
 * differ from the initial image, which the fresh instance already holds.
 */
export function restoreInto(img: ForkImage, s: Snapshot, copy: CopyMode, target: Live): Live {
  checkRestorable(img, s);
  if (target.memory.buffer.byteLength !== s.memoryBytes) throw new SnapshotError(`internal: target memory ${target.memory.buffer.byteLength} bytes, snapshot ${s.memoryBytes}`);
  const mem = new Uint8Array(target.memory.buffer);
  if (copy === 'eager') mem.set(fullImage(img, s));
  else writePages(mem, s);
  setGlobals(img, s, target);
  return target;
}

/** Sets every mutable global of `target` to the snapshot's (or a decoded header's) value. */
export function setGlobals(img: ForkImage, s: Pick<Snapshot, 'globals'>, target: Live): void {
  for (let i = 0; i < s.globals.length; i++) (target.instance.exports[img.globals[i]!.exportName] as WebAssembly.Global).value = s.globals[i]!.value;
}

/** fork = a fresh instance + restoreInto. */
export function fork(img: ForkImage, s: Snapshot, copy: CopyMode): Live {
  checkRestorable(img, s);
  return restoreInto(img, s, copy, freshInstance(img, s.meta.wasi.args, s.memoryBytes));
}
