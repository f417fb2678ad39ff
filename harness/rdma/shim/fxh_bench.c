// The micro-benchmark loops, in C like perftest's, so that no completion pays a JS round trip.
// Both sides run the same function with their role; samples (ns) go into the caller's buffer.
//   write_lat: ping-pong of RDMA WRITEs, each side polling the last byte of its landing area; sample = RTT/2
//   read_lat:  the client READs, waiting for each completion; sample = the whole READ
//   send_lat:  ping-pong of SEND/RECV; sample = RTT/2
//   write_bw:  the client keeps `depth` WRITEs in flight; sample = time between successive completions
// Buffer layout of the registered slot (at least 2*size + 64 bytes): [0,size) source,
// [size,2*size) landing, [2*size, +64) the final "done" message (read_lat, write_bw).
#include "fxh_verbs.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#define ERR(...) (fxh_err(err, errlen, __VA_ARGS__), -1)
enum { B_WRITE_LAT = 0, B_READ_LAT = 1, B_SEND_LAT = 2, B_WRITE_BW = 3 };
static const char *OPN[] = {"SEND", "RDMA_WRITE", "RDMA_READ", "RECV"};

struct wait_ctx {
  struct fxh_conn *c;
  int event;
  uint64_t deadline;
  char *err;
  int errlen;
  const char *waiting; // what is waited for, for the deadline's message
};

static int wc_error(struct wait_ctx *w, struct ibv_wc *wc) {
  char *err = w->err;
  int errlen = w->errlen;
  const char *op = wc->wr_id < 4 ? OPN[wc->wr_id] : "?";
  return ERR("QP 0x%x: work request %s (wr_id %llu) failed: %s (status %d, vendor_err 0x%x)", w->c->qpn, op,
             (unsigned long long)wc->wr_id, ibv_wc_status_str(wc->status), wc->status, wc->vendor_err);
}

// One completion, busy-polled or by the completion channel.
static int next_wc(struct wait_ctx *w, struct ibv_wc *wc) {
  char *err = w->err;
  int errlen = w->errlen;
  for (;;) {
    int n = ibv_poll_cq(w->c->cq, 1, wc);
    if (n < 0) return ERR("ibv_poll_cq failed on QP 0x%x", w->c->qpn);
    if (n == 1) return wc->status == IBV_WC_SUCCESS ? 0 : wc_error(w, wc);
    if (w->event) {
      if (ibv_req_notify_cq(w->c->cq, 0)) return ERR("ibv_req_notify_cq: %s", strerror(errno));
      n = ibv_poll_cq(w->c->cq, 1, wc); // a completion that arrived before the arm
      if (n == 1) return wc->status == IBV_WC_SUCCESS ? 0 : wc_error(w, wc);
      int64_t left = (int64_t)(w->deadline - fxh_now_ns()) / 1000000;
      if (left <= 0) return ERR("QP 0x%x: %s: no completion before the deadline", w->c->qpn, w->waiting ? w->waiting : "waiting");
      struct pollfd p = {.fd = w->c->cc->fd, .events = POLLIN};
      if (poll(&p, 1, (int)left) <= 0) continue;
      struct ibv_cq *cq;
      void *ctx;
      if (ibv_get_cq_event(w->c->cc, &cq, &ctx) == 0) ibv_ack_cq_events(cq, 1);
    } else if (fxh_now_ns() > w->deadline) {
      return ERR("QP 0x%x: %s: no completion before the deadline", w->c->qpn, w->waiting ? w->waiting : "waiting");
    }
  }
}

// Waits for one completion of `want` (an opcode as IBV_WC_*), counting others into *others.
static int wait_for(struct wait_ctx *w, enum ibv_wc_opcode want, int *others) {
  struct ibv_wc wc;
  for (;;) {
    if (next_wc(w, &wc)) return -1;
    if (wc.opcode == want) return 0;
    if (others) (*others)++;
  }
}

