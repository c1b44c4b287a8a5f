#ifndef BERTH_CNGTCP2_SHIM_H
#define BERTH_CNGTCP2_SHIM_H
/* ngtcp2 0.12 (Debian 12) and its GnuTLS crypto backend, plus static-inline wrappers for what
   Swift cannot import: the *_versioned wrapper macros, the variadic log callback and the
   token-length macros that use sizeof. Prefixed berth_ngtcp2_. libngtcp2_crypto_gnutls.pc has
   no Requires:, so users also depend on CGnuTLS. */
#include <stdarg.h>
#include <stdio.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

static inline void berth_ngtcp2_settings_default(ngtcp2_settings *s) {
    ngtcp2_settings_default_versioned(NGTCP2_SETTINGS_VERSION, s);
}
static inline void berth_ngtcp2_transport_params_default(ngtcp2_transport_params *p) {
    ngtcp2_transport_params_default_versioned(NGTCP2_TRANSPORT_PARAMS_VERSION, p);
}
static inline int berth_ngtcp2_conn_server_new(ngtcp2_conn **pconn, const ngtcp2_cid *dcid, const ngtcp2_cid *scid,
                                               const ngtcp2_path *path, uint32_t version,
                                               const ngtcp2_callbacks *callbacks, const ngtcp2_settings *settings,
                                               const ngtcp2_transport_params *params, const ngtcp2_mem *mem,
                                               void *user_data) {
    return ngtcp2_conn_server_new_versioned(pconn, dcid, scid, path, version, NGTCP2_CALLBACKS_VERSION, callbacks,
                                            NGTCP2_SETTINGS_VERSION, settings, NGTCP2_TRANSPORT_PARAMS_VERSION,
                                            params, mem, user_data);
}
static inline int berth_ngtcp2_conn_read_pkt(ngtcp2_conn *conn, const ngtcp2_path *path, const ngtcp2_pkt_info *pi,
                                             const uint8_t *pkt, size_t pktlen, ngtcp2_tstamp ts) {
    return ngtcp2_conn_read_pkt_versioned(conn, path, NGTCP2_PKT_INFO_VERSION, pi, pkt, pktlen, ts);
}
static inline ngtcp2_ssize berth_ngtcp2_conn_writev_stream(ngtcp2_conn *conn, ngtcp2_path *path, ngtcp2_pkt_info *pi,
                                                           uint8_t *dest, size_t destlen, ngtcp2_ssize *pdatalen,
                                                           uint32_t flags, int64_t stream_id, const ngtcp2_vec *datav,
                                                           size_t datavcnt, ngtcp2_tstamp ts) {
    return ngtcp2_conn_writev_stream_versioned(conn, path, NGTCP2_PKT_INFO_VERSION, pi, dest, destlen, pdatalen, flags,
                                               stream_id, datav, datavcnt, ts);
}
static inline ngtcp2_ssize berth_ngtcp2_conn_write_connection_close(ngtcp2_conn *conn, ngtcp2_path *path,
                                                                    ngtcp2_pkt_info *pi, uint8_t *dest, size_t destlen,
                                                                    const ngtcp2_connection_close_error *ccerr,
                                                                    ngtcp2_tstamp ts) {
    return ngtcp2_conn_write_connection_close_versioned(conn, path, NGTCP2_PKT_INFO_VERSION, pi, dest, destlen, ccerr,
                                                        ts);
}

/* ngtcp2_settings.log_printf is variadic (ngtcp2.h:1790), which Swift cannot provide: a
   stderr logger for debugging (BERTH_QUIC_DEBUG). */
static inline void berth_ngtcp2_stderr_log(void *user_data, const char *fmt, ...) {
    (void)user_data;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
static inline void berth_ngtcp2_set_stderr_logger(ngtcp2_settings *s) { s->log_printf = berth_ngtcp2_stderr_log; }

/* Token lengths (ngtcp2_crypto.h:623,634 use sizeof). */
static inline size_t berth_ngtcp2_max_retry_tokenlen(void) { return NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN; }
static inline size_t berth_ngtcp2_max_regular_tokenlen(void) { return NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN; }

#endif
