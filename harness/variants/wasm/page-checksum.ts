// fxh64: the per-page checksum of snapshot format 2. A child checks every page it pulls before the
// instance runs, so this is on the fork's critical path: per 4 KiB page, sha256 cost ~2-4 ms per MiB
// here, this ~0.2-0.3 ms. It detects corruption and truncation, not a forger (the header keeps its
// sha256, and the parent is trusted with the state anyway): each step of a lane,
// v = rotl(v + w * P2, 13) * P1, is a bijection in v and in the word w, so any one changed word
// changes the sum; several changed words collide with probability ~2^-32.
//
// Four 128-bit lanes of four u32 each run over each 64-byte block (word i of a block into lane i/4,
// slot i%4); at the end the lanes are combined per slot (a = ((a0*P3 + a1)*P3 + a2)*P3 + a3), mixed
// (xxh32's avalanche), and the halves folded: sum = (x0 ^ x2) | (x1 ^ x3) << 32. It runs as WASM SIMD
// on the instance's own memory (a module importing that memory, so pages are summed where they were
// written, without a copy); `referenceSum` is the same in plain JS, the oracle of the tests.

const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
/** the lanes' starting values: [lane][slot] */
const SEED = [
  [0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f],
  [0x165667b1, 0xd3a2646c, 0xfd7046c5, 0xb55a4f09],
  [0x7f4a7c15, 0x94d049bb, 0xbf58476d, 0x1ce4e5b9],
  [0x2545f491, 0x4f6cdd1d, 0x9fb21c65, 0xd6e8feb8],
];

export const PAGE_CHECKSUM = 'fxh64';

function checkLength(n: number): void {
  if (n <= 0 || n % 64 !== 0) throw new Error(`${PAGE_CHECKSUM}: a length of ${n} bytes is not a positive multiple of 64`);
}

/** The checksum in plain JS (the specification; the WASM one must agree), as a signed 64-bit value. */
export function referenceSum(bytes: Uint8Array): bigint {
  checkLength(bytes.length);
  const w = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const a = SEED.map((l) => l.map((v) => v | 0));
  for (let b = 0; b < bytes.length; b += 64) {
    for (let l = 0; l < 4; l++) {
      for (let s = 0; s < 4; s++) {
        const v = (a[l]![s]! + Math.imul(w.getUint32(b + l * 16 + s * 4, true), P2)) | 0;
        a[l]![s] = Math.imul((v << 13) | (v >>> 19), P1);
      }
    }
  }
  const x = [0, 1, 2, 3].map((s) => {
    let v = (Math.imul((Math.imul((Math.imul(a[0]![s]!, P3) + a[1]![s]!) | 0, P3) + a[2]![s]!) | 0, P3) + a[3]![s]!) | 0;
    v = Math.imul(v ^ (v >>> 15), P2);
    v = Math.imul(v ^ (v >>> 13), P3);
    return (v ^ (v >>> 16)) >>> 0;
  });
  return BigInt.asIntN(64, BigInt((x[0]! ^ x[2]!) >>> 0) | (BigInt((x[1]! ^ x[3]!) >>> 0) << 32n));
}

