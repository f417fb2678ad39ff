// SPDX-License-Identifier: GPL-2.0
/*
 * coldtrace.bpf.c - what happens in the kernel during one cold start.
 *
 * Scope: only traced thread groups. fxh_ct_traced maps a tgid to (session, scope); user space
 * seeds it (the measuring process itself as scope SELF, explicit roots as scope TREE) and the
 * fork hook extends it: every new process forked by a traced process joins the same session in
 * scope TREE. So the process tree of one invocation (fork/exec of a binary, `runc run` and
 * everything it forks: runc init, its re-execs, the container process) is traced from its first
 * instruction, without knowing any pid in advance.
 *
 * Per (session, scope) the programs count, in fxh_ct_counts: syscalls, user page faults, processes
 * and threads created, execs, mounts (mount + move_mount), bytes returned by read-family syscalls;
 * per (session, scope, syscall nr) in fxh_ct_sys the syscall counts. Timestamps of the milestones
 * (process fork, exec, process exit, mount, pivot_root, unshare) go to user space through the
 * ring buffer fxh_ct_events, stamped with bpf_ktime_get_ns() (CLOCK_MONOTONIC, the clock of
 * Node's process.hrtime.bigint()).
 *
 * Syscall numbers are not compiled in: user space fills fxh_ct_flags (indexed by syscall nr) from
 * the system's unistd_64.h; bit 0 marks the read family whose positive return value is counted
 * as bytes read.
 *
 * Mostly BTF-enabled raw tracepoints (tp_btf: no tracefs, typed arguments, cheaper than classic
 * tracepoints); the mount-family probes are classic syscall tracepoints (they need tracefs).
 * Kernel structures are read with CO-RE through the minimal local definitions below (their
 * ___fxh suffix is ignored by libbpf when it matches them against the kernel's BTF), so no
 * generated vmlinux.h is needed.
 *
 * Program and map names start with fxh_ (the leak checks look for that prefix) and stay within
 * the kernel's 15-character object names.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* ----------------------------------------------------------------------------- CO-RE types */

struct fxh_atomic___fxh {
  int counter;
};

struct signal_struct___fxh {
  struct fxh_atomic___fxh live;
} __attribute__((preserve_access_index));

struct task_struct___fxh {
  int pid;
  int tgid;
  int exit_code;
  char comm[16];
  struct signal_struct___fxh *signal;
} __attribute__((preserve_access_index));

struct linux_binprm___fxh {
  const char *filename;
} __attribute__((preserve_access_index));

/* x86_64: the syscall number survives in orig_ax until the syscall returns */
struct pt_regs___fxh {
  unsigned long orig_ax;
} __attribute__((preserve_access_index));

/* ----------------------------------------------------------------------------- shared layout
 * (mirrored in harness/bpf/coldtrace.ts: keep both in step) */

#define SCOPE_SELF 0 /* the measuring process (in-process variants run here) */
#define SCOPE_TREE 1 /* processes forked during the session, and their descendants */

#define FLAG_READ 1u /* syscall nr whose positive return is bytes read */

enum fxh_event_kind {
  EV_FORK = 1,   /* a traced process forked a new process: pid = child tgid, ppid = parent tgid */
  EV_EXEC = 2,   /* arg = old pid; file = bprm->filename */
  EV_EXIT = 3,   /* the last thread of a traced thread group exited; arg = exit_code */
  EV_MOUNT = 4,  /* arg = 0 mount(2), 1 move_mount(2) */
  EV_PIVOT = 5,  /* pivot_root(2) */
  EV_UNSHARE = 6 /* arg = unshare flags */
};

struct traced_val {
  __u32 session;
  __u32 scope;
};

struct counts_key {
  __u32 session;
  __u32 scope;
};

struct counts {
  __u64 syscalls;
  __u64 page_faults;
  __u64 processes;
  __u64 threads;
  __u64 execs;
  __u64 mounts;
  __u64 bytes_read;
  __u64 exits;
};

struct sys_key {
  __u32 session;
  __u32 scope;
  __u32 nr;
  __u32 pad;
};

struct event {
  __u64 ts;
  __u32 kind;
  __u32 session;
  __u32 scope;
  __u32 pid;
  __u32 ppid;
  __u32 tid;
  __u64 arg;
  char comm[16];
  char file[64];
};

