// Output verification: a result only counts once sha256(output) equals the oracle's digest.
import { createHash } from 'node:crypto';
import type { FunctionEntry, Workload } from './types.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// memo: workload -> input object -> digest (functions sharing a workload share the oracle)
const memo = new WeakMap<Workload, WeakMap<Uint8Array, string>>();

/** Lowercase hex sha256 of the output `fn` must produce for `input` (memoised per workload + input object). */
export function expectedDigest(fn: FunctionEntry, input: Uint8Array): string {
  const w = fn.workload;
  let perInput = memo.get(w);
  if (!perInput) {
    perInput = new WeakMap();
    memo.set(w, perInput);
  }
  let d = perInput.get(input);
  if (d === undefined) {
    d = w.expectedDigest ? w.expectedDigest(input) : sha256Hex(w.expected(input));
    perInput.set(input, d);
  }
  return d;
}

/** Printable rendering of the first `max` bytes: ASCII as is, \n \r \t \\ \" escaped, other bytes as \xNN. */
export function escapePreview(bytes: Uint8Array, max = 80): string {
  let s = '';
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0x0a) s += '\\n';
    else if (b === 0x0d) s += '\\r';
    else if (b === 0x09) s += '\\t';
    else if (b === 0x5c) s += '\\\\';
    else if (b === 0x22) s += '\\"';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\x' + b.toString(16).padStart(2, '0');
  }
  return bytes.length > max ? s + '...' : s;
}

export class VerificationError extends Error {
  override readonly name = 'VerificationError';
  constructor(
    readonly functionName: string,
    readonly expected: string,
    readonly actual: string,
    readonly outputLength: number,
    readonly preview: string,
  ) {
    super(
      `function "${functionName}": wrong output: sha256 ${actual} (expected ${expected}), ` +
        `${outputLength} bytes, first 80: "${preview}"`,
    );
  }
}

/** Throws VerificationError unless sha256(output) equals the oracle's digest for `input`. */
export function verifyOutput(fn: FunctionEntry, input: Uint8Array, output: Uint8Array): void {
  const expected = expectedDigest(fn, input);
  const actual = sha256Hex(output);
  if (actual !== expected) {
    throw new VerificationError(fn.name, expected, actual, output.length, escapePreview(output, 80));
  }
}
