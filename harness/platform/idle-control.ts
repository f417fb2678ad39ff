// An agent asked to hold idle instances (agent-main --idle-control, for the density experiment):
// each stdin line `hold <function> <base64 input>` makes `variant` keep one more idle instance
// (Variant.holdIdle), answered `HELD <base64 output>` or `FAILED <kind> <message>`, one at a time, in
// order: the caller measures after each answer.
import readline from 'node:readline';
import type { FunctionLookup } from './agent.js';
import { InvokeError, type Variant } from './variant.js';

export function serveIdleControl(variant: () => Variant | undefined, catalog: FunctionLookup): void {
  let chain = Promise.resolve();
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    chain = chain.then(() => hold(line)).then((answer) => void process.stdout.write(answer + '\n'));
  });

  async function hold(line: string): Promise<string> {
    const [cmd, name, b64] = line.split(' ');
    const oneLine = (s: string) => s.replace(/\s+/g, ' ');
    if (cmd !== 'hold' || !name) return `FAILED bad-request ${oneLine(`expected "hold <function> <base64 input>", got "${line.slice(0, 100)}"`)}`;
    const v = variant();
    if (!v?.holdIdle) return `FAILED unavailable variant ${v?.name ?? '?'} cannot hold idle instances (no holdIdle)`;
    try {
      const out = await v.holdIdle(catalog.get(name), new Uint8Array(Buffer.from(b64 ?? '', 'base64')));
      return `HELD ${Buffer.from(out).toString('base64')}`;
    } catch (e) {
      return `FAILED ${e instanceof InvokeError ? e.kind : 'function-error'} ${oneLine((e as Error).message ?? String(e))}`;
    }
  }
}
