// Running a few synchronous calls inside a named network namespace (`ip netns add NAME`) from this
// process: setns(2) moves only the calling thread, so the main thread enters, runs `fn` (an XDP
// attach, which resolves the ifindex in the caller's namespace) and returns before anything else
// can run on it. Objects made inside (links, sockets) stay bound to that namespace afterwards.
import fs from 'node:fs';
import { C, errno } from '../platform/libc.js';

const CLONE_NEWNET = 0x40000000;
export const NETNS_DIR = '/run/netns';

function setns(fd: number, what: string): void {
  if (C().setns(fd, CLONE_NEWNET) !== 0) throw new Error(`setns(${what}): errno ${errno()}`);
}

/** Runs `fn` with this thread in network namespace `netns` (null or undefined: where it is). */
export function inNetns<T>(netns: string | null | undefined, fn: () => T): T {
  if (!netns) return fn();
  if (!/^[A-Za-z0-9_.-]+$/.test(netns)) throw new Error(`bad network namespace name ${JSON.stringify(netns)}`);
  const target = `${NETNS_DIR}/${netns}`;
  let nsFd: number;
  try {
    nsFd = fs.openSync(target, 'r');
  } catch (e) {
    throw new Error(`network namespace ${netns}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `no ${target} (ip netns list)` : (e as Error).message}`);
  }
  const home = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    setns(nsFd, target);
    try {
      return fn();
    } finally {
      // staying in the wrong namespace would silently misdirect every later socket: fail hard
      try {
        setns(home, 'back home');
      } catch (e) {
        process.stderr.write(`fatal: cannot return to this process's network namespace: ${(e as Error).message}\n`);
        process.abort();
      }
    }
  } finally {
    fs.closeSync(nsFd);
    fs.closeSync(home);
  }
}

/** The ifindex of `netdev` in the namespace this thread is in; a clear error when there is none. */
export function ifindexHere(netdev: string, where = 'this namespace'): number {
  const i = C().if_nametoindex(netdev);
  if (!i) throw new Error(`no network device ${JSON.stringify(netdev)} in ${where}`);
  return i;
}
