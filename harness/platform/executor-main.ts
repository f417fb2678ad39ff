// Standalone executor process: `node executor-main.js --variant NAME --listen ENDPOINT [--memory-mib N] [--work-dir DIR]`.
// Prints one line `READY {"endpoint":..., "enforcesTimeouts":...}` when it accepts connections.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { loadCatalog } from '../functions/catalog.js';
import { getVariantPlugin } from './registry.js';
import { Executor } from './executor.js';
import { listen } from './transport.js';
import { scratchDir } from './scratch.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string' },
    listen: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
    'work-dir': { type: 'string' },
  },
});
if (!values.variant || !values.listen) {
  console.error('usage: executor-main --variant NAME --listen unix:/path|tcp:host:port [--memory-mib N] [--work-dir DIR]');
  process.exit(2);
}

const plugin = await getVariantPlugin(values.variant);
// a scratch folder of our own (no --work-dir) goes with us
const ownWorkDir = values['work-dir'] === undefined;
const workDir = values['work-dir'] ?? scratchDir('exec');
fs.mkdirSync(workDir, { recursive: true });
const variant = plugin.create({ workDir, memoryLimitMiB: Number(values['memory-mib']) });
const cap = await variant.check();
const catalog = await loadCatalog();
const executor = new Executor(variant, catalog);
const listener = await listen(values.listen, (s) => executor.serve(s));

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled([listener.close(), variant.teardown()]);
  if (ownWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGTERM', () => void stop(0));
process.on('SIGINT', () => void stop(0));
// The gateway closing our stdin means it is gone: do not outlive it.
process.stdin.on('end', () => void stop(0));
process.stdin.resume();

process.stdout.write(`READY ${JSON.stringify({ endpoint: listener.endpoint, variant: variant.name, capability: cap, enforcesTimeouts: variant.enforcesTimeouts ?? false })}\n`);
