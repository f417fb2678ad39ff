// A small shim over rdma-core for koffi: ibv_post_send and friends are inline functions, so they
// cannot be called through an FFI directly. Connections are RC queue pairs set up by rdma_cm.
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

// ---- listeners ----

struct fxh_listener {
  int id;
  struct rdma_event_channel *ch;
  struct rdma_cm_id *cm;
};

static int fill_addr(const char *ip, int port, struct sockaddr_in *sa, char *err, int errlen) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) return ERR("bad IPv4 address \"%s\"", ip);
  return 0;
}

static int need_device(char *err, int errlen) {
  char names[256];
  int n = fxh_devices(names, sizeof names);
  if (n < 0) return ERR("no RDMA device on this machine (ibv_get_device_list: %s: the kernel offers no RDMA (uverbs) support)", strerror(-n));
  if (n == 0) return ERR("no RDMA device on this machine (ibv_get_device_list found none: no RDMA NIC and no SoftRoCE/rxe device; see `rdma link`)");
  return 0;
}

struct fxh_listener *fxh_listen(int id, const char *ip, int port, int *bound_port, char *err, int errlen) {
  if (need_device(err, errlen)) return NULL;
  struct sockaddr_in sa;
  if (fill_addr(ip, port, &sa, err, errlen)) return NULL;
  struct fxh_listener *l = calloc(1, sizeof *l);
  l->id = id;
  l->ch = rdma_create_event_channel();
  if (!l->ch) { ERR("rdma_create_event_channel: %s", strerror(errno)); free(l); return NULL; }
  if (rdma_create_id(l->ch, &l->cm, l, RDMA_PS_TCP)) { ERR("rdma_create_id: %s", strerror(errno)); goto fail; }
  if (rdma_bind_addr(l->cm, (struct sockaddr *)&sa)) { ERR("rdma_bind_addr %s:%d: %s (no RDMA device on that address?)", ip, port, strerror(errno)); goto fail; }
  if (rdma_listen(l->cm, 16)) { ERR("rdma_listen %s:%d: %s", ip, port, strerror(errno)); goto fail; }
  *bound_port = ntohs(rdma_get_src_port(l->cm));
  if (watch(l->ch->fd, (uint64_t)id << 1, err, errlen)) goto fail;
  return l;
fail:
  if (l->cm) rdma_destroy_id(l->cm);
  rdma_destroy_event_channel(l->ch);
  free(l);
  return NULL;
}

void fxh_listener_close(struct fxh_listener *l) {
  if (!l) return;
  unwatch(l->ch->fd);
  rdma_destroy_id(l->cm);
  rdma_destroy_event_channel(l->ch);
  free(l);
}

// ---- connections ----

static int setup_qp(struct fxh_conn *c, struct rdma_cm_id *cm, char *err, int errlen) {
  c->cm = cm;
  cm->context = c;
  c->pd = ibv_alloc_pd(cm->verbs);
  if (!c->pd) return ERR("ibv_alloc_pd: %s", strerror(errno));
  c->cc = ibv_create_comp_channel(cm->verbs);
  if (!c->cc) return ERR("ibv_create_comp_channel: %s", strerror(errno));
  c->cq = ibv_create_cq(cm->verbs, c->depth * 2 + 8, c, c->cc, 0);
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
  if (rdma_create_qp(cm, c->pd, &a)) {
    a.cap.max_inline_data = 0;
    if (rdma_create_qp(cm, c->pd, &a)) return ERR("rdma_create_qp: %s", strerror(errno));
  }
  c->inline_max = a.cap.max_inline_data;
  c->qpn = cm->qp->qp_num;
  // ack timeout 14 (~67 ms) x retry 7: a vanished peer fails a work request in about half a second
  uint8_t timeout = 14;
  rdma_set_option(cm, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &timeout, sizeof timeout);
  return 0;
}

static int cm_wait(struct rdma_event_channel *ch, int timeout_ms, struct rdma_cm_event **ev, char *err, int errlen, const char *what) {
  uint64_t end = fxh_now_ns() + (uint64_t)timeout_ms * 1000000ull;
  for (;;) {
    if (rdma_get_cm_event(ch, ev) == 0) return 0;
    if (errno != EAGAIN) return ERR("%s: rdma_get_cm_event: %s", what, strerror(errno));
    int64_t left = (int64_t)(end - fxh_now_ns()) / 1000000;
    if ((int64_t)(end - fxh_now_ns()) <= 0) return ERR("%s: no answer within %d ms", what, timeout_ms);
    struct pollfd p = {.fd = ch->fd, .events = POLLIN};
    poll(&p, 1, (int)(left > 0 ? left : 1));
  }
}

