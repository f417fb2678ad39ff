// Small, exact edits of a module's binary before V8 compiles it:
// - cap the maximum of every memory (defined or imported, shared or not), so memory.grow fails past the platform's limit;
// - append a custom section, so V8 cannot hand back an already compiled copy of identical bytes.
export const WASM_PAGE = 65536;

export class ModuleFormatError extends Error {
  override name = 'ModuleFormatError';
}

function readLeb(buf: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let shift = 0;
  let o = at;
  for (;;) {
    if (o >= buf.length) throw new ModuleFormatError(`truncated LEB128 at byte ${at}`);
    const b = buf[o++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return { value, next: o };
    shift += 7;
    if (shift > 35) throw new ModuleFormatError(`LEB128 too long at byte ${at}`);
  }
}

/** unsigned LEB128 encoding of `n` */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

interface Section {
  id: number;
  /** of the section id byte */
  header: number;
  start: number; // of the payload
  end: number;
}

export function sections(bytes: Uint8Array): Section[] {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new ModuleFormatError('not a WebAssembly module: missing the \\0asm magic number');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw new ModuleFormatError('unsupported WebAssembly binary version');
  const out: Section[] = [];
  let o = 8;
  while (o < bytes.length) {
    const id = bytes[o]!;
    const { value: size, next } = readLeb(bytes, o + 1);
    if (next + size > bytes.length) throw new ModuleFormatError(`section ${id} runs past the end of the module`);
    out.push({ id, header: o, start: next, end: next + size });
    o = next + size;
  }
  return out;
}

const IMPORT_SECTION = 2;
const MEMORY_SECTION = 5;
const LIMITS_MAX = 0x1;
const LIMITS_SHARED = 0x2;

/** memory limits at `o` with the maximum at most `maxPages`; a shared memory stays shared (it always has a maximum) */
function cappedLimits(bytes: Uint8Array, o: number, what: string, maxPages: number): { payload: number[]; next: number } {
  const flags = bytes[o++]!;
  if (flags & ~(LIMITS_MAX | LIMITS_SHARED)) throw new ModuleFormatError(`${what}: 64-bit memories (flags ${flags}) are not supported`);
  const min = readLeb(bytes, o);
  o = min.next;
  let max = maxPages;
  if (flags & LIMITS_MAX) {
    const m = readLeb(bytes, o);
    o = m.next;
    max = Math.min(m.value, maxPages);
  }
  if (min.value > maxPages) {
    throw new ModuleFormatError(`${what} needs ${(min.value * WASM_PAGE) / 2 ** 20} MiB at start, over the ${(maxPages * WASM_PAGE) / 2 ** 20} MiB limit`);
  }
  return { payload: [LIMITS_MAX | (flags & LIMITS_SHARED), ...leb(min.value), ...leb(max)], next: o };
}

function skipName(bytes: Uint8Array, o: number): number {
  const n = readLeb(bytes, o);
  return n.next + n.value;
}

/** the import section with every imported memory's maximum capped (the host's memory must then fit under it) */
function capImports(bytes: Uint8Array, sec: Section, maxPages: number): number[] {
  let o = sec.start;
  const { value: count, next } = readLeb(bytes, o);
  o = next;
  const payload: number[] = [...leb(count)];
  for (let i = 0; i < count; i++) {
    const from = o;
    o = skipName(bytes, skipName(bytes, o));
    const kind = bytes[o++]!;
    if (kind === 2) {
      payload.push(...bytes.subarray(from, o));
      const c = cappedLimits(bytes, o, `imported memory ${i}`, maxPages);
      payload.push(...c.payload);
      o = c.next;
      continue;
    }
    if (kind === 0) o = readLeb(bytes, o).next;
    else if (kind === 1) {
      const fl = bytes[o + 1]!;
      o = readLeb(bytes, o + 2).next;
      if (fl & 1) o = readLeb(bytes, o).next;
    } else if (kind === 3) o += 2;
    else if (kind === 4) o = readLeb(bytes, o + 1).next;
    else throw new ModuleFormatError(`import ${i}: unknown kind ${kind}`);
    payload.push(...bytes.subarray(from, o));
  }
  return payload;
}

function capDefined(bytes: Uint8Array, sec: Section, maxPages: number): number[] {
  let o = sec.start;
  const { value: count, next } = readLeb(bytes, o);
  o = next;
  const payload: number[] = [...leb(count)];
  for (let i = 0; i < count; i++) {
    const c = cappedLimits(bytes, o, `memory ${i}`, maxPages);
    payload.push(...c.payload);
    o = c.next;
  }
  return payload;
}

/**
 * Returns the module with every memory's maximum at most `maxPages`, defined or imported, shared or
 * not; throws if a memory needs more to start. An imported memory's host memory must then have a
 * maximum within the cap, or instantiation fails.
 */
export function capMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  const edits = sections(bytes)
    .filter((s) => s.id === MEMORY_SECTION || s.id === IMPORT_SECTION)
    .map((s) => ({ s, payload: s.id === MEMORY_SECTION ? capDefined(bytes, s, maxPages) : capImports(bytes, s, maxPages) }));
  if (!edits.length) return bytes;
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const { s, payload } of edits) {
    parts.push(bytes.subarray(at, s.header), Uint8Array.from([s.id, ...leb(payload.length), ...payload]));
    at = s.end;
  }
  parts.push(bytes.subarray(at));
  return Buffer.concat(parts);
}

/** Appends a custom section named "fxh.nonce" holding `nonce`. */
export function withNonce(bytes: Uint8Array, nonce: number): Uint8Array {
  const name = Buffer.from('fxh.nonce');
  const body = [...leb(name.length), ...name, ...leb(nonce)];
  const section = [0, ...leb(body.length), ...body];
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes, 0);
  out.set(section, bytes.length);
  return out;
}
