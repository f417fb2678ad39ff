// Mounting tracefs where the machine boots without it.
import fs from 'node:fs';
import path from 'node:path';
import { TRACEFS } from './consts.js';
import { LibbpfError } from './errors.js';
import { L, errno } from './ffi.js';

let tracefsMountedByUs = false;

/**
 * Makes sure tracefs is mounted at /sys/kernel/tracing (tracepoint and kprobe attach need it; it is
 * not mounted at boot here). Mounts it when missing and records that. It stays mounted on purpose:
 * a tracefs mount is a view of kernel state, owns nothing and holds nothing alive, so it is not a
 * leak, and unmounting it could break another tool that started using it meanwhile.
 */
export function ensureTracefs(): { path: string; mountedByUs: boolean; mountedNow: boolean } {
  if (fs.existsSync(path.join(TRACEFS, 'events'))) return { path: TRACEFS, mountedByUs: tracefsMountedByUs, mountedNow: false };
  const rc = L().mount('nodev', TRACEFS, 'tracefs', 0, null);
  if (rc !== 0) throw new LibbpfError(`mount -t tracefs nodev ${TRACEFS}`, errno());
  tracefsMountedByUs = true;
  return { path: TRACEFS, mountedByUs: true, mountedNow: true };
}

