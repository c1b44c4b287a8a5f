#define _GNU_SOURCE
#include "CLinux.h"
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

/* Both through libxcrypt's reentrant calls: crypt_data is ~32 KiB, so it lives on the heap. */

int berth_password_check(const char *password, const char *hash) {
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return -1;
    const char *out = crypt_rn(password, hash, data, sizeof(struct crypt_data));
    int result = 0;
    if (out == NULL || out[0] != '$') {
        result = -1;
    } else {
        size_t n = strlen(hash);
        if (strlen(out) != n) {
            result = 0;
        } else {
            unsigned char diff = 0;
            for (size_t i = 0; i < n; i++) diff |= (unsigned char)(out[i] ^ hash[i]);
            result = diff == 0 ? 1 : 0;
        }
    }
    explicit_bzero(data, sizeof(struct crypt_data));
    free(data);
    return result;
}

int berth_password_hash_bcrypt(const char *password, int cost, char *out, size_t out_len) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2a$", (unsigned long)cost, NULL, 0, setting, sizeof setting) == NULL) return -1;
    struct crypt_data *data = calloc(1, sizeof(struct crypt_data));
    if (data == NULL) return -1;
    const char *h = crypt_rn(password, setting, data, sizeof(struct crypt_data));
    int result = -1;
    if (h != NULL && h[0] == '$' && strlen(h) < out_len) {
        strcpy(out, h);
        result = 0;
    }
    explicit_bzero(data, sizeof(struct crypt_data));
    free(data);
    return result;
}
