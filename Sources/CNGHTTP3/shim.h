#ifndef BERTH_CNGHTTP3_SHIM_H
#define BERTH_CNGHTTP3_SHIM_H
/* nghttp3 0.8 (Debian 12) plus wrappers for its *_versioned wrapper macros. Prefixed
   berth_nghttp3_. */
#include <nghttp3/nghttp3.h>

static inline void berth_nghttp3_settings_default(nghttp3_settings *s) {
    nghttp3_settings_default_versioned(NGHTTP3_SETTINGS_VERSION, s);
}
static inline int berth_nghttp3_conn_server_new(nghttp3_conn **pconn, const nghttp3_callbacks *callbacks,
                                                const nghttp3_settings *settings, const nghttp3_mem *mem,
                                                void *user_data) {
    return nghttp3_conn_server_new_versioned(pconn, NGHTTP3_CALLBACKS_VERSION, callbacks, NGHTTP3_SETTINGS_VERSION,
                                             settings, mem ? mem : nghttp3_mem_default(), user_data);
}
#endif
