// Minimal WASI preview1 I/O for the AssemblyScript fixtures: no runtime strings,
// no GC objects - raw memory only, so one instance can serve many fx_invoke() calls.

@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: u32, iovs: usize, iovsLen: u32, nread: usize): u16;

@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: u32, nwritten: usize): u16;

// scratch: one iovec (8 bytes) + one result word (4 bytes)
const IOV: usize = memory.data(16);

/** Result of readAll(): length of the buffer returned (which the caller heap.free()s). */
export let readLen: usize = 0;

/** Read fd 0 to EOF into a heap buffer. Returns 0 on a read error. */
export function readAll(): usize {
  let cap: usize = 4096;
  let len: usize = 0;
  let buf = heap.alloc(cap);
  while (true) {
    if (len == cap) {
      cap <<= 1;
      buf = heap.realloc(buf, cap);
    }
    store<u32>(IOV, <u32>(buf + len));
    store<u32>(IOV, <u32>(cap - len), 4);
    const err = fd_read(0, IOV, 1, IOV + 8);
    if (err != 0) {
      heap.free(buf);
      return 0;
    }
    const n = <usize>load<u32>(IOV, 8);
    if (n == 0) break;
    len += n;
  }
  readLen = len;
  return buf;
}

/** Write len bytes at ptr to fd (handles short writes). Returns false on error. */
export function writeAll(fd: u32, ptr: usize, len: usize): bool {
  while (len > 0) {
    store<u32>(IOV, <u32>ptr);
    store<u32>(IOV, <u32>len, 4);
    if (fd_write(fd, IOV, 1, IOV + 8) != 0) return false;
    const n = <usize>load<u32>(IOV, 8);
    ptr += n;
    len -= n;
  }
  return true;
}

/** Append the decimal form of v at ptr; returns the new end pointer. */
export function putU64(ptr: usize, v: u64): usize {
  let digits: usize = 0;
  let x = v;
  do {
    digits++;
    x /= 10;
  } while (x != 0);
  const end = ptr + digits;
  let q = end;
  x = v;
  do {
    q--;
    store<u8>(q, <u8>(48 + <u32>(x % 10)));
    x /= 10;
  } while (x != 0);
  return end;
}

/** Append an ASCII literal at ptr; returns the new end pointer. */
export function putAscii(ptr: usize, s: string): usize {
  for (let i = 0; i < s.length; i++) store<u8>(ptr + <usize>i, <u8>s.charCodeAt(i));
  return ptr + <usize>s.length;
}
