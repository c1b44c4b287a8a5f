#ifndef BERTH_COPENSSL_SHIM_H
#define BERTH_COPENSSL_SHIM_H
/* OpenSSL 3 headers plus static-inline wrappers for the function-like macros Swift cannot
   import. Prefixed berth_ssl_. */
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/rand.h>
#include <openssl/ec.h>

static inline long berth_ssl_ctx_set_options(SSL_CTX *ctx, unsigned long long op) { return (long)SSL_CTX_set_options(ctx, op); }
static inline int berth_ssl_ctx_set_min_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_min_proto_version(ctx, v); }
static inline int berth_ssl_ctx_set_max_proto(SSL_CTX *ctx, int v) { return (int)SSL_CTX_set_max_proto_version(ctx, v); }
static inline long berth_ssl_ctx_set_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_mode(ctx, m); }
static inline int berth_ssl_set_tlsext_host_name(SSL *s, const char *name) { return (int)SSL_set_tlsext_host_name(s, name); }
static inline long berth_bio_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline int berth_ssl_ctx_set1_groups_list(SSL_CTX *ctx, const char *list) { return (int)SSL_CTX_set1_groups_list(ctx, list); }
static inline long berth_ssl_ctx_set_session_cache_mode(SSL_CTX *ctx, long m) { return SSL_CTX_set_session_cache_mode(ctx, m); }
static inline int berth_ssl_ctx_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *)) {
    return (int)SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline int berth_ssl_ctx_set_tlsext_servername_arg(SSL_CTX *ctx, void *arg) { return (int)SSL_CTX_set_tlsext_servername_arg(ctx, arg); }
static inline int berth_ssl_ctx_add_extra_chain_cert(SSL_CTX *ctx, X509 *x) { return (int)SSL_CTX_add_extra_chain_cert(ctx, x); }
/* ---- Added for the TLS module (context, connection, tickets, local CA). ---- */
#include <openssl/core_names.h>
#include <openssl/bn.h>
#include <openssl/asn1.h>

/* SSL_OP_* are built with SSL_OP_BIT(n), which Swift cannot import. */
static inline uint64_t berth_ssl_op_no_compression(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t berth_ssl_op_no_renegotiation(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t berth_ssl_op_cipher_server_preference(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t berth_ssl_op_prioritize_chacha(void) { return SSL_OP_PRIORITIZE_CHACHA; }
static inline uint64_t berth_ssl_op_no_ticket(void) { return SSL_OP_NO_TICKET; }
static inline uint64_t berth_ssl_op_no_tlsv1_3(void) { return SSL_OP_NO_TLSv1_3; }

static inline long berth_ssl_set_mode(SSL *s, long m) { return SSL_set_mode(s, m); }

/* ex_data index allocation (macros over CRYPTO_get_ex_new_index). */
static inline int berth_ssl_get_ex_new_index(void) { return SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL); }
static inline int berth_ssl_ctx_get_ex_new_index(void) { return SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL); }

/* BIO retry-flag macros. */
static inline void berth_bio_set_retry_read(BIO *b) { BIO_set_retry_read(b); }
static inline void berth_bio_clear_retry_flags(BIO *b) { BIO_clear_retry_flags(b); }

/* EVP_EC_gen is a macro over the variadic EVP_PKEY_Q_keygen, which Swift cannot call. */
static inline EVP_PKEY *berth_ec_gen(const char *curve) { return EVP_EC_gen(curve); }
/* EVP_RSA_gen likewise (tests and RSA leaves). */
static inline EVP_PKEY *berth_rsa_gen(unsigned int bits) { return EVP_RSA_gen(bits); }

/* Keys an HMAC-SHA256 EVP_MAC_CTX for the session-ticket callback. The OSSL_PARAM array keeps
   pointers to its arguments, so it has to be built where they stay alive (not from Swift). */
static inline int berth_ticket_hmac_init(EVP_MAC_CTX *hctx, unsigned char *key, size_t keylen) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, keylen);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* Stack macros/inlines for X509 and GENERAL_NAME, typed for Swift. */
static inline STACK_OF(X509) *berth_sk_x509_new_null(void) { return sk_X509_new_null(); }
static inline int berth_sk_x509_push(STACK_OF(X509) *sk, X509 *x) { return sk_X509_push(sk, x); }
static inline int berth_sk_x509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *berth_sk_x509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline void berth_sk_x509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }
static inline GENERAL_NAMES *berth_general_names_new(void) { return sk_GENERAL_NAME_new_null(); }
static inline int berth_general_names_push(GENERAL_NAMES *sk, GENERAL_NAME *n) { return sk_GENERAL_NAME_push(sk, n); }
static inline int berth_general_names_num(const GENERAL_NAMES *sk) { return sk_GENERAL_NAME_num(sk); }
static inline GENERAL_NAME *berth_general_names_value(const GENERAL_NAMES *sk, int i) { return sk_GENERAL_NAME_value(sk, i); }
static inline GENERAL_NAMES *berth_x509_get_san(const X509 *x) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
}

/* TLS client authentication (tls { client_auth }). */
static inline int berth_ssl_set1_verify_cert_store(SSL *s, X509_STORE *st) { return (int)SSL_set1_verify_cert_store(s, st); }
static inline void berth_openssl_free(void *p) { OPENSSL_free(p); }
/* RFC 2253 names with UTF-8 kept (no \\XX escapes for non-ASCII). */
static inline unsigned long berth_xn_flag_rfc2253_utf8(void) { return XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB; }
static inline STACK_OF(X509_NAME) *berth_sk_x509_name_new_null(void) { return sk_X509_NAME_new_null(); }
static inline int berth_sk_x509_name_push(STACK_OF(X509_NAME) *sk, X509_NAME *n) { return sk_X509_NAME_push(sk, n); }
static inline void berth_sk_x509_name_pop_free(STACK_OF(X509_NAME) *sk) { sk_X509_NAME_pop_free(sk, X509_NAME_free); }
#endif
