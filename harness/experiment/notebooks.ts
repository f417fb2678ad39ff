// Executes notebooks headlessly into a results folder (Debian's jupyter nbconvert, tslab kernel).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../paths.js';

const PYTHON = '/usr/bin/python3';
const TIMEOUT_MS = 300_000;
/** how long the kernel may take to answer after its start (nbclient's default is 60 s) */
const KERNEL_START_S = 120;

export async function executeNotebooks(names: string[], runDir: string): Promise<{ written: string[]; problems: string[] }> {
  const written: string[] = [];
  const problems: string[] = [];
  if (!names.length) return { written, problems };
  if (!fs.existsSync(PYTHON)) return { written, problems: [`notebooks not executed: ${PYTHON} not found (apt-get install python3-notebook jupyter-nbconvert)`] };
  const outDir = path.join(runDir, 'notebooks');
  fs.mkdirSync(outDir, { recursive: true });
  // tslab and its kernel spec must be found: node_modules/.bin on PATH
  const env = { ...process.env, FXH_RESULTS: runDir, PATH: `${path.join(repoRoot, 'node_modules', '.bin')}:${process.env.PATH ?? ''}` };
  for (const name of names) {
    const src = path.join(repoRoot, 'notebooks', name);
    if (!fs.existsSync(src)) {
      problems.push(`notebook ${name} not found in notebooks/`);
      continue;
    }
    const base = name.replace(/\.ipynb$/, '');
    const run = () =>
      spawnSync(PYTHON, ['-m', 'jupyter', 'nbconvert', '--to', 'notebook', '--execute', '--ExecutePreprocessor.timeout=240', `--ExecutePreprocessor.startup_timeout=${KERNEL_START_S}`, '--output-dir', outDir, '--output', `${base}.ipynb`, src], { env, cwd: repoRoot, encoding: 'utf8', timeout: TIMEOUT_MS });
    const tail = (r: ReturnType<typeof run>) => (r.stderr || r.error?.message || '').trim().split('\n').slice(-5).join(' | ');
    let exec = run();
    // once, after a long container run, the tslab kernel did not answer within nbclient's 60 s; a second start is cheap
    if (exec.status !== 0 && /Kernel didn't respond|Kernel died/.test(exec.stderr ?? '')) {
      problems.push(`notebook ${name}: the kernel did not start (${tail(exec)}); tried again`);
      exec = run();
    }
    if (exec.status !== 0) {
      problems.push(`notebook ${name} failed to execute: ${tail(exec)}`);
      continue;
    }
    const executed = path.join(outDir, `${base}.ipynb`);
    written.push(executed);
    const html = spawnSync(PYTHON, ['-m', 'jupyter', 'nbconvert', '--to', 'html', '--output-dir', outDir, executed], { env, cwd: repoRoot, encoding: 'utf8', timeout: TIMEOUT_MS });
    if (html.status === 0) written.push(path.join(outDir, `${base}.html`));
    else problems.push(`notebook ${name}: HTML export failed: ${(html.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
  }
  return { written, problems };
}
