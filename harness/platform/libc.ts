// The libc calls the harness makes through koffi, bound once, on first use: the WASM engine's (copy-on-write
// fork, userfaultfd), entering network namespaces, cooling pages for DAMON, pinning a thread.
import koffi from 'koffi';

export interface Libc {
  memfd_create(name: string, flags: number): number;
  ftruncate(fd: number, length: number): number;
  pwrite(fd: number, buf: Uint8Array, n: number, offset: number): number;
  /** addr may be a Uint8Array: koffi passes the address of its bytes */
  mmap(addr: Uint8Array, length: number, prot: number, flags: number, fd: number, offset: number): unknown;
  syscall(n: number, a: number): number;
  ioctl(fd: number, req: number, arg: Uint8Array): number;
  memmove(d: Uint8Array, s: Uint8Array, n: number): unknown;
  madvise(addr: bigint, len: number, advice: number): number;
  read(fd: number, buf: Uint8Array, n: number): number;
  poll(fds: Uint8Array, n: number, timeoutMs: number): number;
  close(fd: number): number;
  setns(fd: number, nstype: number): number;
  if_nametoindex(name: string): number;
  sched_setaffinity(pid: number, len: number, mask: Uint8Array): number;
}

let libc: Libc | null = null;

export function C(): Libc {
  if (!libc) {
    const l = koffi.load('libc.so.6');
    libc = {
      memfd_create: l.func('int memfd_create(const char *name, unsigned int flags)'),
      ftruncate: l.func('int ftruncate(int fd, int64_t length)'),
      pwrite: l.func('intptr_t pwrite(int fd, const void *buf, size_t n, int64_t offset)'),
      mmap: l.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
      syscall: l.func('long syscall(long n, long a)'),
      ioctl: l.func('int ioctl(int fd, unsigned long req, void *arg)'),
      memmove: l.func('void *memmove(void *d, const void *s, size_t n)'),
      madvise: l.func('int madvise(uintptr_t addr, size_t len, int advice)'),
      read: l.func('intptr_t read(int fd, void *buf, size_t n)'),
      poll: l.func('int poll(void *fds, unsigned long n, int timeout)'),
      close: l.func('int close(int fd)'),
      setns: l.func('int setns(int fd, int nstype)'),
      if_nametoindex: l.func('unsigned int if_nametoindex(const char *name)'),
      sched_setaffinity: l.func('int sched_setaffinity(int pid, size_t len, uint8_t *mask)'),
    } as unknown as Libc;
  }
  return libc;
}

/** errno of the last call that failed on this thread */
export const errno = (): number => koffi.errno();
/** a pointer koffi returned, as a number */
export const address = (p: unknown): bigint => BigInt(koffi.address(p as never));
