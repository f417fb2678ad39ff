// SPDX-License-Identifier: GPL-2.0
/*
 * bad.bpf.c - a program the verifier MUST reject (used by test/ebpf.test.ts to check that a
 * rejection surfaces as VerifierError with the verifier's log). It reads packet bytes without
 * checking them against data_end: "invalid access to packet".
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int fxh_bad(struct xdp_md *ctx) {
  unsigned char *data = (void *)(long)ctx->data;
  /* no `if (data + 65 > data_end)` check: out of bounds for the verifier */
  return data[64] == 0x2a ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
