// A small shim over rdma-core for koffi: ibv_post_send and friends are inline functions, so they
// cannot be called through an FFI directly. Connections are RC queue pairs whose (qpn, psn, gid) the JS side swaps over TCP.
// Non-hot calls write their error text into a caller's buffer (they may run on a koffi worker
// thread, so no thread-local error state); posts return the errno ibv_post_* gave.
// The latency/bandwidth loops live in fxh_bench.c so that no completion pays a JS round trip.
#include "fxh_verbs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define ERR(...) (fxh_err(err, errlen, __VA_ARGS__), -1)

void fxh_err(char *err, int errlen, const char *fmt, ...) {
  if (!err || errlen <= 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, (size_t)errlen, fmt, ap);
  va_end(ap);
}

uint64_t fxh_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

// ---- devices ----

int fxh_devices(char *names, int cap) {
  int n = 0;
  struct ibv_device **list = ibv_get_device_list(&n);
  if (!list) return -errno;
  int o = 0;
  if (cap > 0) names[0] = 0;
  for (int i = 0; i < n; i++) {
    int w = snprintf(names + o, cap > o ? (size_t)(cap - o) : 0, "%s%s", i ? "," : "", ibv_get_device_name(list[i]));
    if (w > 0 && o + w < cap) o += w;
  }
  ibv_free_device_list(list);
  return n;
}

// ---- the wait set: one epoll over every listener's and connection's fds ----

static int g_epfd = -1, g_wakefd = -1;

static int ensure_epoll(char *err, int errlen) {
  if (g_epfd >= 0) return 0;
  g_epfd = epoll_create1(EPOLL_CLOEXEC);
  if (g_epfd < 0) return ERR("epoll_create1: %s", strerror(errno));
  g_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
  epoll_ctl(g_epfd, EPOLL_CTL_ADD, g_wakefd, &ev);
  return 0;
}

// data = id << 1 | (0 for the cm channel, 1 for the completion channel)
static int watch(int fd, uint64_t data, char *err, int errlen) {
  if (ensure_epoll(err, errlen)) return -1;
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
  if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev)) return ERR("epoll_ctl: %s", strerror(errno));
  return 0;
}

static void unwatch(int fd) {
  if (g_epfd >= 0 && fd >= 0) epoll_ctl(g_epfd, EPOLL_CTL_DEL, fd, NULL);
}

int fxh_wait(uint64_t *ready, int max, int timeout_ms) {
  if (g_epfd < 0) return 0;
  struct epoll_event evs[64];
  if (max > 64) max = 64;
  int n = epoll_wait(g_epfd, evs, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (evs[i].data.u64 == 0) {
      uint64_t v;
      if (read(g_wakefd, &v, sizeof v) < 0) {}
      continue;
    }
    ready[k++] = evs[i].data.u64;
  }
  return k;
}

void fxh_wake(void) {
  uint64_t one = 1;
  if (g_wakefd >= 0 && write(g_wakefd, &one, sizeof one) < 0) {}
}

static int need_device(char *err, int errlen) {
  char names[256];
  int n = fxh_devices(names, sizeof names);
  if (n < 0) return ERR("no RDMA device on this machine (ibv_get_device_list: %s: the kernel offers no RDMA (uverbs) support)", strerror(-n));
  if (n == 0) return ERR("no RDMA device on this machine (ibv_get_device_list found none: no RDMA NIC and no SoftRoCE/rxe device; see `rdma link`)");
  return 0;
}

static struct fxh_conn *conn_new(int id, int depth) {
  struct fxh_conn *c = calloc(1, sizeof *c);
  c->id = id;
  c->depth = depth > 0 ? depth : 64;
  uint32_t r;
  if (getentropy(&r, sizeof r)) r = (uint32_t)fxh_now_ns();
  c->psn = r & 0xffffff;
  return c;
}

