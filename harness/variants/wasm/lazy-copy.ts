// Why a remote fork does not copy lazily (pages fetched when the child first touches them, MITOSIS's
// design), with what this machine says about the kernel half of it: whether userfaultfd(2) opens.
import koffi from 'koffi';

const SYS_USERFAULTFD = 323; // x86-64
const O_CLOEXEC = 0o2000000;

let kernel: string | null = null;

/** userfaultfd(2) tried once: "opens here" or why it does not. */
function userfaultfdHere(): string {
  if (kernel) return kernel;
  if (process.arch !== 'x64') return (kernel = `not tried on ${process.arch}`);
  try {
    const libc = koffi.load('libc.so.6');
    const fd = (libc.func('long syscall(long n, long flags)') as (n: number, f: number) => number)(SYS_USERFAULTFD, O_CLOEXEC);
    if (fd < 0) return (kernel = `fails here (errno ${koffi.errno()})`);
    (libc.func('int close(int fd)') as (fd: number) => number)(fd);
    kernel = 'opens here';
  } catch (e) {
    kernel = `could not be tried (${(e as Error).message})`;
  }
  return kernel;
}

/** The reason copy=lazy is refused and recorded as skipped. */
export function lazyUnavailable(): string {
  return (
    `lazy (on-demand) copy is not built. The kernel half: userfaultfd(2) ${userfaultfdHere()}, and the instance memory's address is reachable ` +
    '(cow-image.ts maps over it). The missing half: the thread that faults is the JS thread, which also runs the event loop and the link, so each page ' +
    'would have to be fetched, checked and placed (UFFDIO_COPY) by another thread with a connection of its own to the parent; a fault the parent never ' +
    'answers holds the JS thread in the kernel, out of reach of --timeout-ms and Ctrl-C, unless that other thread gives the range up (UFFDIO_UNREGISTER) ' +
    'and fails the call; and the pages instantiation wrote must be dropped (MADV_DONTNEED) before UFFDIO_REGISTER'
  );
}
