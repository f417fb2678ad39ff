// What the kernel counts about a program: its id, run count and run time (with run-time stats on).
import { LibbpfError } from './errors.js';
import { L } from './ffi.js';

// struct bpf_prog_info (linux/bpf.h), offsets checked with offsetof() on this kernel's headers
const PROG_INFO_SIZE = 232;
const OFF_ID = 4;
const OFF_RUN_TIME_NS = 192;
const OFF_RUN_CNT = 200;
const BPF_STATS_RUN_TIME = 0;

export interface ProgInfo {
  id: number;
  runCount: number;
  runTimeNs: number;
}

/** bpf_obj_get_info_by_fd on a program fd: its id, run_cnt and run_time_ns. */
export function progInfo(progFd: number): ProgInfo {
  const info = Buffer.alloc(PROG_INFO_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(PROG_INFO_SIZE);
  const rc = L().bpf_obj_get_info_by_fd(progFd, info, len);
  if (rc < 0) throw new LibbpfError(`bpf_obj_get_info_by_fd ${progFd}`, -rc);
  return { id: info.readUInt32LE(OFF_ID), runCount: Number(info.readBigUInt64LE(OFF_RUN_CNT)), runTimeNs: Number(info.readBigUInt64LE(OFF_RUN_TIME_NS)) };
}

/**
 * BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run counts and times are kept while the returned fd is
 * open — the fd-scoped form of kernel.bpf_stats_enabled, reference-counted, gone with the process.
 */
export function enableRunTimeStats(): number {
  const rc = L().bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (rc < 0) throw new LibbpfError('bpf_enable_stats(BPF_STATS_RUN_TIME)', -rc);
  return rc;
}
