// The node agent process: `node agent-main.js --variant NAME [--variant NAME…] --listen ENDPOINT
//   [--node NAME] [--memory-mib N] [--work-dir DIR] [--lifeline stdin|none|connect:ENDPOINT]`.
// --variant repeats (or takes a comma list, or "all"); --listen is any link scheme (unix:, tcp:).
// --lifeline (platform/lifeline.ts; default stdin): what ends it besides SIGTERM/SIGINT. A child of
// the gateway keeps stdin; an agent started over ssh keeps the ssh session's stdin; a service, none.
// --idle-control (the density experiment; one variant): stdin also carries `hold` requests (idle-control.ts);
// its end still ends the agent.
// Prints one line `READY {"endpoint":…, "variant":…, "capability":…, "enforcesTimeouts":…, "info":…}`
// (the first variant's fields for the gateway's one-variant executors; info is the hello's).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCatalog } from '../functions/catalog.js';
import { getVariantPlugin, loadVariantPlugins } from './registry.js';
import { Agent } from './agent.js';
import { ModuleStore } from './module-store.js';
import { RegionTable, listenLinks } from './link.js';
import { lifelineFlagOrExit, watchLifeline } from './lifeline.js';
import { scratchDir } from './scratch.js';
import { serveIdleControl } from './idle-control.js';
import type { VariantPlugin } from './variant.js';

const USAGE = 'usage: agent-main --variant NAME[,NAME…]|all [--variant …] --listen unix:/path|tcp:host:port [--node NAME] [--memory-mib N] [--work-dir DIR] [--lifeline stdin|none|connect:ENDPOINT]';
const { values } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true },
    listen: { type: 'string' },
    node: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
    'work-dir': { type: 'string' },
    lifeline: { type: 'string' },
    'idle-control': { type: 'boolean', default: false },
  },
});
const lifeline = lifelineFlagOrExit(values.lifeline);
if (!values.variant?.length || !values.listen) {
  console.error(USAGE);
  process.exit(2);
}
const memoryLimitMiB = Number(values['memory-mib']);
if (!(Number.isInteger(memoryLimitMiB) && memoryLimitMiB > 0)) {
  console.error(`--memory-mib wants a positive integer, not "${values['memory-mib']}"`);
  process.exit(2);
}
const asked = values.variant.flatMap((v) => v.split(',')).filter(Boolean);
const names = asked.includes('all') ? [...(await loadVariantPlugins()).keys()] : [...new Set(asked)];
const plugins = new Map<string, VariantPlugin>();
for (const n of names) {
  try {
    plugins.set(n, await getVariantPlugin(n));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
}

// a scratch folder of our own (no --work-dir) goes with us
const ownWorkDir = values['work-dir'] === undefined;
const workDir = values['work-dir'] ?? scratchDir('agent');
fs.mkdirSync(workDir, { recursive: true });
const node = values.node ?? `${os.hostname()}:${process.pid}`;
let generation = 0;
const catalog = await loadCatalog();
const agent = await Agent.start({
  node,
  variantNames: names,
  memoryLimitMiB,
  // one folder per variant instance; a restart gets a fresh one
  create: (n) => {
    const dir = path.join(workDir, `${n}-${generation++}`);
    fs.mkdirSync(dir, { recursive: true });
    return plugins.get(n)!.create({ workDir: dir, memoryLimitMiB });
  },
  catalog,
  store: new ModuleStore(path.join(workDir, 'modules')),
  regions: new RegionTable(),
});
const listener = await listenLinks(values.listen, (link) => agent.serve(link), { regions: agent.regions });

// our parent may be gone (that is why we stop): writing to its pipes must not kill us before we clean up
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
let stopping = false;
async function stop(why: string, code = 0) {
  if (stopping) return;
  stopping = true;
  if (why !== 'SIGTERM') process.stderr.write(`agent ${node}: stopping: ${why}\n`);
  await Promise.allSettled([listener.close(), agent.teardown()]);
  if (ownWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGHUP', () => void stop('SIGHUP'));
watchLifeline(lifeline, (why) => void stop(why));
if (values['idle-control']) serveIdleControl(() => agent.variant(names[0]!), catalog);

const info = agent.info();
const first = info.variants[0]!;
process.stdout.write(`READY ${JSON.stringify({ endpoint: listener.endpoint, variant: first.name, capability: first.capability, enforcesTimeouts: first.enforcesTimeouts, info })}\n`);
