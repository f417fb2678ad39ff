// Small, exact edits of a module's binary before V8 compiles it:
// - cap the maximum of every defined memory, so memory.grow fails past the platform's limit;
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
    out.push({ id, start: next, end: next + size });
    o = next + size;
  }
  return out;
}

const MEMORY_SECTION = 5;

/** Returns the module with every defined memory's maximum at most `maxPages`; throws if a memory needs more to start. */
export function capMemory(bytes: Uint8Array, maxPages: number): Uint8Array {
  const mem = sections(bytes).find((s) => s.id === MEMORY_SECTION);
  if (!mem) return bytes;
  let o = mem.start;
  const { value: count, next } = readLeb(bytes, o);
  o = next;
  const payload: number[] = [...leb(count)];
  for (let i = 0; i < count; i++) {
    const flags = bytes[o++]!;
    if (flags & ~0x1) throw new ModuleFormatError(`memory ${i}: shared or 64-bit memories (flags ${flags}) are not supported`);
    const min = readLeb(bytes, o);
    o = min.next;
    let max = maxPages;
    if (flags & 1) {
      const m = readLeb(bytes, o);
      o = m.next;
      max = Math.min(m.value, maxPages);
    }
    if (min.value > maxPages) {
      throw new ModuleFormatError(`memory ${i} needs ${(min.value * WASM_PAGE) / 2 ** 20} MiB at start, over the ${(maxPages * WASM_PAGE) / 2 ** 20} MiB limit`);
    }
    payload.push(1, ...leb(min.value), ...leb(max));
  }
  const section = Uint8Array.from([MEMORY_SECTION, ...leb(payload.length), ...payload]);
  const headerStart = mem.start - leb(mem.end - mem.start).length - 1;
  const out = new Uint8Array(headerStart + section.length + (bytes.length - mem.end));
  out.set(bytes.subarray(0, headerStart), 0);
  out.set(section, headerStart);
  out.set(bytes.subarray(mem.end), headerStart + section.length);
  return out;
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
