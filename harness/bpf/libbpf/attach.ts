// Attachment handles: bpf_link, bpf_prog_attach, bpf_link_create.
import fs from 'node:fs';
import os from 'node:os';
import { LibbpfError } from './errors.js';
import { L, Ptr, check } from './ffi.js';
import { AttachHandle, Handle } from './registry.js';
import { pinFd } from './resources.js';

export function linkHandle(desc: string, link: Ptr): AttachHandle & { fd: number; pin(suffix: string): AttachHandle & { path: string } } {
  const l = L();
  const h = new Handle(desc, 0, () => void l.bpf_link__destroy(link));
  return Object.assign(h, {
    fd: l.bpf_link__fd(link),
    pin(suffix: string): AttachHandle & { path: string } {
      return pinFd(l.bpf_link__fd(link), suffix);
    },
  });
}

export type LinkHandle = ReturnType<typeof linkHandle>;

/** bpf_prog_attach (the legacy, non-fd-based attachment: it outlives this process unless detached).
 *  Used for BPF_SK_MSG_VERDICT / BPF_SK_SKB_* on a sockmap/sockhash fd, or cgroup types. */
export function progAttach(progFd: number, targetFd: number, attachType: number, flags = 0): AttachHandle {
  const l = L();
  check(`bpf_prog_attach type ${attachType}`, l.bpf_prog_attach(progFd, targetFd, attachType, flags));
  return new Handle(`prog_attach prog fd ${progFd} -> fd ${targetFd} type ${attachType}`, 0, () => {
    const rc = l.bpf_prog_detach2(progFd, targetFd, attachType);
    if (rc < 0 && -rc !== os.constants.errno.ENOENT) throw new LibbpfError('bpf_prog_detach2', -rc);
  });
}

/** bpf_link_create: an fd-based attachment (e.g. BPF_CGROUP_SOCK_OPS on a cgroup fd) that the kernel
 *  releases when the last fd closes, including when this process dies. */
export function linkCreate(progFd: number, targetFd: number, attachType: number): AttachHandle & { fd: number } {
  const fd = check(`bpf_link_create type ${attachType}`, L().bpf_link_create(progFd, targetFd, attachType, null));
  const h = new Handle(`link fd ${fd}: prog fd ${progFd} -> fd ${targetFd} type ${attachType}`, 0, () => fs.closeSync(fd));
  return Object.assign(h, { fd });
}

