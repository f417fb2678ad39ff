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

/** Removes the scratch folders whose owner is gone; one line per folder removed. */
export function cleanupStaleScratch(tmp: string = os.tmpdir(), alive: (pid: number) => boolean = pidAlive): string[] {
  const lines: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return lines;
  }
  for (const n of names) {
    const m = NAME.exec(n);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    const p = path.join(tmp, n);
    try {
      if (!fs.lstatSync(p).isDirectory()) continue;
      fs.rmSync(p, { recursive: true, force: true });
      lines.push(`removed scratch folder ${p} left by pid ${pid} (no longer running)`);
    } catch (e) {
      lines.push(`could not remove scratch folder ${p} left by pid ${pid}: ${(e as Error).message}`);
    }
  }
  return lines;
}
