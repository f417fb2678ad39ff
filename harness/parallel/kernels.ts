// The data-parallel kernels' inputs and their oracle. The input generator is the xorshift32 of
// wasm-fixtures/parallel/parallel_native.c, draw for draw, so the native runner generates the same
// input itself; every implementation's output is checked against `oracle` (bytes, or their FNV-1a 32).

export const KERNELS = ['reduce', 'histogram', 'matmul', 'spmv'] as const;
export type Kernel = (typeof KERNELS)[number];
export const NNZ_PER_ROW = 16;

export const KERNEL_INFO: Record<Kernel, { size: string; access: string }> = {
  reduce: { size: 'uint32 elements', access: 'sequential; sum into a uint64' },
  histogram: { size: 'bytes', access: 'sequential reads, data-dependent writes into 256 bins' },
  matmul: { size: 'n (n x n uint32 matrices)', access: 'dense, i-k-j order' },
  spmv: { size: `rows (${NNZ_PER_ROW} nonzeros per row, random columns)`, access: 'irregular: x[col[k]] gathers' },
};

export function isKernel(s: string): s is Kernel {
  return (KERNELS as readonly string[]).includes(s);
}

/** the named arrays a kernel reads, in the generator's order */
export interface KernelInput {
  kernel: Kernel;
  size: number;
  arrays: Record<string, Uint32Array | Uint8Array>;
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** the largest size each kernel accepts (memory and the native runner's limits) */
export const MAX_SIZE: Record<Kernel, number> = { reduce: 1 << 26, histogram: 1 << 28, matmul: 2048, spmv: 1 << 22 };

export function checkSize(kernel: Kernel, size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_SIZE[kernel]) {
    throw new RangeError(`${kernel}: size ${size} is not an integer in 1…${MAX_SIZE[kernel]} (${KERNEL_INFO[kernel].size})`);
  }
}

export function generate(kernel: Kernel, size: number, seed: number): KernelInput {
  checkSize(kernel, size);
  const rng = xorshift(seed);
  switch (kernel) {
    case 'reduce': {
      const a = new Uint32Array(size);
      for (let i = 0; i < size; i++) a[i] = rng();
      return { kernel, size, arrays: { a } };
    }
    case 'histogram': {
      const b = new Uint8Array(size);
      for (let i = 0; i < size; i++) b[i] = rng() >>> 24;
      return { kernel, size, arrays: { b } };
    }
    case 'matmul': {
      const A = new Uint32Array(size * size);
      const B = new Uint32Array(size * size);
      for (let i = 0; i < A.length; i++) A[i] = rng();
      for (let i = 0; i < B.length; i++) B[i] = rng();
      return { kernel, size, arrays: { A, B } };
    }
    case 'spmv': {
      const x = new Uint32Array(size);
      for (let i = 0; i < size; i++) x[i] = rng();
      const rp = new Uint32Array(size + 1);
      for (let r = 0; r <= size; r++) rp[r] = r * NNZ_PER_ROW;
      const col = new Uint32Array(size * NNZ_PER_ROW);
      const val = new Uint32Array(size * NNZ_PER_ROW);
      for (let k = 0; k < col.length; k++) {
        col[k] = rng() % size;
        val[k] = rng();
      }
      return { kernel, size, arrays: { rp, col, val, x } };
    }
  }
}

/** how many independent units (elements, bytes, rows) a kernel's work splits into */
export function units(kernel: Kernel, size: number): number {
  return size;
}

/** thread t's share [lo, hi) of `n` units over `threads` threads (the native runner splits alike) */
export function share(n: number, threads: number, t: number): [number, number] {
  return [Math.floor((n * t) / threads), Math.floor((n * (t + 1)) / threads)];
}

/** the expected output bytes: reduce a uint64 LE, histogram 256 uint32 LE, matmul C, spmv y */
export function oracle(input: KernelInput): Uint8Array {
  const { kernel, size, arrays } = input;
  switch (kernel) {
    case 'reduce': {
      const a = arrays.a as Uint32Array;
      let total = 0n;
      for (let i = 0; i < a.length; i += 1 << 20) {
        let s = 0;
        const end = Math.min(a.length, i + (1 << 20));
        for (let j = i; j < end; j++) s += a[j]!;
        total += BigInt(s);
      }
      const out = new Uint8Array(8);
      new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, total), true);
      return out;
    }
    case 'histogram': {
      const bins = new Uint32Array(256);
      for (const v of arrays.b as Uint8Array) bins[v]!++;
      return new Uint8Array(bins.buffer);
    }
    case 'matmul': {
      const A = arrays.A as Uint32Array;
      const B = arrays.B as Uint32Array;
      const C = new Uint32Array(size * size);
      const n = size;
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < n; k++) {
          const a = A[i * n + k]!;
          const bo = k * n;
          const co = i * n;
          for (let j = 0; j < n; j++) C[co + j] = (C[co + j]! + Math.imul(a, B[bo + j]!)) >>> 0;
        }
      }
      return new Uint8Array(C.buffer);
    }
    case 'spmv': {
      const { rp, col, val, x } = arrays as Record<string, Uint32Array>;
      const y = new Uint32Array(size);
      for (let r = 0; r < size; r++) {
        let s = 0;
        for (let k = rp![r]!; k < rp![r + 1]!; k++) s = (s + Math.imul(val![k]!, x![col![k]!]!)) >>> 0;
        y[r] = s;
      }
      return new Uint8Array(y.buffer);
    }
  }
}

export function fnv1a32(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
  return h >>> 0;
}

/** "expected" vs "got" for an error message: the first differing byte */
export function firstDifference(want: Uint8Array, got: Uint8Array): string {
  if (want.length !== got.length) return `${got.length} bytes, want ${want.length}`;
  for (let i = 0; i < want.length; i++) if (want[i] !== got[i]) return `byte ${i} is ${got[i]}, want ${want[i]}`;
  return 'identical';
}

/** One verified input and its expected output, built once per (kernel, size, seed). */
export interface Case {
  input: KernelInput;
  want: Uint8Array;
  wantHash: number;
}

export function makeCase(kernel: Kernel, size: number, seed: number): Case {
  const input = generate(kernel, size, seed);
  const want = oracle(input);
  return { input, want, wantHash: fnv1a32(want) };
}
