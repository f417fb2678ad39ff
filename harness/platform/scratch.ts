// Scratch folders of the platform: <tmpdir>/fxh-<what>-<pid>-XXXXXX. A folder names the process that
// owns it, so what a SIGKILLed run left can be told from what a live one is using, and the next
// run removes it (cleanupStaleScratch) and says so.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pidAlive } from './proc-memory.js';

const NAME = /^fxh-([a-z]+)-(\d+)-/;

/** A new scratch folder of this process, e.g. scratchDir('gw') -> /tmp/fxh-gw-1234-a1B2c3. */
export function scratchDir(what: string, tmp: string = os.tmpdir()): string {
  if (!/^[a-z]+$/.test(what)) throw new Error(`scratch folder kind "${what}": lower-case letters only`);
  return fs.mkdtempSync(path.join(tmp, `fxh-${what}-${process.pid}-`));
}

export interface StaleScratchOptions {
  /** only this kind (the <what> of fxh-<what>-<pid>-) */
  what?: string;
  /** files too (e.g. /dev/shm segments), not only folders */
  files?: boolean;
}

/** Removes the scratch folders in `tmp` whose owner is gone; one line per thing removed. */
export function cleanupStaleScratch(tmp: string = os.tmpdir(), alive: (pid: number) => boolean = pidAlive, opts: StaleScratchOptions = {}): string[] {
  const lines: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return lines;
  }
  for (const n of names) {
    const m = NAME.exec(n);
    if (!m || (opts.what !== undefined && m[1] !== opts.what)) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    const p = path.join(tmp, n);
    try {
      if (!opts.files && !fs.lstatSync(p).isDirectory()) continue;
      fs.rmSync(p, { recursive: true, force: true });
      lines.push(`removed stale ${p} (pid ${pid} is gone)`);
    } catch (e) {
      lines.push(`could not remove stale ${p} (pid ${pid} is gone): ${(e as Error).message}`);
    }
  }
  return lines;
}
