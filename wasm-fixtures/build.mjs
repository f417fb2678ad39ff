#!/usr/bin/env node
// Builds the function fixtures. Plain Node ESM, no npm dependencies (runs during bootstrap).
//
//   node wasm-fixtures/build.mjs            build what is out of date
//   node wasm-fixtures/build.mjs --force    rebuild everything
//   node wasm-fixtures/build.mjs --clean    remove wasm-fixtures/build/
//
// Outputs (git-ignored):
//   build/wasm/<name>.wasm        wasm32-wasi reactor (exports _initialize, memory, fx_invoke)
//   build/native/<name>           static x86-64 binary (see support/fx_native.c, --serve)
//   build/wasm/user/<name>.wasm   user C functions (user/<name>/function.json with "c")
//   build/native/user/<name>
//
// Every linked wasm module goes through WASM_STAGES (in order) before it replaces the
// previous output; a failing stage leaves no output behind.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(fileURLToPath(import.meta.url)); // wasm-fixtures/
const REPO = dirname(ROOT);
const BUILD = join(ROOT, 'build');
const SELF = fileURLToPath(import.meta.url);
const CLANG = process.env.FX_CLANG || 'clang';
const ASC = join(REPO, 'node_modules', 'assemblyscript', 'bin', 'asc.js');

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--clean', '--force', '--help'].includes(a)) fail(`unknown option ${a} (use --clean, --force)`);
}
if (args.has('--help')) {
  console.log('usage: node wasm-fixtures/build.mjs [--force | --clean]');
  process.exit(0);
}
if (args.has('--clean')) {
  rmSync(BUILD, { recursive: true, force: true });
  console.log(`wasm-fixtures: removed ${relative(process.cwd(), BUILD) || BUILD}`);
  process.exit(0);
}

function fail(msg) {
  console.error(`wasm-fixtures/build.mjs: ${msg}`);
  process.exit(1);
}

// ---------------------------------------------------------------- wasm post-processing
// Ordered stages applied to every freshly linked module (C and AssemblyScript).
// A stage gets the path of the temporary module and may validate it or rewrite it in
// place. To add one (e.g. exporting every mutable global such as __stack_pointer for
// snapshotting), append an entry; declare its tool in `requires` so a missing tool is
// reported with its Debian package.
const WASM_STAGES = [
  {
    name: 'wasm-validate',
    requires: ['wasm-validate'],
    // threads: the parallel kernels' shared memory (accepting more features refuses nothing else)
    apply: (file) => run('wasm-validate', ['--enable-threads', file]),
  },
  // { name: 'export-mutable-globals', requires: ['wasm-opt'],
  //   apply: (file) => run('/usr/bin/wasm-opt', [file, '--some-pass', '-o', file]) },
];

// ---------------------------------------------------------------- tool checks
// name -> how to check it, and what to install when it is missing
const TOOLS = {
  clang: { pkg: 'clang (clang-14)', check: () => ok(CLANG, ['--version']) },
  'wasm-ld': { pkg: 'lld (lld-14)', check: () => ok('wasm-ld', ['--version']) },
  'wasi-libc': {
    pkg: 'wasi-libc',
    needsClang: true,
    check: () => existsSync(sysrootFile('libc.a')) || existsSync('/usr/lib/wasm32-wasi/libc.a'),
  },
  'wasm32-builtins': {
    pkg: 'libclang-rt-14-dev-wasm32',
    needsClang: true,
    check: () => {
      const r = spawnSync(CLANG, ['--target=wasm32-wasi', '-print-libgcc-file-name'], { encoding: 'utf8' });
      return r.status === 0 && existsSync(r.stdout.trim());
    },
  },
  'static-glibc': {
    pkg: 'libc6-dev',
    needsClang: true,
    check: () => {
      const r = spawnSync(CLANG, ['-print-file-name=libc.a'], { encoding: 'utf8' });
      return r.status === 0 && r.stdout.trim().startsWith('/') && existsSync(r.stdout.trim());
    },
  },
  'wasm-validate': { pkg: 'wabt', check: () => ok('wasm-validate', ['--version']) },
  'wasm-opt': { pkg: 'binaryen', check: () => ok('/usr/bin/wasm-opt', ['--version']) },
  asc: { pkg: 'the npm package assemblyscript (run npm install)', check: () => existsSync(ASC) },
};