static int setup_qp(struct fxh_conn *c, char *err, int errlen) {
  c->pd = ibv_alloc_pd(c->ctx);
  if (!c->pd) return ERR("ibv_alloc_pd: %s", strerror(errno));
  c->cc = ibv_create_comp_channel(c->ctx);
  if (!c->cc) return ERR("ibv_create_comp_channel: %s", strerror(errno));
  c->cq = ibv_create_cq(c->ctx, c->depth * 2 + 8, c, c->cc, 0);
  if (!c->cq) return ERR("ibv_create_cq: %s", strerror(errno));
  struct ibv_qp_init_attr a = {0};
  a.send_cq = c->cq;
  a.recv_cq = c->cq;
  a.qp_type = IBV_QPT_RC;
  a.cap.max_send_wr = (uint32_t)c->depth;
  a.cap.max_recv_wr = (uint32_t)c->depth;
  a.cap.max_send_sge = 1;
  a.cap.max_recv_sge = 1;
  a.cap.max_inline_data = 64;
  c->qp = ibv_create_qp(c->pd, &a);
  if (!c->qp) {
    a.cap.max_inline_data = 0;
    c->qp = ibv_create_qp(c->pd, &a);
  }
  if (!c->qp) return ERR("ibv_create_qp: %s", strerror(errno));
  c->inline_max = (int)a.cap.max_inline_data;
  c->qpn = c->qp->qp_num;
  struct ibv_qp_attr ia = {0};
  ia.qp_state = IBV_QPS_INIT;
  ia.pkey_index = 0;
  ia.port_num = c->port;
  ia.qp_access_flags = IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_LOCAL_WRITE;
  int r = ibv_modify_qp(c->qp, &ia, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
  if (r) return ERR("QP 0x%x: to INIT: %s", c->qpn, strerror(r));
  return 0;
}

// ---- connections: the queue pair is made on the device that owns the local IPv4 address; the two
// sides swap (qpn, psn, gid) over a TCP connection (the JS side) and fxh_ready moves it to RTS.
// rdma_cm is not used: between the guest's two namespaces its REQ is rejected or never answered
// (rping and ib_write_lat -R fail alike), while this exchange (perftest's default) works.

// the GID ::ffff:a.b.c.d of an IPv4 address, RoCE v2 preferred
static int find_gid(struct ibv_context *ctx, uint8_t port, const struct in_addr *ip, int *index) {
  struct ibv_port_attr pa;
  if (ibv_query_port(ctx, port, &pa)) return -1;
  int v1 = -1;
  for (int i = 0; i < pa.gid_tbl_len; i++) {
    union ibv_gid g;
    if (ibv_query_gid(ctx, port, i, &g)) continue;
    static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(g.raw, pre, 12) || memcmp(g.raw + 12, &ip->s_addr, 4)) continue;
    struct ibv_gid_entry e;
    if (ibv_query_gid_ex(ctx, port, (uint32_t)i, &e, 0) == 0 && e.gid_type == IBV_GID_TYPE_ROCE_V2) { *index = i; return 0; }
    if (v1 < 0) v1 = i;
  }
  if (v1 < 0) return -1;
  *index = v1;
  return 0;
}

struct fxh_conn *fxh_open(int id, const char *ip, int depth, char *err, int errlen) {
  if (need_device(err, errlen)) return NULL;
  struct in_addr a;
  if (inet_pton(AF_INET, ip, &a) != 1) { ERR("bad IPv4 address \"%s\"", ip); return NULL; }
  int n = 0;
  struct ibv_device **list = ibv_get_device_list(&n);
  struct fxh_conn *c = conn_new(id, depth);
  char seen[512] = "";
  for (int i = 0; i < n && !c->ctx; i++) {
    struct ibv_context *ctx = ibv_open_device(list[i]);
    if (!ctx) continue;
    int gi;
    if (find_gid(ctx, 1, &a, &gi) == 0) {
      c->ctx = ctx;
      c->port = 1;
      c->gid_index = gi;
      snprintf(c->dev, sizeof c->dev, "%s", ibv_get_device_name(list[i]));
    } else {
      snprintf(seen + strlen(seen), sizeof seen - strlen(seen), "%s%s", seen[0] ? ", " : "", ibv_get_device_name(list[i]));
      ibv_close_device(ctx);
    }
  }
  ibv_free_device_list(list);
  if (!c->ctx) { ERR("no RDMA device has the address %s (devices: %s; a SoftRoCE device needs `rdma link add … type rxe netdev <the interface with that address>`)", ip, seen); free(c); return NULL; }
  if (setup_qp(c, err, errlen)) { fxh_conn_close(c); return NULL; }
  return c;
}

int fxh_local_info(struct fxh_conn *c, uint8_t *out) {
  union ibv_gid g;
  if (ibv_query_gid(c->ctx, c->port, c->gid_index, &g)) return -errno;
  memcpy(out, &c->qpn, 4);
  memcpy(out + 4, &c->psn, 4);
  memcpy(out + 8, g.raw, 16);
  return 24;
}

