// env.json: the machine fingerprint stored beside every run, so numbers can be judged later.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Skip } from './schema.js';

export interface Env {
  timestamp: string;
  hostname: string;
  kernel: { release: string; version: string };
  os: string;
  cpu: { model: string; logicalCores: number };
  memoryTotalBytes: number;
  /** per core, e.g. {cpu0: "performance"}; or "unreadable: <why>" */
  cpuGovernor: Record<string, string> | string;
  /** e.g. "on (cpufreq/boost=1)", or "unreadable: <why>" */
  turbo: string;
  node: string;
  v8: string;
  tools: { runc: string; clang: string; 'wasm-opt': string; bpftool: string };
  git: { commit: string; dirty: boolean | 'unknown' };
  commandLine: string[];
  seed: number;
  quick: boolean;
  /** independent repetitions (--runs) */
  runs?: number;
  skips: Skip[];
  root: boolean;
  loadAverage: { '1m': number; '5m': number; '15m': number };
  extra?: Record<string, unknown>;
}

export interface CollectEnvOptions {
  argv: string[];
  seed: number;
  quick: boolean;
  /** independent repetitions (--runs) */
  runs?: number;
  skips: Skip[];
  extra?: Record<string, unknown>;
  /** where to ask git; default process.cwd() */
  repoDir?: string;
}

const TIMEOUT_MS = 3000;

function run(cmd: string, args: string[], cwd?: string): { ok: true; out: string } | { ok: false; why: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: TIMEOUT_MS, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { ok: false, why: code === 'ENOENT' ? 'not found' : `error: ${code ?? r.error.message}` };
  }
  if (r.status !== 0) return { ok: false, why: `exit ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n')[0] ?? ''}` };
  return { ok: true, out: (r.stdout || r.stderr).trim() };
}

/** First line of `<tool> <args>`, "not found" when absent, "error: ..." when it fails. */
export function toolVersion(cmd: string, args: string[]): string {
  const r = run(cmd, args);
  return r.ok ? (r.out.split('\n')[0] ?? '').trim() : r.why;
}

function readText(file: string): { ok: true; text: string } | { ok: false; why: string } {
  try {
    return { ok: true, text: fs.readFileSync(file, 'utf8').trim() };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, why: `${e.code ?? e.message} ${file}` };
  }
}

function osPrettyName(): string {
  const r = readText('/etc/os-release');
  if (!r.ok) return `unreadable: ${r.why}`;
  const m = /^PRETTY_NAME=(.*)$/m.exec(r.text);
  return m?.[1] ? m[1].replace(/^"(.*)"$/, '$1') : 'unknown (no PRETTY_NAME)';
}

function cpuModel(): string {
  const m = os.cpus()[0]?.model;
  if (m) return m.trim();
  const r = readText('/proc/cpuinfo');
  return r.ok ? (/^model name\s*:\s*(.*)$/m.exec(r.text)?.[1] ?? 'unknown') : `unreadable: ${r.why}`;
}

function governors(): Record<string, string> | string {
  const n = os.cpus().length;
  const out: Record<string, string> = {};
  let firstFailure = '';
  for (let i = 0; i < n; i++) {
    const r = readText(`/sys/devices/system/cpu/cpu${i}/cpufreq/scaling_governor`);
    if (r.ok) out[`cpu${i}`] = r.text;
    else {
      out[`cpu${i}`] = `unreadable: ${r.why}`;
      firstFailure ||= r.why;
    }
  }
  const values = Object.values(out);
  if (values.length > 0 && values.every((v) => v.startsWith('unreadable'))) {
    return `unreadable: ${firstFailure} (no cpufreq; e.g. a VM)`;
  }
  return out;
}

function turbo(): string {
  const noTurbo = readText('/sys/devices/system/cpu/intel_pstate/no_turbo');
  if (noTurbo.ok) return `${noTurbo.text === '1' ? 'off' : 'on'} (intel_pstate/no_turbo=${noTurbo.text})`;
  const boost = readText('/sys/devices/system/cpu/cpufreq/boost');
  if (boost.ok) return `${boost.text === '1' ? 'on' : 'off'} (cpufreq/boost=${boost.text})`;
  return `unreadable: ${noTurbo.why}; ${boost.why}`;
}

function git(repoDir: string): Env['git'] {
  const head = run('git', ['rev-parse', 'HEAD'], repoDir);
  const st = run('git', ['status', '--porcelain'], repoDir);
  return {
    commit: head.ok ? head.out : `unknown: ${head.why}`,
    dirty: st.ok ? st.out.length > 0 : 'unknown',
  };
}

// Tool versions and the commit do not change during a run: asked once per process, so that the
// env.json rewritten when a run stops (also on Ctrl-C) costs no subprocesses.
let fixedParts: { key: string; tools: Env['tools']; git: Env['git'] } | undefined;
function toolsAndGit(repoDir: string): { tools: Env['tools']; git: Env['git'] } {
  if (fixedParts?.key !== repoDir) {
    fixedParts = {
      key: repoDir,
      tools: {
        runc: toolVersion('runc', ['--version']),
        clang: toolVersion('clang', ['--version']),
        'wasm-opt': toolVersion('wasm-opt', ['--version']),
        bpftool: toolVersion('bpftool', ['version']),
      },
      git: git(repoDir),
    };
  }
  return fixedParts;
}

export function collectEnv(o: CollectEnvOptions): Env {
  const fixed = toolsAndGit(o.repoDir ?? process.cwd());
  const [l1, l5, l15] = os.loadavg();
  const env: Env = {
    timestamp: new Date().toISOString(),
    hostname: os.hostname(),
    kernel: { release: os.release(), version: os.version() },
    os: osPrettyName(),
    cpu: { model: cpuModel(), logicalCores: os.availableParallelism?.() ?? os.cpus().length },
    memoryTotalBytes: os.totalmem(),
    cpuGovernor: governors(),
    turbo: turbo(),
    node: process.version,
    v8: process.versions.v8,
    tools: fixed.tools,
    git: fixed.git,
    commandLine: [...o.argv],
    seed: o.seed,
    quick: o.quick,
    runs: o.runs ?? 1,
    skips: [...o.skips],
    root: typeof process.getuid === 'function' ? process.getuid() === 0 : false,
    loadAverage: { '1m': l1 ?? NaN, '5m': l5 ?? NaN, '15m': l15 ?? NaN },
  };
  if (o.extra) env.extra = o.extra;
  return env;
}

/** Write `<dir>/env.json` (never overwrites). Returns the path. */
/** Writes env.json; `update` replaces the one this same run wrote earlier (atomically), never another run's. */
export function writeEnvJson(dir: string, env: Env, options: { update?: boolean } = {}): string {
  const file = path.join(dir, 'env.json');
  const text = JSON.stringify(env, null, 2) + '\n';
  if (!options.update) {
    fs.writeFileSync(file, text, { flag: 'wx' });
    return file;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  return file;
}