function sysrootFile(f) {
  const r = spawnSync(CLANG, ['--target=wasm32-wasi', `-print-file-name=${f}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : f;
}

function ok(cmd, argv) {
  const r = spawnSync(cmd, argv, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function checkTools(names) {
  const missing = [];
  const haveClang = !names.includes('clang') || TOOLS.clang.check();
  for (const n of names) {
    const t = TOOLS[n];
    if (!t) fail(`internal: unknown tool ${n}`);
    if (t.needsClang && !haveClang) continue; // cannot be probed without clang; clang is reported
    if (!t.check()) missing.push(`${n} (Debian package: ${t.pkg})`);
  }
  if (missing.length) fail(`missing build tools:\n  ${missing.join('\n  ')}`);
}

// ---------------------------------------------------------------- targets
const stageTools = WASM_STAGES.flatMap((s) => s.requires);
const C_WASM_TOOLS = ['clang', 'wasm-ld', 'wasi-libc', 'wasm32-builtins', ...stageTools];
const C_NATIVE_TOOLS = ['clang', 'static-glibc'];
const AS_TOOLS = ['asc', ...stageTools];

const SUPPORT = join(ROOT, 'support');
const COMMON_H = join(SUPPORT, 'fx_common.h');
const NATIVE_MAIN = join(SUPPORT, 'fx_native.c');
const REACTOR = join(SUPPORT, 'fx_reactor.c');

/** @typedef {{ label: string, out: string, inputs: string[], tools: string[], wasm: boolean, build: (tmp: string) => Promise<void> }} Target */
/** @type {Target[]} */
const targets = [];

function cTargets(name, source, outWasm, outNative, extraInputs, defines) {
  const wasmArgs = (tmp) => [
    '--target=wasm32-wasi', '-O2', '-Wall', '-mexec-model=reactor', '-Dmain=fx_main', ...defines,
    source, REACTOR, '-o', tmp, '-Wl,--export=fx_invoke', '-Wl,--strip-debug',
  ];
  const nativeArgs = (tmp) => [
    '-O2', '-static', '-Wall', '-Dmain=fx_main', ...defines, source, NATIVE_MAIN, '-o', tmp,
  ];
  if (outWasm) {
    targets.push({
      label: relative(BUILD, outWasm), out: outWasm, wasm: true, tools: C_WASM_TOOLS,
      inputs: [source, REACTOR, SELF, ...extraInputs],
      build: (tmp) => run(CLANG, wasmArgs(tmp)),
    });
  }
  if (outNative) {
    targets.push({
      label: relative(BUILD, outNative), out: outNative, wasm: false, tools: C_NATIVE_TOOLS,
      inputs: [source, NATIVE_MAIN, SELF, ...extraInputs],
      build: (tmp) => run(CLANG, nativeArgs(tmp)),
    });
  }
}

let manifest;
try {
  manifest = JSON.parse(readFileSync(join(ROOT, 'functions.json'), 'utf8'));
} catch (e) {
  fail(`cannot read functions.json: ${e.message}`);
}
const asSources = readdirSync(join(ROOT, 'as')).filter((f) => f.endsWith('.ts')).map((f) => join(ROOT, 'as', f));

for (const fn of manifest.functions) {
  const source = join(ROOT, fn.source);
  if (!existsSync(source)) fail(`function ${fn.name}: source ${fn.source} not found`);
  if (fn.origin === 'c') {
    cTargets(fn.name, source, fn.wasm && join(ROOT, fn.wasm), fn.native && join(ROOT, fn.native),
      [COMMON_H, join(ROOT, 'functions.json')], []);
  } else if (fn.origin === 'assemblyscript') {
    const out = join(ROOT, fn.wasm);
    targets.push({
      label: relative(BUILD, out), out, wasm: true, tools: AS_TOOLS,
      inputs: [...asSources, SELF, join(ROOT, 'functions.json')],
      build: (tmp) => run(process.execPath, [
        ASC, source, '-O3', '--noAssert', '--runtime', 'minimal', '--use', 'abort=',
        '--exportStart', '_initialize', '-o', tmp,
      ]),
    });
  } else {
    fail(`function ${fn.name}: unknown origin ${fn.origin}`);
  }
}

// user functions: user/<dir>/function.json, and <dir>/function.json in each folder of
// FXH_USER_FUNCTIONS (colon-separated), for functions kept outside the repository
const USER_ROOTS = [join(ROOT, 'user'), ...(process.env.FXH_USER_FUNCTIONS ?? '').split(':').filter(Boolean)];
for (const USER of USER_ROOTS.filter((d) => existsSync(d))) {
  for (const dir of readdirSync(USER).sort()) {
    const mf = join(USER, dir, 'function.json');
    if (!existsSync(mf)) continue;
    let m;
    try {
      m = JSON.parse(readFileSync(mf, 'utf8'));
    } catch (e) {
      fail(`${relative(ROOT, mf)}: ${e.message}`);
    }
    if (typeof m.name !== 'string' || !/^[a-z0-9][a-z0-9_-]*$/.test(m.name)) {
      fail(`${relative(ROOT, mf)}: "name" must match [a-z0-9][a-z0-9_-]*`);
    }
    if (m.c !== undefined) {
      const source = join(USER, dir, m.c);
      if (!existsSync(source)) fail(`${relative(ROOT, mf)}: C source ${m.c} not found`);
      // main(int argc, char **argv) needs a different fx_main prototype in the support code
      const withArgs = /\bmain\s*\(\s*int\b/.test(readFileSync(source, 'utf8'));
      cTargets(m.name, source, join(BUILD, 'wasm', 'user', `${m.name}.wasm`),
        join(BUILD, 'native', 'user', m.name), [mf], withArgs ? ['-DFX_MAIN_ARGS'] : []);
    }
  }
}

// parallel kernels (experiments/parallel.mjs): one freestanding source, three wasm32 builds and a
// native pthreads runner. Debian 12's wasi-libc has no wasm32-wasi-threads sysroot (libpthread.a is
// an 8-byte stub), so the threaded build is bare wasm32 over an imported shared memory and the host
// runs it on explicit worker threads (harness/parallel/wasm-threads.ts). bulk-memory in every build:
// clang turns zeroing loops into memset, which has no libc to come from here.
const PAR = join(ROOT, 'parallel');
const PAR_SRC = [join(PAR, 'kernels.c'), join(PAR, 'kernels.h'), SELF];
const PAR_WASM = ['--target=wasm32', '-O2', '-Wall', '-nostdlib', '-mbulk-memory', join(PAR, 'kernels.c'),
  '-Wl,--no-entry', '-Wl,--import-memory', '-Wl,--export=__heap_base', '-Wl,--strip-debug'];
for (const [flavour, extra] of [
  ['scalar', []],
  ['simd', ['-msimd128']],
  ['threads', ['-msimd128', '-matomics', '-Wl,--shared-memory', '-Wl,--max-memory=4294967296']],
  // the same, driven from inside the module through the host's wasi thread-spawn import (spawn.c)
  ['spawn', ['-msimd128', '-matomics', '-Wl,--shared-memory', '-Wl,--max-memory=4294967296', join(PAR, 'spawn.c')]],
]) {
  const out = join(BUILD, 'parallel', `kernels-${flavour}.wasm`);
  targets.push({
    label: relative(BUILD, out), out, wasm: true, tools: ['clang', 'wasm-ld', ...stageTools], inputs: [...PAR_SRC, join(PAR, 'spawn.c')],
    build: (tmp) => run(CLANG, [...PAR_WASM, ...extra, '-o', tmp]),
  });
}
{
  const out = join(BUILD, 'parallel', 'parallel-native');
  targets.push({
    label: relative(BUILD, out), out, wasm: false, tools: C_NATIVE_TOOLS, inputs: [...PAR_SRC, join(PAR, 'parallel_native.c')],
    build: (tmp) => run(CLANG, ['-O2', '-Wall', '-static', '-pthread', join(PAR, 'kernels.c'), join(PAR, 'parallel_native.c'), '-o', tmp]),
  });
}

// ---------------------------------------------------------------- run
function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

const force = args.has('--force');
const stale = targets.filter((t) => {
  if (force) return true;
  const out = mtime(t.out);
  return out < 0 || t.inputs.some((i) => mtime(i) >= out);
});

if (stale.length) checkTools([...new Set(stale.flatMap((t) => t.tools))]);

function run(cmd, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${cmd} ${argv.join(' ')}\n${output.trimEnd()}\n(exit ${code ?? signal})`));
    });
  });
}