/* ----------------------------------------------------------------------------- maps */

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u32); /* tgid */
  __type(value, struct traced_val);
} fxh_ct_traced SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct counts_key);
  __type(value, struct counts);
} fxh_ct_counts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 32768);
  __type(key, struct sys_key);
  __type(value, __u64);
} fxh_ct_sys SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1024);
  __type(key, __u32); /* syscall nr */
  __type(value, __u32); /* FLAG_* */
} fxh_ct_flags SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} fxh_ct_events SEC(".maps");

/* ----------------------------------------------------------------------------- helpers */

static __always_inline struct traced_val *traced_self(__u32 *tgid_out) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if (tgid_out) *tgid_out = tgid;
  return bpf_map_lookup_elem(&fxh_ct_traced, &tgid);
}

static __always_inline struct counts *counts_of(const struct traced_val *t) {
  struct counts_key k = {.session = t->session, .scope = t->scope};
  struct counts *c = bpf_map_lookup_elem(&fxh_ct_counts, &k);
  if (c) return c;
  struct counts zero = {};
  bpf_map_update_elem(&fxh_ct_counts, &k, &zero, BPF_NOEXIST);
  return bpf_map_lookup_elem(&fxh_ct_counts, &k);
}

static __always_inline struct event *event_new(__u32 kind, const struct traced_val *t, __u32 pid) {
  struct event *e = bpf_ringbuf_reserve(&fxh_ct_events, sizeof(*e), 0);
  if (!e) return 0;
  e->ts = bpf_ktime_get_ns();
  e->kind = kind;
  e->session = t->session;
  e->scope = t->scope;
  e->pid = pid;
  e->ppid = 0;
  e->tid = (__u32)bpf_get_current_pid_tgid();
  e->arg = 0;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  e->file[0] = 0;
  return e;
}

/* ----------------------------------------------------------------------------- syscalls */

SEC("tp_btf/sys_enter")
int fxh_sys_enter(__u64 *ctx) {
  /* args: struct pt_regs *regs, long id */
  struct traced_val *t = traced_self(0);
  if (!t) return 0;
  long nr = (long)ctx[1];
  struct counts *c = counts_of(t);
  if (c) __sync_fetch_and_add(&c->syscalls, 1);
  if (nr < 0) return 0;
  struct sys_key k = {.session = t->session, .scope = t->scope, .nr = (__u32)nr, .pad = 0};
  __u64 *n = bpf_map_lookup_elem(&fxh_ct_sys, &k);
  if (n) {
    __sync_fetch_and_add(n, 1);
  } else {
    __u64 one = 1;
    if (bpf_map_update_elem(&fxh_ct_sys, &k, &one, BPF_NOEXIST) != 0) {
      n = bpf_map_lookup_elem(&fxh_ct_sys, &k); /* another CPU created it meanwhile */
      if (n) __sync_fetch_and_add(n, 1);
    }
  }
  return 0;
}

SEC("tp_btf/sys_exit")
int fxh_sys_exit(__u64 *ctx) {
  /* args: struct pt_regs *regs, long ret */
  long ret = (long)ctx[1];
  if (ret <= 0) return 0;
  struct traced_val *t = traced_self(0);
  if (!t) return 0;
  struct pt_regs___fxh *regs = (void *)ctx[0];
  __u32 nr = (__u32)BPF_CORE_READ(regs, orig_ax);
  __u32 *flags = bpf_map_lookup_elem(&fxh_ct_flags, &nr);
  if (!flags || !(*flags & FLAG_READ)) return 0;
  struct counts *c = counts_of(t);
  if (c) __sync_fetch_and_add(&c->bytes_read, (__u64)ret);
  return 0;
}

/* ----------------------------------------------------------------------------- processes */

