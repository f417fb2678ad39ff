// The parallel kernels on every substrate, with the real engines: the native pthreads runner, V8
// (scalar, SIMD128, worker threads over a shared memory), eBPF through BPF_PROG_RUN. Every output is
// held against the one JS oracle; a thread that traps takes down its own instance only; the memory
// cap holds for shared memories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { bpfCapability } from '../harness/bpf/libbpf/capability.js';
import { KERNELS, fnv1a32, makeCase, firstDifference, generate, oracle, type Kernel } from '../harness/parallel/kernels.js';
import { runNative } from '../harness/parallel/native.js';
import { WasmSingle } from '../harness/parallel/wasm-single.js';
import { ThreadedInstance, ThreadTrapError } from '../harness/parallel/wasm-threads.js';
import { EbpfParallel } from '../harness/parallel/ebpf.js';
import { SpawnInstance } from '../harness/parallel/thread-spawn.js';
import { kernelModule, kernelsWasm } from '../harness/parallel/wasm-module.js';
import { capMemory, WASM_PAGE } from '../harness/variants/wasm/module-edit.js';
import { defaultThreads, paramsOf, parseSizes } from '../harness/experiments/parallel.js';

// sizes that split unevenly over 3 threads and, for eBPF, end inside a 4 KiB chunk
const SIZES: Record<Kernel, number[]> = { reduce: [1, 5003], histogram: [7, 9001], matmul: [5, 33], spmv: [3, 1001] };
const CAP = 4096; // 256 MiB

test('every implementation of every kernel gives the oracle\'s output, on every size and thread count', async (t) => {
  const bpf = bpfCapability();
  if (!bpf.ok) t.diagnostic(`eBPF not checked here: ${bpf.reason}`);
  for (const kernel of KERNELS) {
    for (const size of SIZES[kernel]) {
      const c = makeCase(kernel, size, 7);
      const what = `${kernel} ${size}`;
      for (const threads of [1, 3]) {
        const n = await runNative(kernel, size, threads, 2, 7);
        assert.equal(n.hash, c.wantHash, `native ${what} threads ${threads}`);
        assert.equal(n.ns.length, 2);
        const ti = await ThreadedInstance.create(c, threads, CAP);
        try {
          ti.run();
          assert.equal(firstDifference(c.want, ti.output()), 'identical', `wasm-threads ${what} threads ${threads}`);
        } finally {
          await ti.close();
        }
        const si = await SpawnInstance.create(c, threads, CAP);
        try {
          si.run();
          si.run();
          assert.equal(firstDifference(c.want, si.output()), 'identical', `wasm-threads (thread-spawn) ${what} threads ${threads}`);
        } finally {
          await si.close();
        }
        if (bpf.ok) {
          const e = await EbpfParallel.create(c, threads);
          try {
            e.run();
            assert.equal(firstDifference(c.want, e.output()), 'identical', `ebpf ${what} threads ${threads}`);
          } finally {
            await e.close();
          }
        }
      }
      for (const flavour of ['scalar', 'simd'] as const) {
        const w = new WasmSingle(flavour, c, CAP);
        w.run();
        assert.equal(firstDifference(c.want, w.output()), 'identical', `wasm ${flavour} ${what}`);
      }
    }
  }
});

test('the oracle tells inputs apart, and a run that skips part of its work is caught', async () => {
  // another seed, another answer: the hash comparison can fail
  assert.notEqual(makeCase('reduce', 5003, 7).wantHash, makeCase('reduce', 5003, 8).wantHash);
  const n = await runNative('histogram', 9001, 2, 1, 8);
  assert.notEqual(n.hash, makeCase('histogram', 9001, 7).wantHash);
  // thread 1 of 2 told to stop where it starts: half the rows stay zero
  const c = makeCase('spmv', 1001, 7);
  const ti = await ThreadedInstance.create(c, 2, CAP);
  try {
    ti.setArg(1, 6, 500); // k_spmv's hi
    ti.run();
    assert.match(firstDifference(c.want, ti.output()), /^byte 200\d is/);
  } finally {
    await ti.close();
  }
  // the C runner's generator draws as the JS one does (else no native hash could ever match)
  assert.equal(fnv1a32(oracle(generate('matmul', 5, 3))), (await runNative('matmul', 5, 1, 1, 3)).hash);
});