static int expect(struct rdma_event_channel *ch, enum rdma_cm_event_type want, int timeout_ms, char *err, int errlen, const char *what,
                  void *pdata, int *pdata_len) {
  struct rdma_cm_event *ev;
  if (cm_wait(ch, timeout_ms, &ev, err, errlen, what)) return -1;
  enum rdma_cm_event_type got = ev->event;
  int status = ev->status;
  if (got == want && pdata && pdata_len) {
    int n = ev->param.conn.private_data_len;
    if (n > FXH_PDATA) n = FXH_PDATA;
    if (ev->param.conn.private_data) memcpy(pdata, ev->param.conn.private_data, (size_t)n);
    *pdata_len = n;
  }
  rdma_ack_cm_event(ev);
  if (got != want) {
    const char *hint = got == RDMA_CM_EVENT_REJECTED ? " (nothing listens there, or the listener refused)"
                       : got == RDMA_CM_EVENT_ADDR_ERROR ? " (no RDMA device owns a route to that address)"
                       : got == RDMA_CM_EVENT_UNREACHABLE ? " (the peer did not answer)" : "";
    return ERR("%s: got %s (status %d) instead of %s%s", what, rdma_event_str(got), status, rdma_event_str(want), hint);
  }
  return 0;
}

static struct fxh_conn *conn_new(int id, int depth) {
  struct fxh_conn *c = calloc(1, sizeof *c);
  c->id = id;
  c->depth = depth > 0 ? depth : 64;
  return c;
}

static int conn_watch(struct fxh_conn *c, char *err, int errlen) {
  if (watch(c->ch->fd, (uint64_t)c->id << 1, err, errlen)) return -1;
  if (watch(c->cc->fd, ((uint64_t)c->id << 1) | 1, err, errlen)) return -1;
  c->watched = 1;
  return ibv_req_notify_cq(c->cq, 0) ? ERR("ibv_req_notify_cq: %s", strerror(errno)) : 0;
}

struct fxh_conn *fxh_resolve(int id, const char *ip, int port, int depth, int timeout_ms, char *err, int errlen) {
  if (need_device(err, errlen)) return NULL;
  struct sockaddr_in sa;
  if (fill_addr(ip, port, &sa, err, errlen)) return NULL;
  struct fxh_conn *c = conn_new(id, depth);
  c->ch = rdma_create_event_channel();
  if (!c->ch) { ERR("rdma_create_event_channel: %s", strerror(errno)); free(c); return NULL; }
  fcntl(c->ch->fd, F_SETFL, fcntl(c->ch->fd, F_GETFL) | O_NONBLOCK);
  struct rdma_cm_id *cm;
  if (rdma_create_id(c->ch, &cm, c, RDMA_PS_TCP)) { ERR("rdma_create_id: %s", strerror(errno)); goto fail; }
  c->cm = cm;
  char what[96];
  snprintf(what, sizeof what, "resolving rdma:%s:%d", ip, port);
  if (rdma_resolve_addr(cm, NULL, (struct sockaddr *)&sa, timeout_ms)) { ERR("%s: rdma_resolve_addr: %s", what, strerror(errno)); goto fail; }
  if (expect(c->ch, RDMA_CM_EVENT_ADDR_RESOLVED, timeout_ms + 100, err, errlen, what, NULL, NULL)) goto fail;
  if (rdma_resolve_route(cm, timeout_ms)) { ERR("%s: rdma_resolve_route: %s", what, strerror(errno)); goto fail; }
  if (expect(c->ch, RDMA_CM_EVENT_ROUTE_RESOLVED, timeout_ms + 100, err, errlen, what, NULL, NULL)) goto fail;
  if (setup_qp(c, cm, err, errlen)) goto fail;
  return c;
fail:
  fxh_conn_close(c);
  return NULL;
}

int fxh_connect(struct fxh_conn *c, const void *pdata, int pdata_len, int timeout_ms, char *err, int errlen) {
  struct rdma_conn_param p = {0};
  p.private_data = pdata;
  p.private_data_len = (uint8_t)pdata_len;
  p.responder_resources = 4;
  p.initiator_depth = 4;
  p.retry_count = 7;
  p.rnr_retry_count = 7; // infinite: a receiver out of posted buffers slows the sender down
  if (rdma_connect(c->cm, &p)) return ERR("rdma_connect: %s", strerror(errno));
  if (expect(c->ch, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, err, errlen, "connecting", c->peer, &c->peer_len)) return -1;
  c->established = 1;
  return conn_watch(c, err, errlen);
}