int fxh_ready(struct fxh_conn *c, const uint8_t *peer, char *err, int errlen) {
  uint32_t dqpn, dpsn;
  memcpy(&dqpn, peer, 4);
  memcpy(&dpsn, peer + 4, 4);
  struct ibv_port_attr pa;
  if (ibv_query_port(c->ctx, c->port, &pa)) return ERR("ibv_query_port: %s", strerror(errno));
  struct ibv_qp_attr a = {0};
  a.qp_state = IBV_QPS_RTR;
  a.path_mtu = pa.active_mtu < IBV_MTU_1024 ? pa.active_mtu : IBV_MTU_1024; // both sides must agree: perftest's RoCE default
  a.dest_qp_num = dqpn;
  a.rq_psn = dpsn;
  a.max_dest_rd_atomic = 4;
  a.min_rnr_timer = 1; // 0.01 ms: a receiver out of buffers is retried soon
  a.ah_attr.is_global = 1;
  memcpy(a.ah_attr.grh.dgid.raw, peer + 8, 16);
  a.ah_attr.grh.sgid_index = (uint8_t)c->gid_index;
  a.ah_attr.grh.hop_limit = 64;
  a.ah_attr.port_num = c->port;
  int r = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
  if (r) return ERR("QP 0x%x: to RTR: %s", c->qpn, strerror(r));
  memset(&a, 0, sizeof a);
  a.qp_state = IBV_QPS_RTS;
  a.timeout = 14; // ~67 ms x retry 7: a vanished peer fails a work request in about half a second
  a.retry_cnt = 7;
  a.rnr_retry = 7; // infinite: a receiver out of posted buffers slows the sender down
  a.sq_psn = c->psn;
  a.max_rd_atomic = 4;
  r = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  if (r) return ERR("QP 0x%x: to RTS: %s", c->qpn, strerror(r));
  c->established = 1;
  return 0;
}

int fxh_watch(struct fxh_conn *c, char *err, int errlen) {
  if (watch(c->cc->fd, ((uint64_t)c->id << 1) | 1, err, errlen)) return -1;
  c->watched = 1;
  return ibv_req_notify_cq(c->cq, 0) ? ERR("ibv_req_notify_cq: %s", strerror(errno)) : 0;
}

// the peer is gone (its lifeline ended): every outstanding and later work request completes with a flush
int fxh_qp_error(struct fxh_conn *c) {
  struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
  return ibv_modify_qp(c->qp, &a, IBV_QP_STATE);
}

const char *fxh_dev_name(struct fxh_conn *c) {
  return c->dev;
}

uint32_t fxh_qpn(struct fxh_conn *c) {
  return c->qpn;
}

void fxh_conn_close(struct fxh_conn *c) {
  if (!c) return;
  if (c->watched) unwatch(c->cc->fd);
  if (c->qp) ibv_destroy_qp(c->qp);
  for (int i = 0; i < FXH_MAX_MRS; i++)
    if (c->mrs[i]) ibv_dereg_mr(c->mrs[i]);
  if (c->cq) {
    if (c->unacked) ibv_ack_cq_events(c->cq, c->unacked);
    ibv_destroy_cq(c->cq);
  }
  if (c->cc) ibv_destroy_comp_channel(c->cc);
  if (c->pd) ibv_dealloc_pd(c->pd);
  if (c->ctx) ibv_close_device(c->ctx);
  free(c);
}

// ---- memory registrations: slots per connection, so that close frees them all ----

int fxh_reg(struct fxh_conn *c, void *addr, size_t len, int remote, uint32_t *keys, char *err, int errlen) {
  int slot = -1;
  for (int i = 0; i < FXH_MAX_MRS; i++)
    if (!c->mrs[i]) { slot = i; break; }
  if (slot < 0) return ERR("more than %d memory registrations on one connection", FXH_MAX_MRS);
  int access = IBV_ACCESS_LOCAL_WRITE;
  if (remote & 1) access |= IBV_ACCESS_REMOTE_READ;
  if (remote & 2) access |= IBV_ACCESS_REMOTE_WRITE;
  struct ibv_mr *mr = ibv_reg_mr(c->pd, addr, len ? len : 1, access);
  if (!mr) return ERR("ibv_reg_mr of %zu bytes: %s", len, strerror(errno));
  c->mrs[slot] = mr;
  keys[0] = mr->lkey;
  keys[1] = mr->rkey;
  return slot;
}

