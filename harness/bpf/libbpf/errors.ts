// Errors of libbpf calls, and of the verifier with its log.
import os from 'node:os';
import path from 'node:path';

export function errnoName(n: number): string {
  for (const [k, v] of Object.entries(os.constants.errno)) if (v === n) return k;
  return `errno ${n}`;
}

/** A libbpf/bpf() call failed. `errno` is positive. */
export class LibbpfError extends Error {
  constructor(
    readonly op: string,
    readonly errno: number,
    detail = '',
  ) {
    super(`${op}: ${errnoName(errno)} (${errno})${detail ? `: ${detail}` : ''}`);
    this.name = 'LibbpfError';
  }
}

/** The verifier rejected a program; the message contains libbpf's messages and the verifier log. */
export class VerifierError extends LibbpfError {
  constructor(
    readonly object: string,
    readonly program: string,
    errno: number,
    readonly log: string,
    readonly libbpfMessages: string[],
  ) {
    super(
      `load ${path.basename(object)}`,
      errno,
      `the verifier rejected program '${program}'\n` +
        (libbpfMessages.length ? `libbpf:\n${libbpfMessages.map((m) => `  ${m}`).join('\n')}\n` : '') +
        `verifier log:\n${log.trimEnd()}`,
    );
    this.name = 'VerifierError';
  }
}

