/* h3bench: an HTTP/3 load generator that costs little CPU per request.
 *
 * Debian's h2load has no HTTP/3, aioquic is far slower than any native server, and running
 * ngtcp2's `gtlsclient` as the load (one process per connection, one recvmsg per datagram)
 * costs the client about as much CPU as the server it measures: on a shared 2-core machine the
 * comparison then measures the pair. h3bench drives many QUIC connections from one thread on
 * ngtcp2 + nghttp3 + GnuTLS (the same libraries), with UDP GRO on its sockets so one recvmsg
 * returns a whole GSO batch the server sent (segments are split here), and ACKs written once
 * per received batch.
 *
 *   h3bench [-c CONNS] [-n REQUESTS_PER_CONN] [-m STREAMS_IN_FLIGHT] [-d SECONDS] [-s SIZE] [-1]
 *           HOST PORT URL
 *
 * Every connection sends up to -m requests at once, -n in all, then closes and is replaced
 * by a new one (a new handshake) until -d seconds are over; with -1 it is not replaced (exactly
 * -c × -n requests unless -d runs out first). With -s, every response body must
 * be SIZE bytes with status 200 (anything else counts as an error). The server certificate is
 * not verified (a benchmark of servers the caller started). Prints one JSON object: requests,
 * errors, bytes, seconds, req_per_s, mb_per_s, handshakes, cpu_s, cpu_us_per_req.
 *
 * Written for Berth's benchmarks against ngtcp2 0.12 / nghttp3 0.8 (Debian 12).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- options and totals ---- */
static int opt_c = 8, opt_n = 100, opt_m = 16;
static double opt_d = 8;
/* -1: every connection makes its -n requests once and is not replaced (a fixed request count,
 * -c × -n, for instruction counts under callgrind). */
static int opt_once = 0;
static long long opt_size = -1;
static const char *host, *port, *authority, *path;
static struct sockaddr_storage server_addr;
static socklen_t server_addrlen;
static gnutls_certificate_credentials_t cred;
static gnutls_priority_t priority;
static uint64_t deadline;
static long long total_requests, total_errors, total_bytes, total_handshakes;

typedef struct {
  int fd;
  ngtcp2_conn *conn;
  nghttp3_conn *h3;
  gnutls_session_t tls;
  ngtcp2_crypto_conn_ref ref;
  ngtcp2_path_storage ps;
  int submitted, inflight, finished;
  long long *stream_bytes; /* per request (bidi stream id / 4) */
  int *stream_status;
  int dead;
} Conn;

static Conn *conns;

/* ---- ngtcp2 callbacks ---- */
static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  gnutls_rnd(GNUTLS_RND_NONCE, dest, len);
}

static int new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *ud) {
  (void)conn;
  (void)ud;
  gnutls_rnd(GNUTLS_RND_NONCE, cid->data, cidlen);
  cid->datalen = cidlen;
  gnutls_rnd(GNUTLS_RND_NONCE, token, NGTCP2_STATELESS_RESET_TOKENLEN);
  return 0;
}

static void submit_requests(Conn *c);
static int setup_h3(Conn *c);

