// The function contract shared by every variant.
// A function reads its whole input from stdin and writes its output to stdout.
// Verification compares sha256(output) with the digest of the oracle's expected output.

export type Scale = 'small' | 'large';

export interface Workload {
  name: string;
  summary: string;
  /** Deterministic input for (seed, scale). */
  input(seed: number, scale: Scale): Uint8Array;
  /** Independent TypeScript oracle: the exact bytes the function must print for `input`. */
  expected(input: Uint8Array): Uint8Array;
  /**
   * Optional: lowercase hex sha256 of the expected output, for workloads that only know
   * the digest (user functions registered with `"expect": {"sha256": ...}`; their
   * `expected()` throws). Verification prefers this over hashing `expected()`.
   */
  expectedDigest?(input: Uint8Array): string;
}

/** How a WASM build is entered. */
export type WasmAbi =
  /** exports memory, optional _initialize, and fx_invoke(): i32 (0 = ok); reusable across calls */
  | 'reactor'
  /** a WASI command: exports _start; one call per instance */
  | 'command';

export interface FunctionEntry {
  name: string;
  summary: string;
  origin: 'c' | 'assemblyscript' | 'user';
  /** true for the misbehaving fixtures (loop, trap, memhog, crash) used by tests; never in a default suite */
  testOnly: boolean;
  wasm?: { path: string; abi: WasmAbi };
  /** static native binary: stdin->stdout once; with `--serve`, framed requests on stdin (see NATIVE_SERVE_PROTOCOL) */
  native?: string;
  workload: Workload;
}

/**
 * `<binary> --serve` protocol, over stdin/stdout:
 *   request:  u32le length, then `length` input bytes
 *   response: u32le length, i32le status (0 = ok), then `length` output bytes
 * EOF on stdin ends the process with status 0.
 */
export const NATIVE_SERVE_PROTOCOL = 'u32le-len,payload -> u32le-len,i32le-status,payload';
