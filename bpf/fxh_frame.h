/*
 * fxh_frame.h - the framing shared by the eBPF serverless functions (functions.bpf.c) and
 * their loader (harness/variants/ebpf.ts).
 *
 * A function runs through BPF_PROG_RUN (BPF_PROG_TEST_RUN) as an XDP program. The packet
 * handed to it is
 *
 *     struct fxh_frame (32 bytes) | payload: the function's input (len bytes)
 *
 * The loader writes `len`; the program writes `status` and its results `r[]` into the same
 * header, and the kernel hands the (modified) packet back as data_out. The loader turns
 * the numbers into exactly the text line the C fixture (wasm-fixtures/src/<name>.c) prints.
 *
 * Why the header: XDP test runs refuse packets shorter than an Ethernet header (14 bytes),
 * and the header gives every function a fixed place for its result.
 */
#ifndef FXH_FRAME_H
#define FXH_FRAME_H

/* Largest payload a function accepts. An XDP test-run packet must fit in one page minus
 * XDP headroom (256) and skb_shared_info tailroom (320): 3520 bytes, minus this header.
 * Kept in sync with EBPF_MAX_INPUT in harness/variants/ebpf.ts. */
#define FXH_MAX_INPUT 3072

#define FXH_FRAME_BYTES 32

struct fxh_frame {
  __u32 len;    /* in: payload length */
  __u32 status; /* out: 0 ok; 1 len larger than the packet; 2 len > FXH_MAX_INPUT; 3 no map */
  __u32 r[6];   /* out: results, meaning per function */
};

#endif
