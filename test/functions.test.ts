// Tests of the function fixtures: build, native (one-shot and --serve), wasm reactors
// under node:wasi, AssemblyScript modules, misbehaving fixtures, catalog and verification.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WASI } from 'node:wasi';
import { Worker } from 'node:worker_threads';
import { type Catalog, describeMissing, findRepoRoot, loadCatalog } from '../harness/functions/catalog.js';
import type { FunctionEntry, Scale } from '../harness/functions/types.js';
import { expectedDigest, sha256Hex, VerificationError, verifyOutput } from '../harness/functions/verify.js';
import { fxzDecompress } from '../harness/functions/workloads/compress.js';

const REPO = findRepoRoot();
const SEED = 42;
const WORKLOADS = ['noop', 'json', 'sha256', 'matmul', 'compress', 'pagerank', 'fnv1a', 'classify', 'histogram'] as const;
const SCALES: Scale[] = ['small', 'large'];

// sha256 of input(SEED, 'small') and of the oracle's expected output for it.
// An intentional change to a generator or an oracle must update these.
const GOLDEN: Record<(typeof WORKLOADS)[number], { input: string; output: string }> = {
  noop: {
    input: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    output: 'dc51b8c96c2d745df3bd5590d990230a482fd247123599548e0632fdbf97fc22',
  },
  json: {
    input: '697f4ced9cb1956411106e24f432e34ebb3b597e06907b92648eb26d589e51d6',
    output: '3660c05c89e1b438c1e4c7bab95867e0fc9f76f3b4996b7b16beabd151814e65',
  },
  sha256: {
    input: '292ee8b28afe6e5d5a20211fa6a73ad5756897baa8bdc0d5578a77a02aed0825',
    output: '5fa81139fd113097cf0c1d67de59c8f12be50f24b30bb194b9d53631bcc4881c',
  },
  matmul: {
    input: '54d51487740517a32b70de30ebc111e67366372a5a2bfb67122cdb84b76a857e',
    output: 'a15b8764bcd7ab5c746668c375d3ad87d997cb11285ff6fa8698742a93fa00b7',
  },
  compress: {
    input: 'b4f8d6208953eff74fc0aa3a965071416e48e75a32c97d23fdc9f5fca1285ea0',
    output: 'f6d97f9efb69cf0ef6e44c5dbd109d550dd554a477ce7c232d14c11638949064',
  },
  pagerank: {
    input: '79410b7232e126e9976fbf62a3250c35a45ac789b94f7d31e72fba3e39285743',
    output: '1446a8e6a181733b22734db103ad99b87e8786ad932582fe260b497cfce7add3',
  },
  fnv1a: {
    input: 'e55a535902b0d676b62294dc01deeb98745dbbaf4b5213f1accd38afea04564b',
    output: 'afc8ab369e4c36e603bf049f9ec7b762e674257f9f232b73b76a491ae81bb7b2',
  },
  classify: {
    input: '517a75a7ae0b5750b382a55f2141181d6832e513c9815df79561f51631da07a5',
    output: '3bc2e2ea72cf74896310f01e3f935bb6118563837d139df28d42026fc19f162b',
  },
  histogram: {
    input: '3a1c270e1a21edd53e1175bb43952ba99b891c39f3e08e6d790e28853a474ab6',
    output: '9170ca3e081832f9ff585cbd6067677fe526cca67cce8ead0f8c8956d6b44c95',
  },
};

let catalog: Catalog;
let tmp: string;
const inputs = new Map<string, Uint8Array>();

/** one Uint8Array per (workload, scale) so verify's memo is reused across modes */
function inputFor(fn: FunctionEntry, scale: Scale): Uint8Array {
  const key = `${fn.workload.name}/${scale}`;
  let v = inputs.get(key);
  if (!v) {
    v = fn.workload.input(SEED, scale);
    inputs.set(key, v);
  }
  return v;
}

function runNative(path: string, input: Uint8Array, opts: { env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  return spawnSync(path, [], {
    input,
    env: opts.env ?? process.env,
    timeout: opts.timeout ?? 20_000,
    killSignal: 'SIGKILL',
    maxBuffer: 64 << 20,
  });
}

function frame(input: Uint8Array): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32LE(input.length);
  return Buffer.concat([h, input]);
}

