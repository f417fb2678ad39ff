#!/usr/bin/env node
// Compiles every bpf/*.bpf.c to bpf/build/<name>.bpf.o. Plain Node ESM, no npm dependencies
// (the bootstrap runs it before anything else is built).
//
//   node bpf/build.mjs            build what is out of date
//   node bpf/build.mjs --force    rebuild everything
//   node bpf/build.mjs --clean    remove bpf/build/
//
// Incremental: an object newer than its source, every bpf/*.h and this script is skipped.
// Each object is written to a temporary file and renamed, so a failed compile leaves no output.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const ROOT = dirname(SELF); // bpf/
const BUILD = join(ROOT, 'build');
const CLANG = process.env.FX_CLANG || 'clang';
// asm/types.h lives in the multiarch include directory on Debian
const MULTIARCH = ['/usr/include/x86_64-linux-gnu', '/usr/include/aarch64-linux-gnu'].filter((d) => existsSync(d));

const args = new Set(process.argv.slice(2));
for (const a of args) if (!['--clean', '--force', '--help'].includes(a)) fail(`unknown option ${a} (use --force, --clean)`);
if (args.has('--help')) {
  console.log('usage: node bpf/build.mjs [--force | --clean]');
  process.exit(0);
}
if (args.has('--clean')) {
  rmSync(BUILD, { recursive: true, force: true });
  console.log(`bpf: removed ${relative(process.cwd(), BUILD) || BUILD}`);
  process.exit(0);
}

function fail(msg) {
  console.error(`bpf/build.mjs: ${msg}`);
  process.exit(1);
}

// tools, with the Debian package that provides them
const clang = spawnSync(CLANG, ['--version'], { encoding: 'utf8' });
if (clang.error || clang.status !== 0) fail(`${CLANG} not found: apt-get install clang (Debian package "clang")`);
if (!existsSync('/usr/include/bpf/bpf_helpers.h')) fail('/usr/include/bpf/bpf_helpers.h missing: apt-get install libbpf-dev');
if (!existsSync('/usr/include/linux/bpf.h')) fail('/usr/include/linux/bpf.h missing: apt-get install linux-libc-dev');
const targets = spawnSync(CLANG, ['-print-targets'], { encoding: 'utf8' });
if (targets.status === 0 && !/\bbpf\b/.test(targets.stdout)) fail(`${CLANG} has no bpf target: apt-get install clang llvm`);

const sources = readdirSync(ROOT).filter((f) => f.endsWith('.bpf.c')).sort();
const headers = readdirSync(ROOT).filter((f) => f.endsWith('.h')).map((f) => join(ROOT, f));
const deps = [SELF, ...headers];
const depTime = Math.max(...deps.map((d) => statSync(d).mtimeMs));

mkdirSync(BUILD, { recursive: true });
let built = 0;
let failed = 0;
const t0 = Date.now();
for (const src of sources) {
  const name = src.slice(0, -'.c'.length); // x.bpf
  const out = join(BUILD, `${name}.o`);
  const srcPath = join(ROOT, src);
  if (!args.has('--force') && existsSync(out)) {
    const o = statSync(out).mtimeMs;
    if (o >= statSync(srcPath).mtimeMs && o >= depTime) continue;
  }
  const tmp = `${out}.tmp-${process.pid}`;
  const r = spawnSync(
    CLANG,
    ['-O2', '-g', '-target', 'bpf', '-Wall', ...MULTIARCH.map((d) => `-I${d}`), '-I', ROOT, '-c', srcPath, '-o', tmp],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    console.error(`bpf: FAILED ${src}\n${(r.stderr || r.error?.message || '').trimEnd()}`);
    failed++;
    continue;
  }
  if (r.stderr.trim()) console.error(r.stderr.trimEnd());
  renameSync(tmp, out);
  built++;
}
if (failed) fail(`${failed} of ${sources.length} eBPF object(s) failed to compile`);
console.log(`bpf: ${built} built, ${sources.length - built} up to date (${Date.now() - t0} ms) in ${relative(process.cwd(), BUILD) || BUILD}`);
