// Standalone executor process: `node executor-main.js --variant NAME --listen ENDPOINT [--memory-mib N] [--work-dir DIR] [--idle-control]`.
// Prints one line `READY {"endpoint":..., "enforcesTimeouts":...}` when it accepts connections.
// --idle-control (the density experiment): each stdin line `hold <function> <base64 input>` makes it keep one
// more idle instance (Variant.holdIdle), answered `HELD <base64 output>` or `FAILED <kind> <message>`.
import fs from 'node:fs';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { loadCatalog } from '../functions/catalog.js';
import { getVariantPlugin } from './registry.js';
import { Executor } from './executor.js';
import { listen } from './transport.js';
import { scratchDir } from './scratch.js';
import { InvokeError } from './variant.js';

const { values } = parseArgs({
  options: {
    variant: { type: 'string' },
    listen: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
    'work-dir': { type: 'string' },
    'idle-control': { type: 'boolean', default: false },
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
if (values['idle-control']) {
  // one request at a time, in order: the caller measures after each answer
  let chain = Promise.resolve();
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    chain = chain.then(() => hold(line)).then((answer) => void process.stdout.write(answer + '\n'));
  });
} else process.stdin.resume();

async function hold(line: string): Promise<string> {
  const [cmd, name, b64] = line.split(' ');
  const oneLine = (s: string) => s.replace(/\s+/g, ' ');
  if (cmd !== 'hold' || !name) return `FAILED bad-request ${oneLine(`expected "hold <function> <base64 input>", got "${line.slice(0, 100)}"`)}`;
  if (!variant.holdIdle) return `FAILED unavailable variant ${variant.name} cannot hold idle instances (no holdIdle)`;
  try {
    const out = await variant.holdIdle(catalog.get(name), new Uint8Array(Buffer.from(b64 ?? '', 'base64')));
    return `HELD ${Buffer.from(out).toString('base64')}`;
  } catch (e) {
    return `FAILED ${e instanceof InvokeError ? e.kind : 'function-error'} ${oneLine((e as Error).message ?? String(e))}`;
  }
}

process.stdout.write(`READY ${JSON.stringify({ endpoint: listener.endpoint, variant: variant.name, capability: cap, enforcesTimeouts: variant.enforcesTimeouts ?? false })}\n`);
