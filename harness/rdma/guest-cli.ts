// node build/harness/rdma/guest-cli.js --out <host dir> [--timeout-ms N] [--no-network] -- <command…>
// Boots a throwaway SoftRoCE guest (guest.ts), runs the command in it, prints its output, exits with its code.
import fs from 'node:fs';
import { GuestError, runInGuest } from './guest.js';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const flags = sep < 0 ? argv : argv.slice(0, sep);
const command = sep < 0 ? [] : argv.slice(sep + 1);
const flag = (name: string) => {
  const i = flags.indexOf(name);
  return i < 0 ? undefined : flags[i + 1];
};
const outDir = flag('--out');
if (!outDir || !command.length) {
  console.error('usage: guest-cli --out <host dir> [--timeout-ms N] [--no-network] -- <command…>');
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const ac = new AbortController();
process.on('SIGINT', () => ac.abort());
try {
  const r = await runInGuest({ command, outDir, timeoutMs: Number(flag('--timeout-ms') ?? 300_000), network: !flags.includes('--no-network'), signal: ac.signal });
  process.stdout.write(r.output);
  console.error(`guest-cli: ${r.accel}, kernel ${r.kernel}, booted in ${(r.bootMs / 1000).toFixed(1)} s, ${(r.wallMs / 1000).toFixed(1)} s in all, exit ${r.exitCode}; console log ${r.consoleLogPath}`);
  process.exit(r.exitCode ?? 1);
} catch (e) {
  console.error(`guest-cli: ${e instanceof GuestError ? e.message : String(e)}`);
  process.exit(1);
}