function parseResponses(out: Buffer): { status: number; output: Buffer }[] {
  const res: { status: number; output: Buffer }[] = [];
  let p = 0;
  while (p < out.length) {
    assert.ok(out.length - p >= 8, 'truncated response header');
    const len = out.readUInt32LE(p);
    const status = out.readInt32LE(p + 4);
    assert.ok(out.length - p - 8 >= len, 'truncated response payload');
    res.push({ status, output: out.subarray(p + 8, p + 8 + len) });
    p += 8 + len;
  }
  return res;
}

/** node:wasi with real fds, as the harness variants do: one instance, one call */
async function runReactorFds(path: string, input: Uint8Array): Promise<{ status: number; output: Buffer }> {
  const inPath = join(tmp, `in-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const outPath = `${inPath}.out`;
  writeFileSync(inPath, input);
  const stdin = openSync(inPath, 'r');
  const stdout = openSync(outPath, 'w');
  try {
    const wasi = new WASI({ version: 'preview1', stdin, stdout, stderr: 2, returnOnExit: true });
    const mod = await WebAssembly.compile(readFileSync(path));
    const instance = await WebAssembly.instantiate(mod, wasi.getImportObject() as WebAssembly.Imports);
    wasi.initialize(instance);
    const status = (instance.exports.fx_invoke as () => number)();
    return { status, output: readFileSync(outPath) };
  } finally {
    closeSync(stdin);
    closeSync(stdout);
    rmSync(inPath, { force: true });
    rmSync(outPath, { force: true });
  }
}

/**
 * node:wasi with fd 0 / fd 1 served from JS, so one instance can be invoked repeatedly
 * with fresh input each time (what a reactor-reusing host does).
 */
async function reactorSession(path: string) {
  const devnull = openSync('/dev/null', 'r+');
  const wasi = new WASI({ version: 'preview1', stdin: devnull, stdout: devnull, stderr: 2, returnOnExit: true });
  const imports = wasi.getImportObject() as { wasi_snapshot_preview1: Record<string, (...a: number[]) => number> };
  const real = imports.wasi_snapshot_preview1;
  let memory: WebAssembly.Memory | undefined;
  let input = new Uint8Array(0);
  let pos = 0;
  let out: Buffer[] = [];
  const iovecs = (iovs: number, n: number): { ptr: number; len: number }[] => {
    const dv = new DataView(memory!.buffer);
    return Array.from({ length: n }, (_, i) => ({
      ptr: dv.getUint32(iovs + 8 * i, true),
      len: dv.getUint32(iovs + 8 * i + 4, true),
    }));
  };
  const shim = {
    ...real,
    fd_read(fd: number, iovs: number, n: number, nread: number): number {
      if (fd !== 0) return real.fd_read!(fd, iovs, n, nread);
      let total = 0;
      for (const v of iovecs(iovs, n)) {
        const take = Math.min(v.len, input.length - pos);
        new Uint8Array(memory!.buffer, v.ptr, take).set(input.subarray(pos, pos + take));
        pos += take;
        total += take;
      }
      new DataView(memory!.buffer).setUint32(nread, total, true);
      return 0;
    },
    fd_write(fd: number, iovs: number, n: number, nwritten: number): number {
      if (fd !== 1) return real.fd_write!(fd, iovs, n, nwritten);
      let total = 0;
      for (const v of iovecs(iovs, n)) {
        out.push(Buffer.from(new Uint8Array(memory!.buffer, v.ptr, v.len)));
        total += v.len;
      }
      new DataView(memory!.buffer).setUint32(nwritten, total, true);
      return 0;
    },
  };
  const mod = await WebAssembly.compile(readFileSync(path));
  const instance = await WebAssembly.instantiate(mod, { wasi_snapshot_preview1: shim } as WebAssembly.Imports);
  memory = instance.exports.memory as WebAssembly.Memory;
  wasi.initialize(instance);
  const invoke = instance.exports.fx_invoke as () => number;
  return {
    call(bytes: Uint8Array): { status: number; output: Buffer } {
      input = bytes;
      pos = 0;
      out = [];
      const status = invoke();
      return { status, output: Buffer.concat(out) };
    },
    memoryBytes: () => memory!.buffer.byteLength,
    close: () => closeSync(devnull),
  };
}

before(() => {
  const r = spawnSync(process.execPath, [join(REPO, 'wasm-fixtures', 'build.mjs')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `build.mjs failed:\n${r.stdout}\n${r.stderr}`);
  tmp = mkdtempSync(join(tmpdir(), 'fx-test-'));
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('build and catalog', () => {
  test('every artifact in the catalog was built', async () => {
    catalog = await loadCatalog(REPO);
    const names = catalog.all().map((f) => f.name);
    for (const n of [...WORKLOADS, 'noop-as', 'matmul-as', 'loop', 'trap', 'memhog', 'crash', 'upper']) {
      assert.ok(names.includes(n), `missing function ${n}`);
    }
    for (const fn of catalog.all()) {
      assert.deepEqual(catalog.missingArtifacts(fn.name), [], `${fn.name}: ${describeMissing(catalog, fn.name).join('; ')}`);
      assert.ok(fn.wasm, `${fn.name} has no wasm`);
      if (fn.origin === 'c' || fn.origin === 'user') assert.ok(fn.native, `${fn.name} has no native build`);
    }
  });

  test('wasm reactors export _initialize/memory/fx_invoke and import only wasi_snapshot_preview1', async () => {
    for (const fn of catalog.all()) {
      const mod = await WebAssembly.compile(readFileSync(fn.wasm!.path));
      const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
      assert.ok(exports.includes('memory'), `${fn.name} exports memory`);
      assert.ok(exports.includes('fx_invoke'), `${fn.name} exports fx_invoke`);
      assert.ok(exports.includes('_initialize'), `${fn.name} exports _initialize`);
      for (const imp of WebAssembly.Module.imports(mod)) {
        assert.equal(imp.module, 'wasi_snapshot_preview1', `${fn.name} imports ${imp.module}.${imp.name}`);
      }
    }
  });

  test('defaults() has no test-only or user functions; get() of an unknown name lists valid names', () => {
    const defaults = catalog.defaults().map((f) => f.name);
    assert.deepEqual(defaults, ['noop', 'json', 'sha256', 'matmul', 'compress', 'pagerank', 'noop-as', 'matmul-as', 'fnv1a', 'classify', 'histogram']);
    assert.throws(() => catalog.get('no-such-fn'), (e: Error) => {
      assert.match(e.message, /unknown function "no-such-fn"/);
      assert.match(e.message, /valid names: .*sha256.*matmul-as.*upper/);
      return true;
    });
  });

  test('missing artifacts are reported, not fatal', async () => {
    const root = mkdtempSync(join(tmp, 'repo-'));
    mkdirSync(join(root, 'wasm-fixtures', 'user', 'digest'), { recursive: true });
    copyFileSync(join(REPO, 'wasm-fixtures', 'functions.json'), join(root, 'wasm-fixtures', 'functions.json'));
    writeFileSync(join(root, 'wasm-fixtures', 'user', 'digest', 'function.json'), JSON.stringify({
      name: 'digest', summary: 'brought module', wasm: 'mod.wasm',
      input: { text: 'abc' }, expect: { sha256: sha256Hex(Buffer.from('xyz')) },
    }));
    const c = await loadCatalog(root);
    const sha = c.get('sha256');
    assert.equal(sha.wasm, undefined);
    assert.equal(sha.native, undefined);
    assert.deepEqual(c.missingArtifacts('sha256'), [
      join(root, 'wasm-fixtures/build/wasm/sha256.wasm'), join(root, 'wasm-fixtures/build/native/sha256'),
    ]);
    assert.match(describeMissing(c, 'sha256')[0]!, /^not built: .*sha256\.wasm \(run npm run bootstrap\)$/);
    // a user function known only by digest
    const u = c.get('digest');
    assert.equal(u.origin, 'user');
    assert.deepEqual(c.missingArtifacts('digest'), [join(root, 'wasm-fixtures/user/digest/mod.wasm')]);
    const input = u.workload.input(1, 'large');
    assert.equal(Buffer.from(input).toString(), 'abc');
    assert.throws(() => u.workload.expected(input), /only the sha256/);
    verifyOutput(u, input, Buffer.from('xyz'));
    assert.throws(() => verifyOutput(u, input, Buffer.from('xy')), VerificationError);
    assert.throws(() => expectedDigest(u, Buffer.from('other input')), /only holds for the manifest's input/);
  });
});

describe('oracles', () => {
  test('small-scale inputs and oracle outputs match the recorded golden digests', () => {
    const actual: Record<string, { input: string; output: string }> = {};
    for (const w of WORKLOADS) {
      const fn = catalog.get(w);
      const input = inputFor(fn, 'small');
      actual[w] = { input: sha256Hex(input), output: expectedDigest(fn, input) };
    }
    assert.deepEqual(actual, GOLDEN);
  });

  test('inputs are deterministic and depend on the seed', () => {
    for (const w of WORKLOADS) {
      const wl = catalog.get(w).workload;
      assert.deepEqual(wl.input(7, 'small'), wl.input(7, 'small'), w);
      if (w !== 'noop') assert.notDeepEqual(wl.input(7, 'small'), wl.input(8, 'small'), w);
    }
  });

  test('compress oracle output decompresses to the input', () => {
    const fn = catalog.get('compress');
    for (const scale of SCALES) {
      const input = inputFor(fn, scale);
      const packed = fn.workload.expected(input);
      assert.ok(packed.length < input.length, 'compresses');
      assert.deepEqual(fxzDecompress(packed), input);
    }
  });

  test('verifyOutput rejects a wrong output with a descriptive VerificationError', () => {
    const fn = catalog.get('matmul');
    const input = inputFor(fn, 'small');
    verifyOutput(fn, input, fn.workload.expected(input));
    const wrong = Buffer.from('n=16 sum=1 xor=2\n\u0001');
    assert.throws(() => verifyOutput(fn, input, wrong), (e: unknown) => {
      assert.ok(e instanceof VerificationError);
      assert.equal(e.functionName, 'matmul');
      assert.equal(e.outputLength, wrong.length);
      assert.equal(e.actual, sha256Hex(wrong));
      assert.equal(e.expected, expectedDigest(fn, input));
      assert.match(e.message, /"matmul"/);
      assert.ok(e.message.includes(e.expected) && e.message.includes(e.actual));
      assert.ok(e.message.includes('n=16 sum=1 xor=2\\n\\x01'), e.message);
      return true;
    });
  });
});

describe('native builds', () => {
  for (const w of WORKLOADS) {
    for (const scale of SCALES) {
      test(`${w} ${scale}: output verifies`, () => {
        const fn = catalog.get(w);
        const input = inputFor(fn, scale);
        const r = runNative(fn.native!, input);
        assert.equal(r.status, 0, r.stderr.toString());
        verifyOutput(fn, input, r.stdout);
      });
    }
    test(`${w}: --serve answers three frames (one empty)`, () => {
      const fn = catalog.get(w);
      const input = inputFor(fn, 'small');
      const empty = new Uint8Array(0);
      const r = spawnSync(fn.native!, ['--serve'], {
        input: Buffer.concat([frame(input), frame(empty), frame(input)]),
        timeout: 20_000,
        maxBuffer: 64 << 20,
      });
      assert.equal(r.status, 0, r.stderr.toString());
      const res = parseResponses(r.stdout);
      assert.equal(res.length, 3);
      for (const i of [0, 2]) {
        assert.equal(res[i]!.status, 0);
        verifyOutput(fn, input, res[i]!.output);
      }
      // empty input: either the oracle accepts it and the output verifies, or the function must fail
      let oracleAccepts = true;
      try {
        fn.workload.expected(empty);
      } catch {
        oracleAccepts = false;
      }
      if (oracleAccepts) {
        assert.equal(res[1]!.status, 0);
        verifyOutput(fn, empty, res[1]!.output);
      } else {
        assert.notEqual(res[1]!.status, 0, `${w} accepted an empty input`);
      }
    });
  }

  test('user function "upper" (native) verifies', () => {
    const fn = catalog.get('upper');
    const input = fn.workload.input(SEED, 'small');
    const r = runNative(fn.native!, input);
    assert.equal(r.status, 0);
    verifyOutput(fn, input, r.stdout);
  });
});

describe('wasm reactors (node:wasi)', () => {
  const wasmFns = [...WORKLOADS, 'noop-as', 'matmul-as'];
  for (const name of wasmFns) {
    for (const scale of SCALES) {
      test(`${name} ${scale}: fx_invoke output verifies`, async () => {
        const fn = catalog.get(name);
        const input = inputFor(fn, scale);
        const r = await runReactorFds(fn.wasm!.path, input);
        assert.equal(r.status, 0);
        verifyOutput(fn, input, r.output);
      });
    }
    test(`${name}: one instance serves repeated calls without leaking`, async () => {
      const fn = catalog.get(name);
      const input = inputFor(fn, 'small');
      const s = await reactorSession(fn.wasm!.path);
      try {
        const sizes: number[] = [];
        for (let i = 0; i < 6; i++) {
          const r = s.call(input);
          assert.equal(r.status, 0, `call ${i}`);
          verifyOutput(fn, input, r.output);
          sizes.push(s.memoryBytes());
        }
        assert.equal(sizes[5], sizes[2], `memory keeps growing: ${sizes.join(', ')}`);
      } finally {
        s.close();
      }
    });
  }

  test('user function "upper" (wasm) verifies', async () => {
    const fn = catalog.get('upper');
    const input = fn.workload.input(SEED, 'small');
    const r = await runReactorFds(fn.wasm!.path, input);
    assert.equal(r.status, 0);
    verifyOutput(fn, input, r.output);
  });
});

describe('misbehaving fixtures', () => {
  test('native trap dies with SIGILL', () => {
    const r = runNative(catalog.get('trap').native!, new Uint8Array(0));
    assert.equal(r.signal, 'SIGILL');
  });

  test('native crash dies with SIGSEGV', () => {
    const r = runNative(catalog.get('crash').native!, new Uint8Array(0));
    assert.equal(r.signal, 'SIGSEGV');
  });

  test('native memhog with FX_MEM_LIMIT_MB=64 exits 3 quickly', () => {
    const t0 = performance.now();
    const r = runNative(catalog.get('memhog').native!, new Uint8Array(0), {
      env: { ...process.env, FX_MEM_LIMIT_MB: '64' },
      timeout: 10_000,
    });
    assert.equal(r.status, 3, `signal ${r.signal} stderr ${r.stderr}`);
    assert.match(r.stderr.toString(), /memhog: malloc failed after \d+ MiB/);
    assert.ok(performance.now() - t0 < 5000);
  });

  test('native loop spins until killed', () => {
    const r = runNative(catalog.get('loop').native!, new Uint8Array(0), { timeout: 300 });
    assert.equal(r.signal, 'SIGKILL');
    assert.equal((r.error as NodeJS.ErrnoException | undefined)?.code, 'ETIMEDOUT');
  });

  test('native --serve: a crash kills the server mid-stream', () => {
    const r = spawnSync(catalog.get('crash').native!, ['--serve'], { input: frame(new Uint8Array(0)) });
    assert.equal(r.signal, 'SIGSEGV');
    assert.equal(r.stdout.length, 0);
  });

  for (const name of ['trap', 'crash']) {
    test(`wasm ${name} traps with unreachable`, async () => {
      await assert.rejects(runReactorFds(catalog.get(name).wasm!.path, new Uint8Array(0)), (e: unknown) => {
        assert.ok(e instanceof WebAssembly.RuntimeError, String(e));
        assert.match(e.message, /unreachable/);
        return true;
      });
    });
  }

  test('wasm loop never returns (worker terminated after 300 ms)', async () => {
    const code = `
      const { WASI } = require('node:wasi');
      const { readFileSync } = require('node:fs');
      const { parentPort, workerData } = require('node:worker_threads');
      const wasi = new WASI({ version: 'preview1', returnOnExit: true });
      const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(workerData)), wasi.getImportObject());
      wasi.initialize(inst);
      parentPort.postMessage('started');
      inst.exports.fx_invoke();
      parentPort.postMessage('returned');`;
    const worker = new Worker(code, { eval: true, workerData: catalog.get('loop').wasm!.path });
    const messages: string[] = [];
    worker.on('message', (m: string) => messages.push(m));
    await new Promise((r) => setTimeout(r, 300));
    await worker.terminate();
    assert.deepEqual(messages, ['started']);
  });
});
