// node build/harness/experiments/rdma-ebpf-guest-main.js --plan plan.json --out result.json
// Inside the SoftRoCE guest: runs the plan (rdma-ebpf-guest.ts) and writes what it measured, also
// when it failed part way (then with `error`, and exit status 1).
import fs from 'node:fs';
import { runGuestPlan, type GuestPlan, type GuestResult } from './rdma-ebpf-guest.js';

const argv = process.argv.slice(2);
const flag = (n: string) => {
  const i = argv.indexOf(n);
  return i < 0 ? undefined : argv[i + 1];
};
const planPath = flag('--plan'), outPath = flag('--out');
if (!planPath || !outPath) {
  process.stderr.write('usage: rdma-ebpf-guest-main --plan plan.json --out result.json\n');
  process.exit(2);
}
const result: GuestResult = { kernel: '', notes: [], phases: [] };
try {
  await runGuestPlan(JSON.parse(fs.readFileSync(planPath, 'utf8')) as GuestPlan, result);
} catch (e) {
  result.error = (e as Error).stack ?? String(e);
}
fs.writeFileSync(outPath, JSON.stringify(result));
process.exit(result.error ? 1 : 0);
