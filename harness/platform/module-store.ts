// Modules shipped to a node by content (put-module), so the node needs no shared file system: the
// bytes land in the agent's scratch folder named by their sha256, and an invoke names the function
// "sha256:<hex>". A name the node has not received is refused with the way out (put-module).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { FunctionEntry, Workload } from '../functions/types.js';
import type { ModuleKind } from './agent-frames.js';

export const HASH_PREFIX = 'sha256:';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The invoke name of a module: "sha256:<hex>". */
export function moduleName(bytes: Uint8Array): string {
  return HASH_PREFIX + sha256Hex(bytes);
}

/** A module known only by its hash has no oracle on the node: the sender verifies outputs. */
function noWorkload(name: string): Workload {
  const no = (): never => {
    throw new Error(`${name} was shipped by hash: its inputs and oracle live with the sender, not on this node`);
  };
  return { name, summary: name, input: no, expected: no };
}

export class ModuleStore {
  private readonly entries = new Map<string, FunctionEntry>();

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  /** Stores the bytes after checking they hash to `sha256`; storing the same module again is a no-op. */
  put(kind: ModuleKind, sha256: string, bytes: Uint8Array): FunctionEntry {
    const got = sha256Hex(bytes);
    if (got !== sha256) throw new Error(`put-module: the ${bytes.length} bytes hash to sha256 ${got}, not the ${sha256} they were sent as (corrupted or truncated)`);
    const name = HASH_PREFIX + sha256;
    const known = this.entries.get(name);
    if (known) return known;
    const file = path.join(this.dir, kind === 'native' ? sha256 : `${sha256}.wasm`);
    const tmp = `${file}.part`;
    fs.writeFileSync(tmp, bytes, { mode: kind === 'native' ? 0o755 : 0o644 });
    fs.renameSync(tmp, file); // a process exec'ing the binary never sees it half written
    const entry: FunctionEntry = { name, summary: `${kind} module ${name}`, origin: 'user', testOnly: false, workload: noWorkload(name) };
    if (kind === 'native') entry.native = file;
    else entry.wasm = { path: file, abi: kind === 'wasm-reactor' ? 'reactor' : 'command' };
    this.entries.set(name, entry);
    return entry;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): FunctionEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`module ${name} is not on this node: send its bytes with put-module first (${this.entries.size} module(s) here)`);
    return e;
  }
}