async function buildOne(t) {
  const t0 = performance.now();
  mkdirSync(dirname(t.out), { recursive: true });
  const tmp = t.wasm ? t.out.replace(/\.wasm$/, '') + `.tmp${process.pid}.wasm` : `${t.out}.tmp${process.pid}`;
  try {
    await t.build(tmp);
    if (t.wasm) {
      for (const stage of WASM_STAGES) {
        try {
          await stage.apply(tmp);
        } catch (e) {
          throw new Error(`stage ${stage.name}: ${e.message}`);
        }
      }
    }
    renameSync(tmp, t.out);
  } finally {
    rmSync(tmp, { force: true });
  }
  console.log(`  built ${t.label} (${((performance.now() - t0) / 1000).toFixed(2)}s)`);
}

const t0 = performance.now();
const failures = [];
const queue = [...stale];
const jobs = Math.max(1, Math.min(cpus().length, 8));
await Promise.all(
  Array.from({ length: jobs }, async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      try {
        await buildOne(t);
      } catch (e) {
        failures.push(t.label);
        console.error(`  FAILED ${t.label}:\n${String(e.message).replace(/^/gm, '    ')}`);
      }
    }
  }),
);
const secs = ((performance.now() - t0) / 1000).toFixed(1);
const built = stale.length - failures.length;
console.log(
  `wasm-fixtures: ${targets.length} targets, ${built} built, ${targets.length - stale.length} up to date` +
    (failures.length ? `, ${failures.length} FAILED` : '') + ` (${secs}s)`,
);
if (failures.length) process.exit(1);
