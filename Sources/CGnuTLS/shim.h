#ifndef BERTH_CGNUTLS_SHIM_H
#define BERTH_CGNUTLS_SHIM_H
/* GnuTLS 3.7 for QUIC handshakes (ngtcp2_crypto_gnutls), plus wrappers for what Swift cannot
   use: gnutls_free is a global function-pointer variable (rejected in Swift 6 mode), and the
   gnutls_init flags are both enum constants and macros (ambiguous). Prefixed berth_gnutls_. */
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

static inline void berth_gnutls_free(void *p) { gnutls_free(p); }
/* GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA (RFC 9001 §8.3). */
static inline unsigned int berth_gnutls_quic_server_flags(void) {
    return GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA;
}
/* The same, accepting 0-RTT early data (QUICEarlyData.swift). */
static inline unsigned int berth_gnutls_quic_server_early_flags(void) {
    return GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET | GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_ENABLE_EARLY_DATA;
}
static inline unsigned int berth_gnutls_alpn_server_flags(void) {
    return GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE;
}
#endif
