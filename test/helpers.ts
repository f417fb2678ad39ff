// Assertions and probes shared by the tests.
import assert from 'node:assert/strict';
import path from 'node:path';
import { fxhCgroups } from '../harness/bpf/cgroup.js';
import type { FunctionEntry } from '../harness/functions/types.js';
import { InvokeError } from '../harness/platform/variant.js';

/** `p` must reject with an InvokeError of `kind` (and a message matching `re`). */
export async function rejectsWith(p: Promise<unknown>, kind: string, re?: RegExp): Promise<InvokeError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof InvokeError, `expected InvokeError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected a rejection of kind ${kind}`);
}

/** The output is exactly what the workload's oracle expects. */
export function correct(f: FunctionEntry, input: Uint8Array, output: Uint8Array): void {
  assert.equal(Buffer.from(output).toString('latin1'), Buffer.from(f.workload.expected(input)).toString('latin1'));
}

/** Polls `cond` until it holds or `ms` pass; resolves with its last value. */
export async function waitFor(cond: () => boolean, ms = 3000, everyMs = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return cond();
}

/** The fxh cgroups a process created (named fxh-<pid>-*): what its tests check before and after. */
export function ownCgroups(pid = process.pid): string[] {
  return fxhCgroups().filter((p) => path.basename(p).startsWith(`fxh-${pid}-`));
}