struct fxh_conn *fxh_get_request(struct fxh_listener *l, int depth, int timeout_ms, char *err, int errlen) {
  struct rdma_cm_event *ev;
  if (timeout_ms == 0) {
    if (rdma_get_cm_event(l->ch, &ev)) {
      if (errno == EAGAIN) { fxh_err(err, errlen, "none"); return NULL; }
      ERR("rdma_get_cm_event: %s", strerror(errno));
      return NULL;
    }
  } else if (cm_wait(l->ch, timeout_ms, &ev, err, errlen, "waiting for a connection")) return NULL;
  if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
    // a late event of an id that moved to its own channel cannot come here; anything else is ignored
    fxh_err(err, errlen, "ignored %s", rdma_event_str(ev->event));
    rdma_ack_cm_event(ev);
    return NULL;
  }
  struct rdma_cm_id *cm = ev->id;
  struct fxh_conn *c = conn_new(-1, depth);
  int n = ev->param.conn.private_data_len;
  if (n > FXH_PDATA) n = FXH_PDATA;
  if (ev->param.conn.private_data) memcpy(c->peer, ev->param.conn.private_data, (size_t)n);
  c->peer_len = n;
  rdma_ack_cm_event(ev);
  c->ch = rdma_create_event_channel();
  if (!c->ch || rdma_migrate_id(cm, c->ch)) {
    ERR("rdma_migrate_id: %s", strerror(errno));
    rdma_reject(cm, NULL, 0);
    rdma_destroy_id(cm);
    if (c->ch) rdma_destroy_event_channel(c->ch);
    free(c);
    return NULL;
  }
  fcntl(c->ch->fd, F_SETFL, fcntl(c->ch->fd, F_GETFL) | O_NONBLOCK);
  if (setup_qp(c, cm, err, errlen)) {
    rdma_reject(cm, NULL, 0);
    fxh_conn_close(c);
    return NULL;
  }
  return c;
}

int fxh_accept(struct fxh_conn *c, int id, const void *pdata, int pdata_len, char *err, int errlen) {
  c->id = id;
  struct rdma_conn_param p = {0};
  p.private_data = pdata;
  p.private_data_len = (uint8_t)pdata_len;
  p.responder_resources = 4;
  p.initiator_depth = 4;
  p.retry_count = 7;
  p.rnr_retry_count = 7;
  if (rdma_accept(c->cm, &p)) return ERR("rdma_accept: %s", strerror(errno));
  return 0;
}

int fxh_wait_established(struct fxh_conn *c, int timeout_ms, char *err, int errlen) {
  if (expect(c->ch, RDMA_CM_EVENT_ESTABLISHED, timeout_ms, err, errlen, "accepting", NULL, NULL)) return -1;
  c->established = 1;
  return 0;
}

int fxh_watch(struct fxh_conn *c, char *err, int errlen) {
  return conn_watch(c, err, errlen);
}

int fxh_cm_event(struct fxh_conn *c) {
  struct rdma_cm_event *ev;
  if (rdma_get_cm_event(c->ch, &ev)) return errno == EAGAIN ? -1 : -2;
  int t = ev->event;
  if (t == RDMA_CM_EVENT_ESTABLISHED) c->established = 1;
  rdma_ack_cm_event(ev);
  return t;
}

const char *fxh_cm_event_str(int t) {
  return rdma_event_str((enum rdma_cm_event_type)t);
}

int fxh_conn_info(struct fxh_conn *c, uint32_t *out) {
  out[0] = c->qpn;
  out[1] = (uint32_t)c->peer_len;
  out[2] = (uint32_t)c->inline_max;
  out[3] = (uint32_t)c->established;
  return 0;
}

int fxh_peer_data(struct fxh_conn *c, void *out) {
  memcpy(out, c->peer, (size_t)c->peer_len);
  return c->peer_len;
}

int fxh_conn_fds(struct fxh_conn *c, int *out) {
  out[0] = c->ch ? c->ch->fd : -1;
  out[1] = c->cc ? c->cc->fd : -1;
  return 0;
}

void fxh_disconnect(struct fxh_conn *c) {
  if (c && c->cm && c->established) rdma_disconnect(c->cm);
}

void fxh_conn_close(struct fxh_conn *c) {
  if (!c) return;
  if (c->watched) {
    unwatch(c->ch->fd);
    unwatch(c->cc->fd);
  }
  if (c->cm && c->established) rdma_disconnect(c->cm);
  for (int i = 0; i < FXH_MAX_MRS; i++)
    if (c->mrs[i]) ibv_dereg_mr(c->mrs[i]);
  if (c->cm && c->cm->qp) rdma_destroy_qp(c->cm);
  if (c->cq) {
    if (c->unacked) ibv_ack_cq_events(c->cq, c->unacked);
    ibv_destroy_cq(c->cq);
  }
  if (c->cc) ibv_destroy_comp_channel(c->cc);
  if (c->pd) ibv_dealloc_pd(c->pd);
  if (c->cm) rdma_destroy_id(c->cm);
  if (c->ch) rdma_destroy_event_channel(c->ch);
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
  return ibv_post_recv(c->cm->qp, &wr, &bad);
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
  return ibv_post_send(c->cm->qp, &wr, &bad);
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
  if (ibv_query_qp(c->cm->qp, &a, IBV_QP_STATE, &ia)) return -errno;
  return a.qp_state;
}