test('a thread that traps takes its instance down, not the other instances', async () => {
  const c = makeCase('reduce', 5003, 7);
  const a = await ThreadedInstance.create(c, 2, CAP);
  const b = await ThreadedInstance.create(c, 2, CAP);
  try {
    a.setArg(1, 0, 0x7ffffff0); // thread 1 reads far past the end of the memory
    assert.throws(() => a.run(), (e: Error) => e instanceof ThreadTrapError && /thread 1 of 2 trapped: RuntimeError: memory access out of bounds/.test(e.message));
    assert.throws(() => a.run(), /instance is down: thread 1 of 2 trapped/);
    for (let i = 0; i < 3; i++) {
      b.run();
      assert.equal(firstDifference(c.want, b.output()), 'identical');
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('thread-spawn: a spawned thread that traps downs its instance; a pool with no idle worker refuses the spawn, named', async () => {
  const c = makeCase('histogram', 9001, 7);
  const a = await SpawnInstance.create(c, 3, CAP);
  const b = await SpawnInstance.create(c, 3, CAP);
  try {
    a.setArg(2, 0, 0x7ffffff0); // thread 2's byte array lies past the end of the memory
    assert.throws(() => a.run(), (e: Error) => e instanceof ThreadTrapError && /spawned thread \(pool slot \d\) trapped: RuntimeError: memory access out of bounds/.test(e.message));
    assert.throws(() => a.run(), /instance is down/);
    b.run();
    assert.equal(firstDifference(c.want, b.output()), 'identical');
  } finally {
    await a.close();
    await b.close();
  }
  // the one worker must still be busy with thread 1 when thread 2 is asked for: slices of ~1.3 M elements
  // (ms), where 9001 elements let a CI run's worker finish between the two spawns (seen once)
  const small = await SpawnInstance.create(makeCase('histogram', 4_000_000, 7), 3, CAP, 1);
  try {
    assert.throws(() => small.run(), /thread-spawn refused 1 request\(s\): the pool of 1 worker\(s\) had no idle one/);
  } finally {
    await small.close();
  }
});

test('the memory cap applies to shared memories: imports capped, shared kept, growth and layouts refused past it', () => {
  const bytes = fs.readFileSync(kernelsWasm('threads'));
  const capped = new WebAssembly.Module(capMemory(bytes, 64));
  const imp = WebAssembly.Module.imports(capped).find((i) => i.kind === 'memory');
  assert.ok(imp);
  const inst = (max: number) => new WebAssembly.Instance(capped, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: max, shared: true }) } });
  inst(64);
  // a host memory allowed to grow past the cap does not link
  assert.throws(() => inst(65), /memory/i);
  const mem = new WebAssembly.Memory({ initial: 2, maximum: 64, shared: true });
  new WebAssembly.Instance(capped, { env: { memory: mem } });
  assert.throws(() => mem.grow(63), RangeError);
  // a non-shared memory does not satisfy the shared import: the flag survived the rewrite
  assert.throws(() => new WebAssembly.Instance(capped, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: 64 }) } }), /shared/i);
  // a layout past the cap is refused before anything starts, naming both sizes
  const big = makeCase('reduce', 1 << 20, 1);
  assert.throws(() => new WasmSingle('scalar', big, 32), /reduce 1048576 needs 4\.1 MiB of wasm memory, over the 2 MiB cap/);
  assert.ok(kernelModule('threads', 16384) instanceof WebAssembly.Module);
  assert.equal(WASM_PAGE, 65536);
});

test('thread counts beyond the CPUs are flagged in params; bad sizes are refused with the range', () => {
  assert.equal(paramsOf(2, 1024, 2), 'threads=2;size=1024');
  assert.equal(paramsOf(3, 1024, 2), 'threads=3;size=1024;oversubscribed=true');
  assert.deepEqual(defaultThreads(2, true), [1, 2, 4]);
  assert.deepEqual(defaultThreads(2, false), [1, 2, 4, 8]);
  assert.deepEqual(parseSizes('matmul:8/16', true).matmul, [8, 16]);
  assert.throws(() => parseSizes('matmul:0', true), /matmul: size 0 is not an integer in 1…2048/);
  assert.throws(() => parseSizes('nosuch:4', true), /not kernel:size.*reduce, histogram, matmul, spmv/);
});