// Spins until *b == want; completions seen meanwhile (our WRITEs') are counted into *done.
static int poll_byte(struct wait_ctx *w, volatile uint8_t *b, uint8_t want, int iter, int *done) {
  char *err = w->err;
  int errlen = w->errlen;
  unsigned spins = 0;
  while (*b != want) {
    if ((++spins & 0xffff) == 0) {
      if (fxh_now_ns() > w->deadline) return ERR("QP 0x%x: the peer's RDMA WRITE of iteration %d did not land before the deadline", w->c->qpn, iter);
      struct ibv_wc wc; // a failed WRITE of ours shows here
      int n = ibv_poll_cq(w->c->cq, 1, &wc);
      if (n == 1 && wc.status != IBV_WC_SUCCESS) return wc_error(w, &wc);
      *done += n == 1;
    }
  }
  return 0;
}

// Polls until at least `nr` receives and `ns` sends have completed (counted across calls).
static int count_until(struct wait_ctx *w, int *recvs, int nr, int *sends, int ns) {
  struct ibv_wc wc;
  while (*recvs < nr || *sends < ns) {
    if (next_wc(w, &wc)) return -1;
    if (wc.opcode == IBV_WC_RECV) (*recvs)++;
    else (*sends)++;
  }
  return 0;
}