int fxh_dereg(struct fxh_conn *c, int slot) {
  if (slot < 0 || slot >= FXH_MAX_MRS || !c->mrs[slot]) return -EINVAL;
  int r = ibv_dereg_mr(c->mrs[slot]);
  c->mrs[slot] = NULL;
  return -r;
}

uint64_t fxh_mr_addr(struct fxh_conn *c, int slot) {
  return (uint64_t)(uintptr_t)c->mrs[slot]->addr;
}

int fxh_mr_count(struct fxh_conn *c) {
  int n = 0;
  for (int i = 0; i < FXH_MAX_MRS; i++) n += c->mrs[i] != NULL;
  return n;
}

// ---- posts and completions ----

int fxh_post_recv(struct fxh_conn *c, uint64_t wr_id, int slot, uint64_t offset, uint32_t len) {
  struct ibv_mr *mr = c->mrs[slot];
  struct ibv_sge sge = {.addr = (uintptr_t)mr->addr + offset, .length = len, .lkey = mr->lkey};
  struct ibv_recv_wr wr = {.wr_id = wr_id, .sg_list = &sge, .num_sge = 1}, *bad;
  return ibv_post_recv(c->qp, &wr, &bad);
}

// opcode: FXH_OP_SEND, FXH_OP_WRITE, FXH_OP_READ
int fxh_post(struct fxh_conn *c, int op, uint64_t wr_id, int slot, uint64_t offset, uint32_t len, uint64_t raddr, uint32_t rkey, int signaled) {
  struct ibv_mr *mr = c->mrs[slot];
  struct ibv_sge sge = {.addr = (uintptr_t)mr->addr + offset, .length = len, .lkey = mr->lkey};
  struct ibv_send_wr wr = {0}, *bad;
  wr.wr_id = wr_id;
  wr.sg_list = &sge;
  wr.num_sge = len ? 1 : 0;
  wr.opcode = op == FXH_OP_SEND ? IBV_WR_SEND : op == FXH_OP_WRITE ? IBV_WR_RDMA_WRITE : IBV_WR_RDMA_READ;
  wr.send_flags = signaled ? IBV_SEND_SIGNALED : 0;
  if (op != FXH_OP_READ && len <= (uint32_t)c->inline_max && len > 0) wr.send_flags |= IBV_SEND_INLINE;
  wr.wr.rdma.remote_addr = raddr;
  wr.wr.rdma.rkey = rkey;
  return ibv_post_send(c->qp, &wr, &bad);
}

// out: per completion 4 x u64: wr_id, status | opcode << 8 | vendor_err << 32, byte_len, qp_num
int fxh_poll(struct fxh_conn *c, uint64_t *out, int max) {
  struct ibv_wc wc[32];
  if (max > 32) max = 32;
  int n = ibv_poll_cq(c->cq, max, wc);
  for (int i = 0; i < n; i++) {
    out[i * 4] = wc[i].wr_id;
    out[i * 4 + 1] = (uint64_t)wc[i].status | ((uint64_t)wc[i].opcode << 8) | ((uint64_t)wc[i].vendor_err << 32);
    out[i * 4 + 2] = wc[i].byte_len;
    out[i * 4 + 3] = wc[i].qp_num;
  }
  return n;
}

// after the completion channel became readable: take the event, ack it, and re-arm
int fxh_rearm(struct fxh_conn *c) {
  struct ibv_cq *cq;
  void *ctx;
  while (ibv_get_cq_event(c->cc, &cq, &ctx) == 0) c->unacked++;
  if (c->unacked >= 16) {
    ibv_ack_cq_events(c->cq, c->unacked);
    c->unacked = 0;
  }
  return ibv_req_notify_cq(c->cq, 0);
}

const char *fxh_wc_status_str(int s) {
  return ibv_wc_status_str((enum ibv_wc_status)s);
}

int fxh_qp_state(struct fxh_conn *c) {
  struct ibv_qp_attr a;
  struct ibv_qp_init_attr ia;
  if (ibv_query_qp(c->qp, &a, IBV_QP_STATE, &ia)) return -errno;
  return a.qp_state;
}
