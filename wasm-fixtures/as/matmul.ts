// matmul (AssemblyScript): same input ("n seed"), same LCG, same uint32 wrap-around
// product and byte-identical output line as src/matmul.c:
//   "n=<n> sum=<u64 sum of C> xor=<xor of C>\n"
import { readAll, readLen, writeAll, putU64, putAscii } from "./wasi";

const OUT: usize = memory.data(128);

function isSpace(c: u32): bool {
  return c == 32 || c == 9 || c == 10 || c == 13;
}

let argN: u32 = 0;
let argSeed: u32 = 0;

/** Parse exactly two whitespace-separated u32 values into argN/argSeed; false if malformed. */
function parseArgs(p: usize, len: usize): bool {
  const end = p + len;
  let count = 0;
  while (true) {
    while (p < end && isSpace(load<u8>(p))) p++;
    if (p == end) return count == 2;
    let c = <u32>load<u8>(p);
    if (c < 48 || c > 57 || count == 2) return false;
    let v: u64 = 0;
    while (p < end) {
      c = <u32>load<u8>(p);
      if (c < 48 || c > 57) break;
      v = v * 10 + <u64>(c - 48);
      if (v > 0xffffffff) return false;
      p++;
    }
    if (p < end && !isSpace(load<u8>(p))) return false;
    if (count == 0) argN = <u32>v;
    else argSeed = <u32>v;
    count++;
  }
  return false;
}

export function fx_invoke(): i32 {
  const input = readAll();
  if (input == 0) return 1;
  const ok = parseArgs(input, readLen);
  heap.free(input);
  if (!ok || argN == 0 || argN > 4096) {
    const e = putAscii(OUT, "matmul: expected input \"n seed\" with 1 <= n <= 4096\n");
    writeAll(2, OUT, e - OUT);
    return 2;
  }
  const n = <usize>argN;
  let s = argSeed;
  const bytes = n * n * 4;
  const a = heap.alloc(bytes);
  const b = heap.alloc(bytes);
  const c = heap.alloc(bytes);
  memory.fill(c, 0, bytes);
  for (let p: usize = 0; p < bytes; p += 4) {
    s = s * 1664525 + 1013904223;
    store<u32>(a + p, s ^ (s >> 16));
  }
  for (let p: usize = 0; p < bytes; p += 4) {
    s = s * 1664525 + 1013904223;
    store<u32>(b + p, s ^ (s >> 16));
  }
  const row = n * 4;
  for (let i: usize = 0; i < n; i++) {
    const ci = c + i * row;
    for (let k: usize = 0; k < n; k++) {
      const aik = load<u32>(a + i * row + k * 4);
      const bk = b + k * row;
      for (let j: usize = 0; j < row; j += 4) {
        store<u32>(ci + j, load<u32>(ci + j) + aik * load<u32>(bk + j));
      }
    }
  }
  let sum: u64 = 0;
  let x: u32 = 0;
  for (let p: usize = 0; p < bytes; p += 4) {
    const v = load<u32>(c + p);
    sum += <u64>v;
    x ^= v;
  }
  heap.free(a);
  heap.free(b);
  heap.free(c);
  let e = putAscii(OUT, "n=");
  e = putU64(e, <u64>n);
  e = putAscii(e, " sum=");
  e = putU64(e, sum);
  e = putAscii(e, " xor=");
  e = putU64(e, <u64>x);
  e = putAscii(e, "\n");
  return writeAll(1, OUT, e - OUT) ? 0 : 1;
}
