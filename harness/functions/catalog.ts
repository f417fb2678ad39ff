// The function catalog: built-ins from wasm-fixtures/functions.json plus user functions
// from wasm-fixtures/user/<dir>/function.json. Artifact paths are absolute; artifacts
// that are not built (yet) are left undefined and reported by missingArtifacts().
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionEntry, Scale, Workload } from './types.js';
import { getWorkload } from './workloads/index.js';

export interface Catalog {
  /** absolute path of the repository root the catalog was loaded from */
  readonly repoRoot: string;
  /** every function, built-in first (manifest order), then user functions (by name) */
  all(): FunctionEntry[];
  /** the default benchmark suite: not testOnly, not user */
  defaults(): FunctionEntry[];
  /** by name; an unknown name throws an Error listing the valid names */
  get(name: string): FunctionEntry;
  /** absolute paths of the artifacts `name` should have but that are not on disk */
  missingArtifacts(name: string): string[];
}

interface BuiltinManifestEntry {
  name: string;
  summary: string;
  origin: 'c' | 'assemblyscript';
  testOnly: boolean;
  workload: string;
  source: string;
  wasm?: string;
  native?: string;
}

interface UserManifest {
  name: string;
  summary?: string;
  wasm?: string;
  c?: string;
  input: { text: string } | { file: string };
  expect: { sha256: string } | { stdout: string };
}

/** Where user-C builds land (kept in sync with wasm-fixtures/build.mjs). */
export function userArtifactPaths(repoRoot: string, name: string): { wasm: string; native: string } {
  const build = join(repoRoot, 'wasm-fixtures', 'build');
  return { wasm: join(build, 'wasm', 'user', `${name}.wasm`), native: join(build, 'native', 'user', name) };
}

/** Walk up from this module (source or build/ output) to the directory holding wasm-fixtures/functions.json. */
export function findRepoRoot(start: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'wasm-fixtures', 'functions.json'))) return dir;
    if (dirname(dir) === dir) break;
  }
  const cwd = process.cwd();
  if (existsSync(join(cwd, 'wasm-fixtures', 'functions.json'))) return cwd;
  throw new Error(`cannot find wasm-fixtures/functions.json above ${start} or in ${cwd}`);
}

function sha256hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function userWorkload(m: UserManifest, input: Uint8Array, where: string): Workload {
  const expectStdout = 'stdout' in m.expect ? new TextEncoder().encode(m.expect.stdout) : undefined;
  const digest = 'sha256' in m.expect ? m.expect.sha256.toLowerCase() : sha256hex(expectStdout!);
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`${where}: expect.sha256 must be 64 hex digits`);
  const checkInput = (given: Uint8Array): void => {
    if (!sameBytes(given, input)) {
      throw new Error(`user function ${m.name}: its expectation only holds for the manifest's input (${where})`);
    }
  };
  return {
    name: `user:${m.name}`,
    summary: m.summary ?? `user function ${m.name}`,
    input(_seed: number, _scale: Scale): Uint8Array {
      return input.slice();
    },
    expected(given: Uint8Array): Uint8Array {
      checkInput(given);
      if (!expectStdout) {
        throw new Error(`user function ${m.name}: only the sha256 of the output is known; use expectedDigest()`);
      }
      return expectStdout.slice();
    },
    expectedDigest(given: Uint8Array): string {
      checkInput(given);
      return digest;
    },
  };
}

/** wasm-fixtures/user, then each folder named in FXH_USER_FUNCTIONS (colon-separated). */
export function userFunctionRoots(repoRoot: string): string[] {
  return [join(repoRoot, 'wasm-fixtures', 'user'), ...(process.env.FXH_USER_FUNCTIONS ?? '').split(':').filter(Boolean)];
}

async function loadUserFunctions(repoRoot: string): Promise<{ entry: FunctionEntry; wanted: string[] }[]> {
  const out: { entry: FunctionEntry; wanted: string[] }[] = [];
  for (const userDir of userFunctionRoots(repoRoot).filter((d) => existsSync(d))) out.push(...(await loadUserDir(repoRoot, userDir)));
  return out;
}