// The module, encoded here rather than built: one function sum(src, len) -> i64 over an imported memory.
const leb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const u32x4 = (v: readonly number[]): number[] => v.flatMap((x) => [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, x >>> 24]);
const SIMD = 0xfd;
const op = {
  get: (i: number) => [0x20, i],
  set: (i: number) => [0x21, i],
  tee: (i: number) => [0x22, i],
  i32: (n: number) => [0x41, ...leb(n)],
  i32add: [0x6a],
  i32ltu: [0x49],
  load: (offset: number) => [SIMD, 0x00, 4, ...leb(offset)],
  vconst: (v: readonly number[]) => [SIMD, 0x0c, ...u32x4(v)],
  splat: (c: number) => [SIMD, 0x0c, ...u32x4([c, c, c, c])],
  add: [SIMD, 0xae, 0x01],
  mul: [SIMD, 0xb5, 0x01],
  shl: [SIMD, 0xab, 0x01],
  shru: [SIMD, 0xad, 0x01],
  or: [SIMD, 0x50],
  xor: [SIMD, 0x51],
  swapHalves: [SIMD, 0x0d, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7],
  lane0: [SIMD, 0x1d, 0],
};
// locals: 0 src, 1 len, 2 end (i32); 3-6 lanes, 7 x (v128)
const END = 2;
const X = 7;
function body(): number[] {
  const code: number[] = [...op.get(0), ...op.get(1), ...op.i32add, ...op.set(END)];
  for (let l = 0; l < 4; l++) code.push(...op.vconst(SEED[l]!), ...op.set(3 + l));
  code.push(0x03, 0x40); // loop over 64-byte blocks
  for (let l = 0; l < 4; l++) {
    // lane = rotl(lane + load * P2, 13) * P1
    code.push(...op.get(3 + l), ...op.get(0), ...op.load(16 * l), ...op.splat(P2), ...op.mul, ...op.add, ...op.tee(X));
    code.push(...op.i32(13), ...op.shl, ...op.get(X), ...op.i32(19), ...op.shru, ...op.or, ...op.splat(P1), ...op.mul, ...op.set(3 + l));
  }
  code.push(...op.get(0), ...op.i32(64), ...op.i32add, ...op.tee(0), ...op.get(END), ...op.i32ltu, 0x0d, 0, 0x0b);
  code.push(...op.get(3), ...op.splat(P3), ...op.mul, ...op.get(4), ...op.add, ...op.splat(P3), ...op.mul, ...op.get(5), ...op.add, ...op.splat(P3), ...op.mul, ...op.get(6), ...op.add, ...op.set(X));
  for (const [shift, by] of [[15, P2], [13, P3]] as const) code.push(...op.get(X), ...op.get(X), ...op.i32(shift), ...op.shru, ...op.xor, ...op.splat(by), ...op.mul, ...op.set(X));
  code.push(...op.get(X), ...op.get(X), ...op.i32(16), ...op.shru, ...op.xor, ...op.tee(X), ...op.get(X), ...op.get(X), ...op.swapHalves, ...op.xor, ...op.lane0, 0x0b);
  const locals = [2, 1, 0x7f, 5, 0x7b];
  return [...leb(locals.length + code.length), ...locals, ...code];
}
const section = (id: number, content: number[]): number[] => [id, ...leb(content.length), ...content];
const name = (s: string): number[] => [s.length, ...Buffer.from(s, 'latin1')];

let compiled: WebAssembly.Module | null = null;
function module(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(
    new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7e]),
      ...section(2, [1, ...name('m'), ...name('memory'), 0x02, 0x00, 1]),
      ...section(3, [1, 0]),
      ...section(7, [1, ...name('sum'), 0x00, 0]),
      ...section(10, [1, ...body()]),
    ]),
  );
  return compiled;
}

type SumFn = (src: number, len: number) => bigint;
const summers = new WeakMap<WebAssembly.Memory, SumFn>();

/** A function summing `len` bytes at `offset` of this WASM memory in place (signed 64-bit, as stored). */
export function summer(memory: WebAssembly.Memory): SumFn {
  let f = summers.get(memory);
  if (!f) {
    const sum = new WebAssembly.Instance(module(), { m: { memory } }).exports.sum as SumFn;
    f = (offset, len) => {
      checkLength(len);
      if (offset < 0 || offset + len > memory.buffer.byteLength) throw new Error(`${PAGE_CHECKSUM}: [${offset}, ${offset + len}) is outside a memory of ${memory.buffer.byteLength} bytes`);
      return sum(offset, len);
    };
    summers.set(memory, f);
  }
  return f;
}

/** bytes summed per copy into the scratch memory: a bound on what it holds */
const SCRATCH_BYTES = 1 << 20;
let scratch: WebAssembly.Memory | null = null;

/** The checksums of consecutive `pageSize` pieces of `bytes` (copied into a scratch memory a piece at a time: for pages not in an instance). */
export function sumPages(bytes: Uint8Array, pageSize: number): BigInt64Array {
  checkLength(pageSize);
  if (bytes.length % pageSize) throw new Error(`${PAGE_CHECKSUM}: ${bytes.length} bytes are not whole pages of ${pageSize}`);
  scratch ??= new WebAssembly.Memory({ initial: SCRATCH_BYTES / 65536 });
  if (scratch.buffer.byteLength < pageSize) scratch.grow(Math.ceil((pageSize - scratch.buffer.byteLength) / 65536));
  const room = Math.max(pageSize, SCRATCH_BYTES - (SCRATCH_BYTES % pageSize));
  const sum = summer(scratch);
  const out = new BigInt64Array(bytes.length / pageSize);
  for (let o = 0; o < bytes.length; o += room) {
    const piece = bytes.subarray(o, Math.min(bytes.length, o + room));
    new Uint8Array(scratch.buffer).set(piece);
    for (let x = 0; x < piece.length; x += pageSize) out[(o + x) / pageSize] = sum(x, pageSize);
  }
  return out;
}