static int handshake_completed_cb(ngtcp2_conn *conn, void *ud) {
  (void)conn;
  Conn *c = ud;
  total_handshakes++;
  if (setup_h3(c) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  submit_requests(c);
  return 0;
}

static int recv_stream_data_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t off, const uint8_t *data,
                               size_t len, void *ud, void *sud) {
  (void)off;
  (void)sud;
  Conn *c = ud;
  if (!c->h3) return 0;
  nghttp3_ssize n = nghttp3_conn_read_stream(c->h3, sid, data, len, (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
  if (n < 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  ngtcp2_conn_extend_max_stream_offset(conn, sid, (uint64_t)n);
  ngtcp2_conn_extend_max_offset(conn, (uint64_t)n);
  return 0;
}

static int acked_cb(ngtcp2_conn *conn, int64_t sid, uint64_t off, uint64_t len, void *ud, void *sud) {
  (void)conn;
  (void)off;
  (void)sud;
  Conn *c = ud;
  if (c->h3 && nghttp3_conn_add_ack_offset(c->h3, sid, len) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int stream_close_cb(ngtcp2_conn *conn, uint32_t flags, int64_t sid, uint64_t code, void *ud, void *sud) {
  (void)conn;
  (void)sud;
  Conn *c = ud;
  if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET)) code = NGHTTP3_H3_NO_ERROR;
  if (c->h3) {
    int rv = nghttp3_conn_close_stream(c->h3, sid, code);
    if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static int stream_reset_cb(ngtcp2_conn *conn, int64_t sid, uint64_t size, uint64_t code, void *ud, void *sud) {
  (void)conn;
  (void)size;
  (void)code;
  (void)sud;
  Conn *c = ud;
  if (c->h3 && nghttp3_conn_shutdown_stream_read(c->h3, sid) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int stop_sending_cb(ngtcp2_conn *conn, int64_t sid, uint64_t code, void *ud, void *sud) {
  return stream_reset_cb(conn, sid, 0, code, ud, sud);
}

static int extend_stream_data_cb(ngtcp2_conn *conn, int64_t sid, uint64_t max, void *ud, void *sud) {
  (void)conn;
  (void)max;
  (void)sud;
  Conn *c = ud;
  if (c->h3 && nghttp3_conn_unblock_stream(c->h3, sid) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int extend_streams_cb(ngtcp2_conn *conn, uint64_t max, void *ud) {
  (void)conn;
  (void)max;
  Conn *c = ud;
  if (c->h3) submit_requests(c);
  return 0;
}

/* ---- nghttp3 callbacks ---- */
static int h3_recv_data(nghttp3_conn *h3, int64_t sid, const uint8_t *data, size_t len, void *ud, void *sud) {
  (void)h3;
  (void)data;
  (void)sud;
  Conn *c = ud;
  c->stream_bytes[sid / 4] += (long long)len;
  ngtcp2_conn_extend_max_stream_offset(c->conn, sid, len);
  ngtcp2_conn_extend_max_offset(c->conn, len);
  return 0;
}

static int h3_deferred_consume(nghttp3_conn *h3, int64_t sid, size_t n, void *ud, void *sud) {
  (void)h3;
  (void)sud;
  Conn *c = ud;
  ngtcp2_conn_extend_max_stream_offset(c->conn, sid, n);
  ngtcp2_conn_extend_max_offset(c->conn, n);
  return 0;
}

static int h3_recv_header(nghttp3_conn *h3, int64_t sid, int32_t token, nghttp3_rcbuf *name, nghttp3_rcbuf *value,
                          uint8_t flags, void *ud, void *sud) {
  (void)h3;
  (void)name;
  (void)flags;
  (void)sud;
  Conn *c = ud;
  if (token == NGHTTP3_QPACK_TOKEN__STATUS) {
    nghttp3_vec v = nghttp3_rcbuf_get_buf(value);
    int st = 0;
    for (size_t i = 0; i < v.len; i++) st = st * 10 + (v.base[i] - '0');
    c->stream_status[sid / 4] = st;
  }
  return 0;
}

static int h3_end_stream(nghttp3_conn *h3, int64_t sid, void *ud, void *sud) {
  (void)h3;
  (void)sud;
  Conn *c = ud;
  long long got = c->stream_bytes[sid / 4];
  int st = c->stream_status[sid / 4];
  if (opt_size >= 0 && (got != opt_size || st != 200)) {
    if (getenv("H3BENCH_DEBUG")) fprintf(stderr, "stream %lld: status %d, %lld bytes\n", (long long)sid, st, got);
    total_errors++;
  } else {
    total_requests++;
    total_bytes += got;
  }
  c->stream_status[sid / 4] = -1; /* ended */
  return 0;
}

static int h3_stream_close(nghttp3_conn *h3, int64_t sid, uint64_t code, void *ud, void *sud) {
  (void)h3;
  (void)code;
  (void)sud;
  Conn *c = ud;
  if (sid % 4 != 0) return 0;
  if (c->stream_status[sid / 4] != -1) { /* reset before its end */
    total_errors++;
    if (getenv("H3BENCH_DEBUG")) fprintf(stderr, "stream %lld closed (0x%llx) before its end\n", (long long)sid, (unsigned long long)code);
  }
  c->inflight--;
  c->finished++;
  submit_requests(c);
  return 0;
}

static int h3_acked(nghttp3_conn *h3, int64_t sid, uint64_t len, void *ud, void *sud) {
  (void)h3;
  (void)sid;
  (void)len;
  (void)ud;
  (void)sud;
  return 0;
}

static int setup_h3(Conn *c) {
  nghttp3_callbacks cb = {0};
  cb.acked_stream_data = h3_acked;
  cb.stream_close = h3_stream_close;
  cb.recv_data = h3_recv_data;
  cb.deferred_consume = h3_deferred_consume;
  cb.recv_header = h3_recv_header;
  cb.end_stream = h3_end_stream;
  nghttp3_settings s;
  nghttp3_settings_default(&s);
  if (nghttp3_conn_client_new(&c->h3, &cb, &s, NULL, c) != 0) return -1;
  int64_t ctrl, enc, dec;
  if (ngtcp2_conn_open_uni_stream(c->conn, &ctrl, NULL) != 0 || nghttp3_conn_bind_control_stream(c->h3, ctrl) != 0)
    return -1;
  if (ngtcp2_conn_open_uni_stream(c->conn, &enc, NULL) != 0 || ngtcp2_conn_open_uni_stream(c->conn, &dec, NULL) != 0 ||
      nghttp3_conn_bind_qpack_streams(c->h3, enc, dec) != 0)
    return -1;
  return 0;
}

#define NV(N, V) {(uint8_t *)(N), (uint8_t *)(V), sizeof(N) - 1, sizeof(V) - 1, NGHTTP3_NV_FLAG_NONE}

static void submit_requests(Conn *c) {
  while (c->submitted < opt_n && c->inflight < opt_m && now_ns() < deadline) {
    int64_t sid;
    if (ngtcp2_conn_open_bidi_stream(c->conn, &sid, NULL) != 0) return; /* stream limit: wait */
    nghttp3_nv nva[] = {
        NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", ""), NV(":path", ""),
        NV("user-agent", "h3bench"),
    };
    nva[2].value = (uint8_t *)authority;
    nva[2].valuelen = strlen(authority);
    nva[3].value = (uint8_t *)path;
    nva[3].valuelen = strlen(path);
    if (nghttp3_conn_submit_request(c->h3, sid, nva, 5, NULL, NULL) != 0) {
      c->dead = 1;
      return;
    }
    c->stream_bytes[sid / 4] = 0;
    c->stream_status[sid / 4] = 0;
    c->submitted++;
    c->inflight++;
  }
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) { return ((Conn *)ref->user_data)->conn; }

/* ---- connections ---- */
static int conn_open(Conn *c, int epfd, int index) {
  memset(c, 0, sizeof *c - 0);
  c->stream_bytes = calloc((size_t)opt_n + 1, sizeof(long long));
  c->stream_status = calloc((size_t)opt_n + 1, sizeof(int));
  c->fd = socket(server_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  int one = 1;
  setsockopt(c->fd, SOL_UDP, UDP_GRO, &one, sizeof one);
  int rcv = 4 << 20;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (connect(c->fd, (struct sockaddr *)&server_addr, server_addrlen) != 0) return -1;
  ngtcp2_path_storage_zero(&c->ps);
  socklen_t ll = sizeof c->ps.local_addrbuf;
  getsockname(c->fd, (struct sockaddr *)&c->ps.local_addrbuf, &ll);
  c->ps.path.local.addrlen = ll;
  memcpy(&c->ps.remote_addrbuf, &server_addr, server_addrlen);
  c->ps.path.remote.addrlen = server_addrlen;

  ngtcp2_callbacks cb = {0};
  cb.client_initial = ngtcp2_crypto_client_initial_cb;
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = rand_cb;
  cb.get_new_connection_id = new_cid_cb;
  cb.handshake_completed = handshake_completed_cb;
  cb.recv_stream_data = recv_stream_data_cb;
  cb.acked_stream_data_offset = acked_cb;
  cb.stream_close = stream_close_cb;
  cb.stream_reset = stream_reset_cb;
  cb.stream_stop_sending = stop_sending_cb;
  cb.extend_max_stream_data = extend_stream_data_cb;
  cb.extend_max_local_streams_bidi = extend_streams_cb;

  ngtcp2_cid dcid, scid;
  dcid.datalen = 18;
  gnutls_rnd(GNUTLS_RND_NONCE, dcid.data, dcid.datalen);
  scid.datalen = 17;
  gnutls_rnd(GNUTLS_RND_NONCE, scid.data, scid.datalen);
  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = now_ns();
  ngtcp2_transport_params params;
  ngtcp2_transport_params_default(&params);
  params.initial_max_streams_uni = 3;
  params.initial_max_stream_data_bidi_local = 6 << 20;
  params.initial_max_stream_data_uni = 6 << 20;
  params.initial_max_data = 15 << 20;
  params.max_idle_timeout = 30 * NGTCP2_SECONDS;
  if (ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &c->ps.path, NGTCP2_PROTO_VER_V1, &cb, &settings, &params, NULL,
                             c) != 0)
    return -1;

  if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_END_OF_EARLY_DATA) != 0) return -1;
  if (gnutls_priority_set(c->tls, priority) != 0) return -1;
  if (ngtcp2_crypto_gnutls_configure_client_session(c->tls) != 0) return -1;
  c->ref.get_conn = get_conn;
  c->ref.user_data = c;
  gnutls_session_set_ptr(c->tls, &c->ref);
  gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, cred);
  gnutls_datum_t alpn = {(unsigned char *)"h3", 2};
  gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY);
  gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, host, strlen(host));
  ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);

  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
  return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void conn_free(Conn *c) {
  if (c->h3) nghttp3_conn_del(c->h3);
  if (c->conn) ngtcp2_conn_del(c->conn);
  if (c->tls) gnutls_deinit(c->tls);
  if (c->fd >= 0) close(c->fd);
  free(c->stream_bytes);
  free(c->stream_status);
  c->h3 = NULL;
  c->conn = NULL;
  c->tls = NULL;
  c->fd = -1;
}

static uint8_t txbuf[1500];

static int conn_write(Conn *c) {
  uint64_t ts = now_ns();
  ngtcp2_pkt_info pi;
  for (;;) {
    int64_t sid = -1;
    int fin = 0;
    nghttp3_vec vec[16];
    nghttp3_ssize cnt = 0;
    if (c->h3 && ngtcp2_conn_get_max_data_left(c->conn)) {
      cnt = nghttp3_conn_writev_stream(c->h3, &sid, &fin, vec, 16);
      if (cnt < 0) return -1;
    }
    ngtcp2_ssize datalen = -1;
    uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE | (fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
    ngtcp2_ssize nw = ngtcp2_conn_writev_stream(c->conn, &c->ps.path, &pi, txbuf, sizeof txbuf, &datalen, flags, sid,
                                                (const ngtcp2_vec *)vec, (size_t)cnt, ts);
    if (nw < 0) {
      if (nw == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
        nghttp3_conn_block_stream(c->h3, sid);
        continue;
      } else if (nw == NGTCP2_ERR_STREAM_SHUT_WR) {
        nghttp3_conn_shutdown_stream_write(c->h3, sid);
        continue;
      } else if (nw == NGTCP2_ERR_WRITE_MORE) {
        if (nghttp3_conn_add_write_offset(c->h3, sid, (size_t)datalen) != 0) return -1;
        continue;
      }
      return -1;
    }
    if (datalen >= 0 && sid >= 0 && nghttp3_conn_add_write_offset(c->h3, sid, (size_t)datalen) != 0) return -1;
    if (nw == 0) {
      ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
      return 0;
    }
    if (send(c->fd, txbuf, (size_t)nw, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) return -1;
  }
}

static void conn_close(Conn *c) {
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_set_application_error(&ccerr, NGHTTP3_H3_NO_ERROR, NULL, 0);
  ngtcp2_pkt_info pi;
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->conn, &c->ps.path, &pi, txbuf, sizeof txbuf, &ccerr, now_ns());
  if (n > 0) send(c->fd, txbuf, (size_t)n, 0);
}

static uint8_t rxbuf[65536];

/* Reads everything queued on the socket (GRO batches split into their datagrams). */
static int conn_read(Conn *c) {
  for (;;) {
    struct iovec iov = {rxbuf, sizeof rxbuf};
    char ctrl[CMSG_SPACE(sizeof(int))];
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(c->fd, &mh, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      if (errno == ECONNREFUSED) return -1;
      return -1;
    }
    size_t seg = (size_t)n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
      if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
        int g;
        memcpy(&g, CMSG_DATA(cm), sizeof g);
        if (g > 0) seg = (size_t)g;
      }
    }
    uint64_t ts = now_ns();
    for (size_t off = 0; off < (size_t)n; off += seg) {
      size_t len = (size_t)n - off < seg ? (size_t)n - off : seg;
      ngtcp2_pkt_info pi = {0};
      int rv = ngtcp2_conn_read_pkt(c->conn, &c->ps.path, &pi, rxbuf + off, len, ts);
      if (rv != 0) return -1;
    }
  }
}

static void usage(void) {
  fprintf(stderr, "usage: h3bench [-c CONNS] [-n REQS_PER_CONN] [-m STREAMS] [-d SECONDS] [-s SIZE] [-1] HOST PORT URL\n");
  exit(2);
}

int main(int argc, char **argv) {
  int opt;
  while ((opt = getopt(argc, argv, "c:n:m:d:s:1")) != -1) {
    switch (opt) {
    case 'c': opt_c = atoi(optarg); break;
    case 'n': opt_n = atoi(optarg); break;
    case 'm': opt_m = atoi(optarg); break;
    case 'd': opt_d = atof(optarg); break;
    case 's': opt_size = atoll(optarg); break;
    case '1': opt_once = 1; break;
    default: usage();
    }
  }
  if (argc - optind != 3 || opt_c < 1 || opt_n < 1 || opt_m < 1) usage();
  host = argv[optind];
  port = argv[optind + 1];
  const char *url = argv[optind + 2];
  const char *p = strstr(url, "://");
  if (!p) usage();
  p += 3;
  const char *slash = strchr(p, '/');
  authority = slash ? strndup(p, (size_t)(slash - p)) : p;
  path = slash ? slash : "/";
  /* SNI: the URL's host without the port. */
  const char *colon = strrchr(authority, ':');
  const char *sni = colon ? strndup(authority, (size_t)(colon - authority)) : authority;

  struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
  if (getaddrinfo(host, port, &hints, &ai) != 0) {
    fprintf(stderr, "h3bench: cannot resolve %s\n", host);
    return 2;
  }
  memcpy(&server_addr, ai->ai_addr, ai->ai_addrlen);
  server_addrlen = ai->ai_addrlen;
  freeaddrinfo(ai);
  host = sni;

  gnutls_certificate_allocate_credentials(&cred);
  if (gnutls_priority_init(&priority, "NORMAL:-VERS-ALL:+VERS-TLS1.3", NULL) != 0) return 2;

  int epfd = epoll_create1(EPOLL_CLOEXEC);
  conns = calloc((size_t)opt_c, sizeof(Conn));
  uint64_t start = now_ns();
  deadline = start + (uint64_t)(opt_d * 1e9);
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  int open_count = 0;
  for (int i = 0; i < opt_c; i++) {
    if (conn_open(&conns[i], epfd, i) != 0) {
      fprintf(stderr, "h3bench: cannot open a connection\n");
      return 2;
    }
    conn_write(&conns[i]);
    open_count++;
  }
  struct epoll_event evs[64];
  while (open_count > 0) {
    uint64_t now = now_ns(), next = UINT64_MAX;
    for (int i = 0; i < opt_c; i++) {
      if (!conns[i].conn) continue;
      uint64_t e = ngtcp2_conn_get_expiry(conns[i].conn);
      if (e < next) next = e;
    }
    int timeout = next == UINT64_MAX ? 1000 : next <= now ? 0 : (int)((next - now + 999999) / 1000000);
    if (timeout > 1000) timeout = 1000;
    int ne = epoll_wait(epfd, evs, 64, timeout);
    for (int k = 0; k < ne; k++) {
      Conn *c = &conns[evs[k].data.u32];
      if (c->conn && conn_read(c) != 0) c->dead = 1;
    }
    now = now_ns();
    for (int i = 0; i < opt_c; i++) {
      Conn *c = &conns[i];
      if (!c->conn) continue;
      if (!c->dead && ngtcp2_conn_get_expiry(c->conn) <= now) {
        int rv = ngtcp2_conn_handle_expiry(c->conn, now);
        if (rv != 0) c->dead = 1;
      }
      if (!c->dead && conn_write(c) != 0) c->dead = 1;
      int done = c->finished >= c->submitted && (c->submitted >= opt_n || now >= deadline);
      if (c->dead || done) {
        if (c->dead) total_errors += c->inflight > 0 ? c->inflight : 1;
        else conn_close(c);
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        conn_free(c);
        open_count--;
        if (now < deadline && !opt_once) {
          if (conn_open(c, epfd, i) != 0) {
            fprintf(stderr, "h3bench: cannot open a connection\n");
            return 2;
          }
          conn_write(c);
          open_count++;
        }
      }
    }
  }
  double secs = (double)(now_ns() - start) / 1e9;
  getrusage(RUSAGE_SELF, &ru1);
  double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
               (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
  printf("{\"requests\": %lld, \"errors\": %lld, \"bytes\": %lld, \"seconds\": %.3f, \"req_per_s\": %.1f, "
         "\"mb_per_s\": %.1f, \"handshakes\": %lld, \"cpu_s\": %.2f, \"cpu_us_per_req\": %.1f}\n",
         total_requests, total_errors, total_bytes, secs, total_requests / secs, total_bytes / secs / 1e6,
         total_handshakes, cpu, total_requests ? cpu / total_requests * 1e6 : 0.0);
  return total_requests > 0 ? 0 : 1;
}
