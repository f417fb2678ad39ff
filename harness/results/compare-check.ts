// Whether two results folders may be compared: read each (raw.csv, env.json, status.json,
// summary.csv), then name every difference that makes a ratio meaningless — another machine or
// software fingerprint, other experiment flags, an unfinished run. The git commit may differ: that
// is what a comparison is for.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readRawCsv } from './raw-writer.js';
import { readSummaryCsv } from './summarize.js';
import type { RawRow, SummaryRow } from './schema.js';

/** Bad input: a missing folder or file, an unreadable one. The command exits 2. */
export class CompareInputError extends Error {
  override name = 'CompareInputError';
}

export interface RunFolder {
  /** "A" or "B" */
  side: string;
  dir: string;
  env: Record<string, unknown>;
  /** status.json, or undefined when the folder has none */
  status: { state?: string; reason?: string } | undefined;
  raw: RawRow[];
  /** summary.csv rows, or [] when absent (it is written at the end of a run) */
  summary: SummaryRow[];
}

function readJson(file: string, side: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CompareInputError(`${side}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {}
  throw new CompareInputError(`${side}: ${file} is not a JSON object`);
}

export function loadRunFolder(dir: string, side: string): RunFolder {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new CompareInputError(`${side}: no such folder: ${abs}`);
  }
  if (!st.isDirectory()) throw new CompareInputError(`${side}: not a folder: ${abs}`);
  const rawPath = path.join(abs, 'raw.csv');
  if (!fs.existsSync(rawPath)) throw new CompareInputError(`${side}: ${abs} has no raw.csv, so it is not a results folder (or its run measured nothing)`);
  if (!fs.existsSync(path.join(abs, 'env.json'))) throw new CompareInputError(`${side}: ${abs} has no env.json, so its machine and flags are unknown`);
  const env = readJson(path.join(abs, 'env.json'), side);
  const statusPath = path.join(abs, 'status.json');
  const status = fs.existsSync(statusPath) ? readJson(statusPath, side) : undefined;
  let raw: RawRow[];
  let summary: SummaryRow[] = [];
  try {
    raw = readRawCsv(rawPath);
    const summaryPath = path.join(abs, 'summary.csv');
    if (fs.existsSync(summaryPath)) summary = readSummaryCsv(summaryPath);
  } catch (e) {
    throw new CompareInputError(`${side}: ${(e as Error).message}`);
  }
  return { side, dir: abs, env, status: status as RunFolder['status'], raw, summary };
}

/** Fingerprint fields that must be equal: a ratio across machines or toolchains measures those. */
export const MACHINE_FIELDS = [
  'os', 'kernel.release', 'kernel.version', 'cpu.model', 'cpu.logicalCores', 'memoryTotalBytes', 'cpuGovernor', 'turbo',
  'node', 'v8', 'tools.runc', 'tools.clang', 'tools.wasm-opt', 'tools.bpftool', 'root',
] as const;

/** Flags that do not change what is measured: where the folder goes, the seed (printed instead), notebooks. */
export const IGNORED_FLAGS = new Set(['out', 'seed', 'no-notebooks', 'help']);

function field(env: Record<string, unknown>, dotted: string): unknown {
  let v: unknown = env;
  for (const part of dotted.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

const show = (v: unknown) => (v === undefined ? '(absent)' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v));

/**
 * The entry script and its flags from env.json's commandLine (["experiments/warm.mjs", "--reps",
 * "40", "--quick", ...]); `--k=v` and `--k v` are the same, a flag without a value is "true".
 * Experiments take no positionals, so a word after a flag is its value.
 */
export function parseCommandLine(cmd: readonly string[]): { script: string; flags: Map<string, string> } {
  const [script = '', ...rest] = cmd;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const t = rest[i] as string;
    if (!t.startsWith('--')) {
      flags.set(`(argument ${i + 1})`, t);
      continue;
    }
    const eq = t.indexOf('=');
    if (eq > 0) flags.set(t.slice(2, eq), t.slice(eq + 1));
    else if (i + 1 < rest.length && !(rest[i + 1] as string).startsWith('--')) flags.set(t.slice(2), rest[++i] as string);
    else flags.set(t.slice(2), 'true');
  }
  return { script, flags };
}

export interface Comparability {
  /** why the two may not be compared; each names the field and both values */
  refusals: string[];
  /** what differs but is allowed (commit, seed, host name), for the record */
  info: string[];
}

function commandLineOf(f: RunFolder): string[] {
  const c = f.env.commandLine;
  return Array.isArray(c) ? c.map(String) : [];
}

export function checkComparable(a: RunFolder, b: RunFolder): Comparability {
  const refusals: string[] = [];
  const info: string[] = [];
  for (const f of [a, b]) {
    const state = f.status?.state;
    if (state !== 'complete') {
      const why = f.status === undefined ? 'has no status.json' : `is ${state ?? 'of unknown state'}${f.status.reason ? ` (${f.status.reason})` : ''}`;
      refusals.push(`${f.side} ${why}, not complete: ${f.dir}`);
    }
  }
  for (const k of MACHINE_FIELDS) {
    const va = field(a.env, k);
    const vb = field(b.env, k);
    if (JSON.stringify(va) !== JSON.stringify(vb)) refusals.push(`machine differs: ${k} is ${show(va)} in A, ${show(vb)} in B`);
  }
  const ca = parseCommandLine(commandLineOf(a));
  const cb = parseCommandLine(commandLineOf(b));
  if (ca.script !== cb.script) refusals.push(`experiment differs: A ran ${show(ca.script)}, B ran ${show(cb.script)}`);
  for (const k of [...new Set([...ca.flags.keys(), ...cb.flags.keys()])]) {
    if (IGNORED_FLAGS.has(k)) continue;
    const va = ca.flags.get(k);
    const vb = cb.flags.get(k);
    if (va !== vb) refusals.push(`flags differ: --${k} is ${va === undefined ? 'not given' : show(va)} in A, ${vb === undefined ? 'not given' : show(vb)} in B`);
  }
  const commit = (f: RunFolder) => {
    const g = field(f.env, 'git.commit');
    const dirty = field(f.env, 'git.dirty');
    return `${typeof g === 'string' ? g : 'unknown'}${dirty === true ? ' (dirty)' : ''}`;
  };
  info.push(`commit: A ${commit(a)}, B ${commit(b)}${commit(a) === commit(b) ? ' (the same)' : ''}`);
  info.push(`seed: A ${show(field(a.env, 'seed'))}, B ${show(field(b.env, 'seed'))}`);
  const load = (f: RunFolder) => {
    const l = field(f.env, 'loadAverage.1m');
    return typeof l === 'number' ? String(l) : 'unknown';
  };
  // other work on the machine moves latencies; env.json takes it at the end of the run
  info.push(`load average (1 min, at the end of the run): A ${load(a)}, B ${load(b)}`);
  const ha = field(a.env, 'hostname');
  const hb = field(b.env, 'hostname');
  if (ha !== hb) info.push(`host name: A ${show(ha)}, B ${show(hb)}`);
  return { refusals, info };
}
