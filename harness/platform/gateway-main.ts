// Standalone gateway process: `node gateway-main.js [--binary ENDPOINT] [--http HOST:PORT] [--memory-mib N]`.
// Prints `READY {"binary":..., "http":...}` once listening; SIGTERM/SIGINT stop it and its executors.
import { parseArgs } from 'node:util';
import { Gateway } from './gateway.js';

const { values } = parseArgs({
  options: {
    binary: { type: 'string' },
    http: { type: 'string' },
    'memory-mib': { type: 'string', default: '256' },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});
if (!values.binary && !values.http) {
  console.error('usage: gateway-main [--binary unix:/path|tcp:host:port] [--http host:port] [--memory-mib N] [--timeout-ms N]');
  process.exit(2);
}
const gw = await Gateway.start({
  binary: values.binary,
  http: values.http,
  memoryLimitMiB: Number(values['memory-mib']),
  defaultTimeoutMs: Number(values['timeout-ms']),
});
let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await gw.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
process.stdout.write(`READY ${JSON.stringify({ binary: gw.binaryEndpoint, http: gw.httpUrl })}\n`);
