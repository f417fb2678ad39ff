// Standalone gateway process: `node gateway-main.js [--binary ENDPOINT] [--http HOST:PORT] [--memory-mib N] [--executor-transport unix|tcp|SCHEME:HOST:PORT] [--pool N] [--splice-map-fd FD --sockhash-fd FD]`.
// --pool: executors per variant; each call goes to the one with the fewest calls in flight (equals take turns).
// --executor-transport: how it reaches executors whose variant does not say (default unix).
// --splice-map-fd/--sockhash-fd: inherited fds of the sockmap programs' fxh_splice and fxh_sockhash
// maps; the gateway then splices binary clients that ask for it (harness/bpf/arm.ts starts it so).
// --lifeline stdin|none|connect:<endpoint> (default stdin): what ends it besides SIGTERM/SIGINT
// (platform/lifeline.ts); a gateway run as a service takes none. It says on stderr why it stops.
// Prints `READY {"binary":..., "http":...}` once listening; SIGTERM/SIGINT stop it and its executors.
import { parseArgs } from 'node:util';
import { Gateway } from './gateway.js';
import { lifelineFlagOrExit, watchLifeline } from './lifeline.js';

const { values } = parseArgs({
  options: {
    binary: { type: 'string' },
    http: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
    'timeout-ms': { type: 'string', default: '10000' },
    'executor-transport': { type: 'string', default: 'unix' },
    'splice-map-fd': { type: 'string' },
    'sockhash-fd': { type: 'string' },
    lifeline: { type: 'string' },
    pool: { type: 'string', default: '1' },
  },
});
const lifeline = lifelineFlagOrExit(values.lifeline);
function inheritedFd(flag: 'splice-map-fd' | 'sockhash-fd'): number | undefined {
  const v = values[flag];
  if (v === undefined) return undefined;
  const fd = Number(v);
  if (!(Number.isInteger(fd) && fd > 2)) {
    console.error(`--${flag} wants an inherited file descriptor number > 2, got "${v}"`);
    process.exit(2);
  }
  return fd;
}
const spliceFd = inheritedFd('splice-map-fd');
const sockhashFd = inheritedFd('sockhash-fd');
if ((spliceFd === undefined) !== (sockhashFd === undefined)) {
  console.error('--splice-map-fd and --sockhash-fd go together');
  process.exit(2);
}
// loaded only when asked: a gateway without splicing never loads libbpf
const splicer = spliceFd === undefined ? undefined : (await import('../bpf/splice-map.js')).spliceMapSplicer(spliceFd, sockhashFd!);
const executorTransport = values['executor-transport'];
if (executorTransport !== 'unix' && executorTransport !== 'tcp' && !/^[a-z]+:.+:\d+$/.test(executorTransport)) {
  console.error(`--executor-transport is unix, tcp or an endpoint to listen on (scheme:host:port), not "${executorTransport}"`);
  process.exit(2);
}
const poolSize = Number(values.pool);
if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 64) {
  console.error(`--pool wants executors per variant, an integer in 1…64, not "${values.pool}"`);
  process.exit(2);
}
if (!values.binary && !values.http) {
  console.error('usage: gateway-main [--binary unix:/path|tcp:host:port] [--http host:port] [--memory-mib N] [--timeout-ms N] [--executor-transport unix|tcp|SCHEME:HOST:PORT] [--pool N] [--lifeline stdin|none|connect:ENDPOINT]');
  process.exit(2);
}
const gw = await Gateway.start({
  binary: values.binary,
  http: values.http,
  memoryLimitMiB: Number(values['memory-mib']),
  defaultTimeoutMs: Number(values['timeout-ms']),
  executorTransport,
  splicer,
  poolSize,
});
// our parent may be gone (a reason to stop): writing to its pipes must not kill us before we clean up
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
let stopping = false;
async function stop(why: string) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`gateway ${process.pid}: stopping: ${why}\n`);
  await gw.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
watchLifeline(lifeline, (why) => void stop(why));
process.stdout.write(`READY ${JSON.stringify({ binary: gw.binaryEndpoint, http: gw.httpUrl })}\n`);
