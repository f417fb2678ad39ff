// A small typed FFI over Debian's libbpf (libbpf.so.1, libbpf 1.1) through koffi. No bpftool, no
// shelling out: objects are opened, verified, loaded, attached and run by libbpf in this process.
//
//   BpfObject.open(path) -> .program(name) / .map(name) -> .load() (VerifierError with the log)
//   progTestRun(fd, {dataIn})                BPF_PROG_RUN (a function invocation, a unit test)
//   prog.attach() / attachCgroup / attachTracepoint / attachKprobe / attachXdp   bpf_link based
//   progAttach(progFd, targetFd, type)       bpf_prog_attach (e.g. BPF_SK_MSG_VERDICT on a sockhash)
//   linkCreate(progFd, targetFd, type)       bpf_link_create (e.g. BPF_CGROUP_SOCK_OPS, fd based)
//   RingBuffer(map, cb).poll(ms)             ring_buffer__new/poll with a koffi callback
//
// Everything this process attaches, pins or creates (links, attachments, pins, cgroups, open
// objects, ring buffers) is in one registry; detachAll() releases it, and exit hooks (exit,
// SIGINT, SIGTERM, uncaught exceptions) call it. Pins live only under /sys/fs/bpf/fxh-<pid>-*,
// cgroups under /sys/fs/cgroup/unified/fxh-<pid>-*; cleanupStale() removes those of dead pids.
//
// libbpf is loaded lazily (importing this module never fails): bpfCapability() reports why eBPF
// cannot run here instead.
//
// The pieces live in harness/bpf/libbpf/, one concept each; this module is their public face.
export { LIBBPF_SONAME, BPFFS, CGROUP2_ROOT, TRACEFS, VMLINUX_BTF, NAME_PREFIX, BPF_ATTACH, BPF_PROG_TYPE, XDP } from './libbpf/consts.js';
export { LibbpfError, VerifierError } from './libbpf/errors.js';
export { libbpfMessages } from './libbpf/ffi.js';
export { type BpfCapability, type CapabilityProbe, bpfCapability } from './libbpf/capability.js';
export { type AttachHandle, attachedResources, detachAll } from './libbpf/registry.js';
export { pinPath, pinFd, type Cgroup, createCgroup, type StaleOptions, cleanupStale } from './libbpf/resources.js';
export { ensureBpffs, ensureTracefs } from './libbpf/mounts.js';
export { type TestRunInput, type TestRunResult, TestRunner, progTestRun } from './libbpf/test-run.js';
export { type LinkHandle, progAttach, linkCreate } from './libbpf/attach.js';
export { BpfProgram, BpfMap } from './libbpf/program-map.js';
export { RingBuffer } from './libbpf/ringbuf.js';
export { type ProgInfo, progInfo, enableRunTimeStats } from './libbpf/prog-info.js';
export { type OpenOptions, BpfObject } from './libbpf/object.js';
