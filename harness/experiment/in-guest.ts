// An experiment asked to run over RDMA where this machine has no RDMA device runs, whole, inside the
// SoftRoCE guest: the same entry script and flags, this checkout (the guest sees the host's root),
// its results written through the guest's writable share into a staging folder, then moved into a
// fresh run folder here. Notebooks run here afterwards (Jupyter under emulation would take minutes).
// Numbers from the guest's emulated CPU compare only with each other: env.json says which substrate.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot, resultsRoot } from '../paths.js';
import { createFreshDir, createRunDir, utcStamp, type RunDir } from '../results/run-dir.js';
import { GuestError, runInGuest, type GuestRunResult } from '../rdma/guest.js';
import type { CommonArgs } from './args.js';
import { executeNotebooks } from './notebooks.js';

/** RDMA devices this kernel shows (hardware, or SoftRoCE already configured) */
export function rdmaDevices(): string[] {
  try {
    return fs.readdirSync('/sys/class/infiniband');
  } catch {
    return [];
  }
}

/** why the experiment must move into the guest, or null when it runs here */
export function needsGuest(args: CommonArgs): string | null {
  if (!args.transports.includes('rdma') || process.env.FXH_GUEST) return null;
  if (rdmaDevices().length) return null;
  // the host kernel could create an rxe device itself, but only in its initial namespace and with
  // its routing rules changed (see guest-net.sh): the harness does that only inside its guest
  return 'no RDMA device on this machine (/sys/class/infiniband is empty)';
}

/** flags for the run inside the guest: the host names the folder and runs the notebooks */
function guestArgv(argv: string[], out: string): string[] {
  const keep: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--out') i++;
    else if (a.startsWith('--out=') || a === '--no-notebooks') continue;
    else keep.push(a);
  }
  return [...keep, '--out', out, '--no-notebooks'];
}

/** the whole guest run may take this long before it is stopped (FXH_GUEST_TIMEOUT_MS) */
const guestTimeoutMs = () => Number(process.env.FXH_GUEST_TIMEOUT_MS ?? 60 * 60_000);

/** the run's notebooks execute here after the guest is done */
export async function runInGuestAndExit(o: { name: string; scriptUrl: string; notebooks: string[] }, args: CommonArgs, why: string): Promise<never> {
  // the folder the user asked for, made first: an --out that exists is refused before any guest boots
  let run: RunDir;
  try {
    run = createRunDir({ resultsRoot, experiment: o.name, out: args.out });
  } catch (e) {
    process.stderr.write(`${o.name}: ${(e as Error).message}\n`);
    process.exit(2);
  }
  process.stderr.write(`results: ${run.dir}\n`);
  const staging = createFreshDir(resultsRoot, `.guest-${utcStamp(new Date())}-${o.name}`);
  const inner = path.join(staging, 'run');
  const script = path.relative(repoRoot, fileURLToPath(o.scriptUrl));
  process.stderr.write(`${o.name}: ${why}: running the experiment inside a SoftRoCE guest (QEMU; its output follows as it comes)\n`);
  const ac = new AbortController();
  const onSignal = () => {
    process.stderr.write('\ninterrupted: stopping the guest; what it wrote so far is kept\n');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // the guest's output file grows through the share: follow it
  const outFile = path.join(staging, 'guest', 'output.txt');
  let shown = 0;
  const follow = setInterval(() => {
    try {
      const b = fs.readFileSync(outFile);
      if (b.length > shown) process.stderr.write(b.subarray(shown));
      shown = b.length;
    } catch {}
  }, 1000);
  let result: GuestRunResult | null = null;
  let failure: string | null = null;
  try {
    const cmd = `export FXH_GATEWAY_ADDR="$FXH_GUEST_ADDR_B" FXH_NODE_ADDR="$FXH_GUEST_ADDR_A"; exec "$@"`;
    result = await runInGuest({ command: ['sh', '-c', cmd, 'sh', process.execPath, script, ...guestArgv(args.argv, inner)], outDir: staging, timeoutMs: guestTimeoutMs(), signal: ac.signal });
  } catch (e) {
    failure = e instanceof GuestError ? e.message : String(e);
  } finally {
    clearInterval(follow);
  }
  // what the guest wrote moves into the run folder (its status.json over ours)
  if (fs.existsSync(inner)) for (const f of fs.readdirSync(inner)) fs.renameSync(path.join(inner, f), path.join(run.dir, f));
  fs.renameSync(path.join(staging, 'guest'), path.join(run.dir, 'guest'));
  fs.rmSync(staging, { recursive: true, force: true });
  const substrate = result
    ? { kind: 'softroce-guest', accel: result.accel, accelReason: result.accelReason, guestKernel: result.kernel, bootMs: Math.round(result.bootMs), comparable: 'only with other numbers from this guest: its CPU is emulated' }
    : { kind: 'softroce-guest', failed: failure };
  addToEnv(run.dir, { substrate });
  if (failure || !result || result.exitCode === null) {
    const state = readState(run.dir);
    if (state !== 'incomplete') run.markIncomplete(`the guest run failed: ${failure ?? 'no exit code'}`);
    process.stderr.write(`\n${o.name}: the guest run failed: ${failure}\nresults so far (with the guest's console log in guest/): ${run.dir}\n`);
    process.exit(ac.signal.aborted ? 130 : 1);
  }
  if (result.exitCode === 0 && args.notebooks && readState(run.dir) === 'complete') {
    const nb = await executeNotebooks(o.notebooks, run.dir);
    for (const f of nb.written) process.stderr.write(`notebook: ${path.relative(run.dir, f)}\n`);
    for (const p of nb.problems) process.stderr.write(`note: ${p}\n`);
  }
  process.stderr.write(`${o.name}: guest (${result.accel}, kernel ${result.kernel}) booted in ${(result.bootMs / 1000).toFixed(1)} s; ${(result.wallMs / 1000).toFixed(0)} s in all\n`);
  process.stdout.write(`results: ${run.dir}\n`);
  process.exit(result.exitCode);
}

function readState(dir: string): string | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8')).state as string;
  } catch {
    return undefined;
  }
}

function addToEnv(dir: string, extra: Record<string, unknown>): void {
  const file = path.join(dir, 'env.json');
  let env: Record<string, unknown> = {};
  try {
    env = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {}
  fs.writeFileSync(file, JSON.stringify({ ...env, ...extra }, null, 2) + '\n');
}

