// One measured invocation: time it, then verify the output; only a verified sample counts.
import type { FunctionEntry } from '../functions/types.js';
import { verifyOutput } from '../functions/verify.js';
import type { ProtocolClient } from '../platform/client.js';
import type { Mode } from '../platform/variant.js';
import { InvokeError } from '../platform/variant.js';
import { FatalMeasurementError } from './context.js';

/** An output that differs from the oracle's: the run stops (FatalMeasurementError in the run's thread). */
export class WrongOutput extends Error {
  override name = 'WrongOutput';
}

/** Throws WrongOutput unless `output` is what the oracle expects; never timed. */
export function checkOutput(fn: FunctionEntry, input: Uint8Array, output: Uint8Array, where: string): void {
  try {
    verifyOutput(fn, input, output);
  } catch (e) {
    throw new WrongOutput(`wrong output from ${where}: ${(e as Error).message}`);
  }
}

function verified(fn: FunctionEntry, input: Uint8Array, output: Uint8Array, where: string): void {
  try {
    checkOutput(fn, input, output, where);
  } catch (e) {
    throw new FatalMeasurementError((e as Error).message);
  }
}

/** Calls through the gateway's binary protocol. Returns ns from sending to the complete response. */
export async function gatewayCall(client: ProtocolClient, variant: string, fn: FunctionEntry, mode: Mode, input: Uint8Array, timeoutMs: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await client.invoke({ variant, fn: fn.name, mode, input, timeoutMs });
  const ns = Number(process.hrtime.bigint() - t0);
  if (r.status !== 'ok') throw new InvokeError(r.status === 'executor-lost' ? 'function-error' : r.status, Buffer.from(r.output).toString('utf8'));
  verified(fn, input, r.output, `gateway ${variant}/${mode}`);
  return ns;
}
