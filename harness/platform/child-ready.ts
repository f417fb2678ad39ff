// Starting a Node child of the platform (gateway, chain node) and waiting for its READY line.
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';

const READY_TIMEOUT_MS = 20_000;

/** The command that runs `node <args>`, under `taskset -c <cpus>` when CPUs are given. */
export function nodeCommand(args: string[], cpus?: string): { cmd: string; argv: string[] } {
  return cpus ? { cmd: 'taskset', argv: ['-c', cpus, process.execPath, ...args] } : { cmd: process.execPath, argv: args };
}

/** Resolves with the JSON of the child's first stdout line `READY {...}`; rejects if it exits, says something else, or is silent for 20 s. */
export function waitForReady<T>(child: ChildProcess, label: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${label} did not start within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`${label} exited (${sig ?? code}) before it was ready`));
    });
    readline.createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(t);
      if (line.startsWith('READY ')) resolve(JSON.parse(line.slice(6)) as T);
      else reject(new Error(`${label} said "${line}" instead of READY`));
    });
  });
}
