// Module rewrite for snapshots: export every mutable global the module defines (clang/wasm-ld keep
// __stack_pointer internal) and every table, so a host can read and restore an instance's state.
import { ModuleFormatError, leb, sections } from './module-edit.js';

const IMPORT = 2;
const TABLE = 4;
const GLOBAL = 6;
const EXPORT = 7;
// Standard section order (custom sections 0 may sit anywhere); the tag section 13 goes before globals.
const ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

export type GlobalType = 'i32' | 'i64' | 'f32' | 'f64';
const VALTYPES: Record<number, GlobalType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64' };
export const GLOBAL_TYPE_CODE: Record<GlobalType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c };

export interface ExportedGlobal {
  /** index in the module's global index space (imports first) */
  index: number;
  type: GlobalType;
  /** the export name under which the rewritten module exposes it */
  exportName: string;
}

export const GLOBAL_EXPORT_PREFIX = 'fxh.global.';
export const TABLE_EXPORT_PREFIX = 'fxh.table.';

class Reader {
  constructor(
    readonly b: Uint8Array,
    public o: number,
  ) {}
  byte(): number {
    if (this.o >= this.b.length) throw new ModuleFormatError(`truncated module at byte ${this.o}`);
    return this.b[this.o++]!;
  }
  u(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const x = this.byte();
      v += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) return v;
      shift += 7;
      if (shift > 63) throw new ModuleFormatError(`LEB128 too long at byte ${this.o}`);
    }
  }
  skip(n: number): void {
    this.o += n;
  }
  name(): string {
    const n = this.u();
    const s = Buffer.from(this.b.subarray(this.o, this.o + n)).toString('utf8');
    this.o += n;
    return s;
  }
  limits(): void {
    const flags = this.byte();
    this.u();
    if (flags & 1) this.u();
  }
  /** a constant expression, up to and including its `end` */
  constExpr(): void {
    for (;;) {
      const op = this.byte();
      if (op === 0x0b) return;
      if (op === 0x41 || op === 0x42 || op === 0x23 || op === 0xd2) this.u(); // i32/i64.const (sLEB: same bytes), global.get, ref.func
      else if (op === 0x43) this.skip(4);
      else if (op === 0x44) this.skip(8);
      else if (op === 0xd0) this.byte(); // ref.null t
      else if (op === 0xfd) {
        this.u();
        this.skip(16); // v128.const
      } else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) throw new ModuleFormatError(`unsupported opcode 0x${op.toString(16)} in a constant expression at byte ${this.o - 1}`);
    }
  }
}

interface ImportCounts {
  globals: number;
  tables: number;
}

function importCounts(bytes: Uint8Array): ImportCounts {
  const s = sections(bytes).find((x) => x.id === IMPORT);
  const out = { globals: 0, tables: 0 };
  if (!s) return out;
  const r = new Reader(bytes, s.start);
  const n = r.u();
  for (let i = 0; i < n; i++) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0) r.u();
    else if (kind === 1) {
      r.byte();
      r.limits();
      out.tables++;
    } else if (kind === 2) r.limits();
    else if (kind === 3) {
      r.byte();
      r.byte();
      out.globals++;
    } else if (kind === 4) {
      r.byte();
      r.u();
    } else throw new ModuleFormatError(`import ${i}: unknown kind ${kind}`);
  }
  return out;
}

/** The module's own mutable globals (imported ones belong to the host, which keeps them anyway). */
export function mutableGlobals(bytes: Uint8Array): { index: number; type: GlobalType }[] {
  const s = sections(bytes).find((x) => x.id === GLOBAL);
  if (!s) return [];
  const base = importCounts(bytes).globals;
  const r = new Reader(bytes, s.start);
  const n = r.u();
  const out: { index: number; type: GlobalType }[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.byte();
    const mut = r.byte();
    r.constExpr();
    if (mut !== 1) continue;
    const type = VALTYPES[t];
    if (!type) throw new ModuleFormatError(`global ${base + i}: a mutable global of type 0x${t.toString(16)} (a reference or vector) cannot be snapshotted`);
    out.push({ index: base + i, type });
  }
  return out;
}

function exportNames(bytes: Uint8Array): { names: Map<string, { kind: number; index: number }>; count: number } {
  const s = sections(bytes).find((x) => x.id === EXPORT);
  const names = new Map<string, { kind: number; index: number }>();
  if (!s) return { names, count: 0 };
  const r = new Reader(bytes, s.start);
  const count = r.u();
  for (let i = 0; i < count; i++) {
    const name = r.name();
    const kind = r.byte();
    names.set(name, { kind, index: r.u() });
  }
  return { names, count };
}

/** The number of tables the module defines (after the imported ones). */
function definedTables(bytes: Uint8Array): { first: number; count: number } {
  const s = sections(bytes).find((x) => x.id === TABLE);
  return { first: importCounts(bytes).tables, count: s ? new Reader(bytes, s.start).u() : 0 };
}

export interface StateExports {
  bytes: Uint8Array;
  globals: ExportedGlobal[];
  /** export names of the tables the module defines, by table index order */
  tables: string[];
}

/**
 * Returns the module with every mutable global it defines exported as `fxh.global.<index>` and every
 * table it defines as `fxh.table.<index>` (already exported ones keep their name), so a host can
 * read and restore them. Nothing else changes.
 */
export function exportState(bytes: Uint8Array): StateExports {
  const globals = mutableGlobals(bytes);
  const { names, count } = exportNames(bytes);
  const existing = (kind: number, index: number) => [...names].find(([, e]) => e.kind === kind && e.index === index)?.[0];
  const added: number[] = [];
  let extra = 0;
  const want = (kind: number, index: number, prefix: string): string => {
    const have = existing(kind, index);
    if (have) return have;
    const name = `${prefix}${index}`;
    if (names.has(name)) throw new ModuleFormatError(`the module already exports "${name}" as something else`);
    const nb = Buffer.from(name);
    added.push(...leb(nb.length), ...nb, kind, ...leb(index));
    extra++;
    return name;
  };
  const outGlobals = globals.map((g) => ({ ...g, exportName: want(3, g.index, GLOBAL_EXPORT_PREFIX) }));
  const t = definedTables(bytes);
  const tables = Array.from({ length: t.count }, (_, i) => want(1, t.first + i, TABLE_EXPORT_PREFIX));
  if (!extra) return { bytes, globals: outGlobals, tables };
  const all = sections(bytes);
  const old = all.find((x) => x.id === EXPORT);
  const body = old ? [...leb(count + extra), ...bytes.subarray(old.start + leb(count).length, old.end), ...added] : [...leb(extra), ...added];
  const section = Uint8Array.from([EXPORT, ...leb(body.length), ...body]);
  let from: number;
  let to: number;
  if (old) {
    from = old.start - leb(old.end - old.start).length - 1;
    to = old.end;
  } else {
    const next = all.find((x) => x.id !== 0 && (ORDER[x.id] ?? 99) > ORDER[EXPORT]!);
    from = to = next ? next.start - leb(next.end - next.start).length - 1 : bytes.length;
  }
  const res = new Uint8Array(from + section.length + bytes.length - to);
  res.set(bytes.subarray(0, from), 0);
  res.set(section, from);
  res.set(bytes.subarray(to), from + section.length);
  return { bytes: res, globals: outGlobals, tables };
}
