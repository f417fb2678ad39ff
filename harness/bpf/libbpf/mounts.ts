// Mounting the kernel file systems eBPF needs where the machine boots without them: tracefs
// (tracepoint and kprobe attach) and bpffs (pins). A fresh machine has neither; a machine where
// someone mounted them by hand hides that, so .ci/run tests in a namespace without them.
import fs from 'node:fs';
import { BPFFS, TRACEFS } from './consts.js';
import { LibbpfError } from './errors.js';
import { L, errno } from './ffi.js';
import { addRunNote } from '../../platform/run-notes.js';

/** the mount points this process mounted (each also said in a run note) */
const mountedHere = new Set<string>();

function mount(source: string, target: string, type: string): void {
  const rc = L().mount(source, target, type, 0, null);
  if (rc !== 0) throw new LibbpfError(`mount -t ${type} ${source} ${target}`, errno());
  mountedHere.add(target);
  addRunNote(`mounted ${type} at ${target} (it was not mounted; it stays mounted: it owns nothing and another tool may use it now)`);
}

/**
 * Makes sure tracefs is mounted at /sys/kernel/tracing. It stays mounted on purpose: a tracefs
 * mount is a view of kernel state, holds nothing alive, and unmounting it could break another tool
 * that started using it meanwhile.
 */
export function ensureTracefs(): { path: string; mountedByUs: boolean; mountedNow: boolean } {
  if (fs.existsSync(`${TRACEFS}/events`)) return { path: TRACEFS, mountedByUs: mountedHere.has(TRACEFS), mountedNow: false };
  mount('nodev', TRACEFS, 'tracefs');
  return { path: TRACEFS, mountedByUs: true, mountedNow: true };
}

/** Makes sure a bpf file system is mounted at /sys/fs/bpf (pins need it); stays mounted, as tracefs. */
export function ensureBpffs(): { path: string; mountedNow: boolean } {
  if (isBpffs(BPFFS)) return { path: BPFFS, mountedNow: false };
  mount('bpf', BPFFS, 'bpf');
  if (!isBpffs(BPFFS)) throw new Error(`mounted bpf at ${BPFFS}, but it is still not a bpf file system`);
  return { path: BPFFS, mountedNow: true };
}

function isBpffs(p: string): boolean {
  // statfs would say it directly; /proc/self/mounts says it too, without another FFI binding
  try {
    const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n');
    return mounts.some((l) => {
      const [, target, type] = l.split(' ');
      return target === p && type === 'bpf';
    });
  } catch {
    return false;
  }
}