async function loadUserDir(repoRoot: string, userDir: string): Promise<{ entry: FunctionEntry; wanted: string[] }[]> {
  const out: { entry: FunctionEntry; wanted: string[] }[] = [];
  for (const dir of (await readdir(userDir)).sort()) {
    const mf = join(userDir, dir, 'function.json');
    if (!existsSync(mf)) continue;
    let m: UserManifest;
    try {
      m = JSON.parse(await readFile(mf, 'utf8')) as UserManifest;
    } catch (e) {
      throw new Error(`${mf}: ${(e as Error).message}`);
    }
    if (typeof m.name !== 'string' || !/^[a-z0-9][a-z0-9_-]*$/.test(m.name)) {
      throw new Error(`${mf}: "name" must match [a-z0-9][a-z0-9_-]*`);
    }
    if ((m.wasm === undefined) === (m.c === undefined)) {
      throw new Error(`${mf}: give exactly one of "wasm" (a WASI command module) or "c" (a C source)`);
    }
    if (!m.input || !m.expect) throw new Error(`${mf}: "input" and "expect" are required`);
    let input: Uint8Array;
    if ('text' in m.input && typeof m.input.text === 'string') input = new TextEncoder().encode(m.input.text);
    else if ('file' in m.input && typeof m.input.file === 'string') input = new Uint8Array(await readFile(join(userDir, dir, m.input.file)));
    else throw new Error(`${mf}: "input" must be {"text": ...} or {"file": ...}`);
    if (!('stdout' in m.expect) && !('sha256' in m.expect)) {
      throw new Error(`${mf}: "expect" must be {"stdout": ...} or {"sha256": ...}`);
    }
    const workload = userWorkload(m, input, mf);
    const entry: FunctionEntry = {
      name: m.name,
      summary: m.summary ?? `user function ${m.name}`,
      origin: 'user',
      testOnly: false,
      workload,
    };
    const wanted: string[] = [];
    if (m.wasm !== undefined) {
      const p = join(userDir, dir, m.wasm);
      wanted.push(p);
      if (existsSync(p)) entry.wasm = { path: p, abi: 'command' };
    } else {
      const p = userArtifactPaths(repoRoot, m.name);
      wanted.push(p.wasm, p.native);
      if (existsSync(p.wasm)) entry.wasm = { path: p.wasm, abi: 'reactor' };
      if (existsSync(p.native)) entry.native = p.native;
    }
    out.push({ entry, wanted });
  }
  return out;
}

export async function loadCatalog(repoRoot?: string): Promise<Catalog> {
  const root = resolve(repoRoot ?? findRepoRoot());
  const fixtures = join(root, 'wasm-fixtures');
  const manifestPath = join(fixtures, 'functions.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { functions: BuiltinManifestEntry[] };

  const entries: FunctionEntry[] = [];
  const wanted = new Map<string, string[]>();
  const add = (e: FunctionEntry, paths: string[]): void => {
    if (wanted.has(e.name)) throw new Error(`duplicate function name "${e.name}" (${manifestPath} / user functions)`);
    entries.push(e);
    wanted.set(e.name, paths);
  };

  for (const f of manifest.functions) {
    const entry: FunctionEntry = {
      name: f.name,
      summary: f.summary,
      origin: f.origin,
      testOnly: f.testOnly,
      workload: getWorkload(f.workload),
    };
    const paths: string[] = [];
    if (f.wasm) {
      const p = join(fixtures, f.wasm);
      paths.push(p);
      if (existsSync(p)) entry.wasm = { path: p, abi: 'reactor' };
    }
    if (f.native) {
      const p = join(fixtures, f.native);
      paths.push(p);
      if (existsSync(p)) entry.native = p;
    }
    add(entry, paths);
  }
  for (const { entry, wanted: paths } of await loadUserFunctions(root)) add(entry, paths);

  const byName = new Map(entries.map((e) => [e.name, e]));
  const get = (name: string): FunctionEntry => {
    const e = byName.get(name);
    if (!e) throw new Error(`unknown function "${name}"; valid names: ${entries.map((x) => x.name).join(', ')}`);
    return e;
  };
  return {
    repoRoot: root,
    all: () => entries.slice(),
    defaults: () => entries.filter((e) => !e.testOnly && e.origin !== 'user'),
    get,
    missingArtifacts(name: string): string[] {
      get(name);
      return (wanted.get(name) ?? []).filter((p) => !existsSync(p));
    },
  };
}

/** "not built: <path> (run npm run bootstrap)" lines for a function, empty when complete. */
export function describeMissing(catalog: Catalog, name: string): string[] {
  return catalog.missingArtifacts(name).map((p) => `not built: ${p} (run npm run bootstrap)`);
}