SEC("tp_btf/sched_process_fork")
int fxh_fork(__u64 *ctx) {
  /* args: struct task_struct *parent, struct task_struct *child */
  __u32 ptgid;
  struct traced_val *t = traced_self(&ptgid);
  if (!t) return 0;
  struct task_struct___fxh *child = (void *)ctx[1];
  __u32 cpid = BPF_CORE_READ(child, pid);
  __u32 ctgid = BPF_CORE_READ(child, tgid);
  if (cpid != ctgid) {
    /* a new thread of a traced thread group (already covered by its tgid): the parent's scope */
    struct counts *c = counts_of(t);
    if (c) __sync_fetch_and_add(&c->threads, 1);
    return 0;
  }
  /* a new process: it joins the session's tree and is counted there (the root of the tree too) */
  struct traced_val nt = {.session = t->session, .scope = SCOPE_TREE};
  bpf_map_update_elem(&fxh_ct_traced, &ctgid, &nt, BPF_ANY);
  struct counts *cn = counts_of(&nt);
  if (cn) __sync_fetch_and_add(&cn->processes, 1);
  struct event *e = event_new(EV_FORK, &nt, ctgid);
  if (!e) return 0;
  e->ppid = ptgid;
  e->arg = t->scope;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/sched_process_exec")
int fxh_exec(__u64 *ctx) {
  /* args: struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm */
  __u32 tgid;
  struct traced_val *t = traced_self(&tgid);
  if (!t) return 0;
  struct counts *c = counts_of(t);
  if (c) __sync_fetch_and_add(&c->execs, 1);
  struct event *e = event_new(EV_EXEC, t, tgid);
  if (!e) return 0;
  e->arg = (__u64)(int)ctx[1];
  struct linux_binprm___fxh *bprm = (void *)ctx[2];
  const char *fname = BPF_CORE_READ(bprm, filename);
  bpf_probe_read_kernel_str(e->file, sizeof(e->file), fname);
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int fxh_exit(__u64 *ctx) {
  /* args: struct task_struct *p (, bool group_dead on newer kernels: not relied upon) */
  __u32 tgid;
  struct traced_val *t = traced_self(&tgid);
  if (!t) return 0;
  struct task_struct___fxh *p = (void *)ctx[0];
  /* do_exit() decrements signal->live before this tracepoint: 0 means the whole group is gone */
  int live = BPF_CORE_READ(p, signal, live.counter);
  if (live != 0) return 0;
  struct traced_val tv = *t;
  struct counts *c = counts_of(&tv);
  if (c) __sync_fetch_and_add(&c->exits, 1);
  struct event *e = event_new(EV_EXIT, &tv, tgid);
  if (e) {
    e->arg = (__u64)(__u32)BPF_CORE_READ(p, exit_code);
    bpf_ringbuf_submit(e, 0);
  }
  /* a finished process of the tree leaves the map (a recycled pid must not inherit the session) */
  if (tv.scope == SCOPE_TREE) bpf_map_delete_elem(&fxh_ct_traced, &tgid);
  return 0;
}

/* ----------------------------------------------------------------------------- page faults */

SEC("tp_btf/page_fault_user")
int fxh_pgfault(__u64 *ctx) {
  struct traced_val *t = traced_self(0);
  if (!t) return 0;
  struct counts *c = counts_of(t);
  if (c) __sync_fetch_and_add(&c->page_faults, 1);
  return 0;
}

/* ----------------------------------------------------------------------------- mounts, namespaces
 * Classic syscall tracepoints: ctx is the tracefs record (8 bytes of common fields, the syscall
 * nr, then the six arguments as 8-byte slots). */

struct sys_enter_rec {
  __u64 common;
  __s32 nr;
  __u32 pad;
  __u64 args[6];
};

static __always_inline int mount_like(__u32 kind, __u64 arg, int counts_as_mount) {
  __u32 tgid;
  struct traced_val *t = traced_self(&tgid);
  if (!t) return 0;
  if (counts_as_mount) {
    struct counts *c = counts_of(t);
    if (c) __sync_fetch_and_add(&c->mounts, 1);
  }
  struct event *e = event_new(kind, t, tgid);
  if (!e) return 0;
  e->arg = arg;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int fxh_mount(struct sys_enter_rec *ctx) {
  return mount_like(EV_MOUNT, 0, 1);
}

SEC("tracepoint/syscalls/sys_enter_move_mount")
int fxh_move_mount(struct sys_enter_rec *ctx) {
  return mount_like(EV_MOUNT, 1, 1);
}

SEC("tracepoint/syscalls/sys_enter_pivot_root")
int fxh_pivot_root(struct sys_enter_rec *ctx) {
  return mount_like(EV_PIVOT, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_unshare")
int fxh_unshare(struct sys_enter_rec *ctx) {
  return mount_like(EV_UNSHARE, ctx->args[0], 0);
}

char LICENSE[] SEC("license") = "GPL";
