// The shim's shared declarations (fxh_verbs.c, fxh_bench.c).
#pragma once
#include <infiniband/verbs.h>
#include <stdint.h>

#define FXH_MAX_MRS 256
enum { FXH_OP_SEND = 0, FXH_OP_WRITE = 1, FXH_OP_READ = 2 };

struct fxh_conn {
  int id;
  int depth;
  struct ibv_context *ctx;
  uint8_t port;
  int gid_index;
  char dev[64];
  struct ibv_qp *qp;
  uint32_t psn;
  struct ibv_pd *pd;
  struct ibv_comp_channel *cc;
  struct ibv_cq *cq;
  uint32_t qpn;
  int inline_max;
  int established;
  int watched;
  unsigned unacked;
  struct ibv_mr *mrs[FXH_MAX_MRS];
};

void fxh_err(char *err, int errlen, const char *fmt, ...);
uint64_t fxh_now_ns(void);
int fxh_post(struct fxh_conn *c, int op, uint64_t wr_id, int slot, uint64_t offset, uint32_t len, uint64_t raddr, uint32_t rkey, int signaled);
int fxh_post_recv(struct fxh_conn *c, uint64_t wr_id, int slot, uint64_t offset, uint32_t len);
void fxh_conn_close(struct fxh_conn *c);
