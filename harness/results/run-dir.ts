// One fresh folder per run. A folder that exists is never reused: creation is a non-recursive
// mkdir, which fails with EEXIST instead of merging into someone else's results.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export type RunState = 'running' | 'complete' | 'incomplete';

export interface RunStatus {
  state: RunState;
  /** ISO-8601 UTC */
  started: string;
  pid: number;
  ended?: string;
  reason?: string;
}

export interface RunDir {
  /** absolute path of the run folder */
  dir: string;
  /** folder name, e.g. 20250101-120000-cold-start-3fa9 */
  name: string;
  statusPath: string;
  /** path of the `latest` link, or a note why it was not updated */
  latest: { path: string; updated: boolean; note?: string };
  status(): RunStatus;
  markComplete(): void;
  markIncomplete(reason: string): void;
}

export interface CreateRunDirOptions {
  resultsRoot: string;
  experiment: string;
  /** explicit folder; must not exist */
  out?: string;
  /** injectable clock for tests */
  date?: Date;
}

/** UTC yyyymmdd-hhmmss */
export function utcStamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  );
}

/** Keep experiment names safe as a path segment. */
export function safeSegment(s: string): string {
  const clean = s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '');
  return clean || 'run';
}

function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { flag: 'wx' });
  fs.renameSync(tmp, file);
}

/** Point `<root>/latest` at `target` by renaming a fresh symlink over it (atomic). */
function updateLatest(root: string, target: string): RunDir['latest'] {
  const link = path.join(root, 'latest');
  try {
    const st = fs.lstatSync(link);
    if (!st.isSymbolicLink()) return { path: link, updated: false, note: `${link} exists and is not a symlink; left alone` };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const tmp = path.join(root, `.latest.tmp-${process.pid}-${randomBytes(3).toString('hex')}`);
  const rel = path.relative(root, target) || '.';
  fs.symlinkSync(rel, tmp);
  try {
    fs.renameSync(tmp, link);
  } catch (err) {
    fs.unlinkSync(tmp);
    return { path: link, updated: false, note: `could not update ${link}: ${(err as Error).message}` };
  }
  return { path: link, updated: true };
}

/**
 * Make a new folder: `out` exactly (its parent is created; refuses an existing one), or
 * `<root>/<base>-<4 hex>` with a fresh suffix. Returns its absolute path.
 */
export function createFreshDir(root: string, base: string, out?: string): string {
  if (out !== undefined) {
    const dir = path.resolve(out);
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    try {
      fs.mkdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new Error(`output folder ${dir} already exists; refusing to reuse or overwrite it (choose a new --out)`);
      }
      throw err;
    }
    return dir;
  }
  for (let attempt = 0; attempt < 16; attempt++) {
    const candidate = path.join(root, `${base}-${randomBytes(2).toString('hex')}`);
    try {
      fs.mkdirSync(candidate);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error(`could not create a fresh run folder ${base}-XXXX in ${root}`);
}

export function createRunDir(options: CreateRunDirOptions): RunDir {
  const root = path.resolve(options.resultsRoot);
  const date = options.date ?? new Date();
  fs.mkdirSync(root, { recursive: true }); // the root may be shared; run folders never are
  const dir = createFreshDir(root, `${utcStamp(date)}-${safeSegment(options.experiment)}`, options.out);

  const statusPath = path.join(dir, 'status.json');
  let status: RunStatus = { state: 'running', started: date.toISOString(), pid: process.pid };
  fs.writeFileSync(statusPath, JSON.stringify(status, null, 2) + '\n', { flag: 'wx' });
  // `latest` names the newest run of this results root; a folder elsewhere (--out) leaves it alone
  const inRoot = path.dirname(dir) === root;
  const latest = inRoot ? updateLatest(root, dir) : { path: path.join(root, 'latest'), updated: false, note: `${dir} is outside ${root}` };

  const finish = (next: RunStatus): void => {
    status = next;
    writeJsonAtomic(statusPath, status);
  };
  return {
    dir,
    name: path.basename(dir),
    statusPath,
    latest,
    status: () => ({ ...status }),
    markComplete() {
      finish({ state: 'complete', started: status.started, pid: status.pid, ended: new Date().toISOString() });
    },
    markIncomplete(reason: string) {
      finish({ state: 'incomplete', started: status.started, pid: status.pid, ended: new Date().toISOString(), reason });
    },
  };
}
