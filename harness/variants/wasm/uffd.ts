// userfaultfd(2) through koffi (x86-64): a range of this process's memory whose missing pages are
// reported on a descriptor instead of being zero-filled, and filled by UFFDIO_COPY from another thread.
// The lazy remote fork (lazy-copy.ts) registers a child instance's memory with it.
import { C, address, errno } from '../../platform/libc.js';

const SYS_USERFAULTFD = 323;
const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const UFFD_API = 0xaan;
const UFFDIO_REGISTER_MODE_MISSING = 1n;
const MADV_DONTNEED = 4;
export const UFFD_EVENT_PAGEFAULT = 0x12;
export const EEXIST = 17;

const ioWR = (nr: number, size: number) => 3 * 2 ** 30 + (size << 16) + (0xaa << 8) + nr;
const ioR = (nr: number, size: number) => 2 * 2 ** 30 + (size << 16) + (0xaa << 8) + nr;
const UFFDIO_API = ioWR(0x3f, 24);
const UFFDIO_REGISTER = ioWR(0x00, 32);
const UFFDIO_UNREGISTER = ioR(0x01, 16);
const UFFDIO_WAKE = ioR(0x02, 16);
const UFFDIO_COPY = ioWR(0x03, 40);
const UFFDIO_ZEROPAGE = ioWR(0x04, 32);

const fail = (what: string) => new Error(`${what} failed (errno ${errno()})`);

/** The address of a typed array's first byte (its backing store does not move). */
export const addressOf = (bytes: Uint8Array): bigint => address(C().memmove(bytes, bytes, 0));

/** Drops the pages of [addr, addr + len): the next touch of each is a missing-page fault. */
export function dropPages(addr: bigint, len: number): void {
  if (C().madvise(addr, len, MADV_DONTNEED) !== 0) throw fail('madvise(MADV_DONTNEED)');
}

const range = (addr: bigint, len: number, extra = 0) => {
  const b = Buffer.alloc(16 + extra);
  b.writeBigUInt64LE(addr, 0);
  b.writeBigUInt64LE(BigInt(len), 8);
  return b;
};

/** A userfaultfd, non-blocking, handshaken (UFFDIO_API). */
export function openUffd(): number {
  if (process.arch !== 'x64') throw new Error(`userfaultfd is wired for x86-64 only, not ${process.arch}`);
  const fd = C().syscall(SYS_USERFAULTFD, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw fail('userfaultfd(2)');
  const api = Buffer.alloc(24);
  api.writeBigUInt64LE(UFFD_API, 0);
  if (C().ioctl(fd, UFFDIO_API, api) !== 0) {
    const e = fail('UFFDIO_API');
    C().close(fd);
    throw e;
  }
  return fd;
}

export function registerMissing(fd: number, addr: bigint, len: number): void {
  const b = range(addr, len, 16);
  b.writeBigUInt64LE(UFFDIO_REGISTER_MODE_MISSING, 16);
  if (C().ioctl(fd, UFFDIO_REGISTER, b) !== 0) throw fail('UFFDIO_REGISTER');
}

/** Gives the range up (its waiting faults retry as ordinary ones); errno, or 0. */
export function unregister(fd: number, addr: bigint, len: number): number {
  return C().ioctl(fd, UFFDIO_UNREGISTER, range(addr, len)) === 0 ? 0 : errno();
}

export function wake(fd: number, addr: bigint, len: number): void {
  C().ioctl(fd, UFFDIO_WAKE, range(addr, len));
}

/** Fills missing pages [dst, dst + len) from `src` and wakes their faults; errno, or 0. */
export function copyPages(fd: number, dst: bigint, src: bigint, len: number): number {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(dst, 0);
  b.writeBigUInt64LE(src, 8);
  b.writeBigUInt64LE(BigInt(len), 16);
  return C().ioctl(fd, UFFDIO_COPY, b) === 0 ? 0 : errno();
}

/** Fills missing pages with zeroes; errno, or 0. */
export function zeroPages(fd: number, dst: bigint, len: number): number {
  return C().ioctl(fd, UFFDIO_ZEROPAGE, range(dst, len, 16)) === 0 ? 0 : errno();
}

/** Waits up to `timeoutMs` for a fault; then the faulting addresses read so far (none on timeout). */
export function readFaults(fd: number, timeoutMs: number): bigint[] {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(1, 4); // POLLIN
  if (C().poll(pfd, 1, timeoutMs) <= 0) return [];
  const out: bigint[] = [];
  const msg = Buffer.alloc(32);
  while (C().read(fd, msg, 32) === 32) if (msg[0] === UFFD_EVENT_PAGEFAULT) out.push(msg.readBigUInt64LE(16));
  return out;
}

export function closeFd(fd: number): void {
  C().close(fd);
}