int fxh_bench(struct fxh_conn *c, int kind, int server, int slot, uint32_t size, uint64_t raddr, uint32_t rkey, int warmup, int iters,
              int depth, int event, uint64_t *samples, int timeout_ms, char *err, int errlen) {
  struct wait_ctx w = {.c = c, .event = event, .deadline = fxh_now_ns() + (uint64_t)timeout_ms * 1000000ull, .err = err, .errlen = errlen};
  struct ibv_mr *mr = c->mrs[slot];
  if (!mr || mr->length < 2ull * size + 64) return ERR("the benchmark buffer must hold 2 x %u + 64 bytes", size);
  if (size == 0 && kind != B_SEND_LAT) return ERR("size must be at least 1 byte");
  uint8_t *buf = mr->addr;
  volatile uint8_t *land = buf + size + (size ? size - 1 : 0);
  uint64_t done_off = 2ull * size;
  int total = warmup + iters;
  if (depth < 1) depth = 1;
  if (depth > c->depth) depth = c->depth;
  int r;
  uint64_t t0;
  // the peer's "done" SEND (read_lat, write_bw) lands here
  if (server && (kind == B_READ_LAT || kind == B_WRITE_BW) && (r = fxh_post_recv(c, 3, slot, done_off, 64)))
    return ERR("QP 0x%x: ibv_post_recv: %s", c->qpn, strerror(r));

  switch (kind) {
  case B_WRITE_LAT: {
    // like perftest, only every 16th WRITE (and the last) asks for a completion: making and polling
    // one per iteration is not part of the latency
    int done = 0, want = 0;
    for (int i = 0; i < total; i++) {
      uint8_t seq = (uint8_t)(i % 255 + 1);
      int sig = i % 16 == 15 || i == total - 1;
      t0 = fxh_now_ns();
      if (server && poll_byte(&w, land, seq, i, &done)) return -1;
      buf[size - 1] = seq;
      if ((r = fxh_post(c, FXH_OP_WRITE, FXH_OP_WRITE, slot, 0, size, raddr + size, rkey, sig))) return ERR("QP 0x%x: posting RDMA_WRITE: %s", c->qpn, strerror(r));
      want += sig;
      if (!server && poll_byte(&w, land, seq, i, &done)) return -1;
      if (!server && i >= warmup) samples[i - warmup] = (fxh_now_ns() - t0) / 2;
      // the signaled WRITE's completion, unless the spin above already took it
      if (sig && done < want) {
        if (wait_for(&w, IBV_WC_RDMA_WRITE, NULL)) return -1;
        done++;
      }
    }
    return 0;
  }
  case B_SEND_LAT: {
    int recvs = 0, sends = 0;
    for (int i = 0; i < depth; i++)
      if ((r = fxh_post_recv(c, 3, slot, size, size))) return ERR("QP 0x%x: ibv_post_recv: %s", c->qpn, strerror(r));
    for (int i = 0; i < total; i++) {
      t0 = fxh_now_ns();
      if (server) {
        if (count_until(&w, &recvs, i + 1, &sends, i)) return -1;
        if ((r = fxh_post_recv(c, 3, slot, size, size))) return ERR("QP 0x%x: ibv_post_recv: %s", c->qpn, strerror(r));
      }
      if ((r = fxh_post(c, FXH_OP_SEND, FXH_OP_SEND, slot, 0, size, 0, 0, 1))) return ERR("QP 0x%x: posting SEND: %s", c->qpn, strerror(r));
      if (!server) {
        if (count_until(&w, &recvs, i + 1, &sends, 0)) return -1;
        if (i >= warmup) samples[i - warmup] = (fxh_now_ns() - t0) / 2;
        if ((r = fxh_post_recv(c, 3, slot, size, size))) return ERR("QP 0x%x: ibv_post_recv: %s", c->qpn, strerror(r));
      }
    }
    return count_until(&w, &recvs, total, &sends, total);
  }
  case B_READ_LAT:
  case B_WRITE_BW:
    break;
  default:
    return ERR("unknown benchmark %d", kind);
  }
  if (server) // wait for the client's "done"
    return wait_for(&w, IBV_WC_RECV, NULL);
  if (kind == B_READ_LAT) {
    for (int i = 0; i < total; i++) {
      t0 = fxh_now_ns();
      if ((r = fxh_post(c, FXH_OP_READ, FXH_OP_READ, slot, size, size, raddr, rkey, 1))) return ERR("QP 0x%x: posting RDMA_READ: %s", c->qpn, strerror(r));
      if (wait_for(&w, IBV_WC_RDMA_READ, NULL)) return -1;
      if (i >= warmup) samples[i - warmup] = fxh_now_ns() - t0;
    }
  } else {
    int posted = 0, completed = 0, inflight = 0;
    uint64_t last = fxh_now_ns();
    while (completed < total) {
      while (posted < total && inflight < depth) {
        if ((r = fxh_post(c, FXH_OP_WRITE, FXH_OP_WRITE, slot, 0, size, raddr + size, rkey, 1))) return ERR("QP 0x%x: posting RDMA_WRITE: %s", c->qpn, strerror(r));
        posted++;
        inflight++;
      }
      if (wait_for(&w, IBV_WC_RDMA_WRITE, NULL)) return -1;
      inflight--;
      completed++;
      uint64_t now = fxh_now_ns();
      if (completed > warmup) samples[completed - warmup - 1] = now - last;
      last = now;
    }
  }
  memcpy(buf + done_off, "done", 4);
  if ((r = fxh_post(c, FXH_OP_SEND, FXH_OP_SEND, slot, done_off, 4, 0, 0, 1))) return ERR("QP 0x%x: posting SEND: %s", c->qpn, strerror(r));
  return wait_for(&w, IBV_WC_SEND, NULL);
}

// One operation, posted and waited for (busy): the tests' and the JS-driven path's building block.
int fxh_op(struct fxh_conn *c, int op, int slot, uint64_t offset, uint32_t len, uint64_t raddr, uint32_t rkey, int timeout_ms, char *err, int errlen) {
  struct wait_ctx w = {.c = c, .event = 0, .deadline = fxh_now_ns() + (uint64_t)timeout_ms * 1000000ull, .err = err, .errlen = errlen};
  char what[64];
  snprintf(what, sizeof what, "work request %s (wr_id %d)", OPN[op], op);
  w.waiting = what;
  int r = fxh_post(c, op, (uint64_t)op, slot, offset, len, raddr, rkey, 1);
  if (r) return ERR("QP 0x%x: posting %s: %s", c->qpn, what, strerror(r));
  struct ibv_wc wc;
  return next_wc(&w, &wc);
}
