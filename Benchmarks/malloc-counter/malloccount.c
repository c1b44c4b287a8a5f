/*
 * malloccount.c - LD_PRELOAD library that counts heap allocator calls.
 *
 * Build:  cc -O2 -fPIC -shared -o malloccount.so malloccount.c -ldl
 *         (or `make -C Benchmarks/malloc-counter`)
 *
 * Counted entry points (thread-safe, relaxed atomic counters):
 *   malloc, calloc, realloc (+ reallocarray), posix_memalign, aligned_alloc,
 *   memalign (+ valloc, pvalloc), free (non-NULL pointers only; free(NULL)
 *   is counted separately as free_null), and the total bytes requested.
 *
 * Query mechanisms (pick any; all are optional):
 *
 *   MALLOCCOUNT_SHM=/path   Counters live in a MAP_SHARED mapping of this file.
 *                           Any reader can snapshot them at any time, without
 *                           signals, by reading the file (layout below).
 *                           Every process that maps the same file (forked
 *                           children inherit the mapping; exec'd children map
 *                           it again) adds into the same counters, so e.g. an
 *                           nginx master and its workers are summed.  The file
 *                           is created if missing and never zeroed if it
 *                           already holds counters: delete it before a run.
 *
 *   MALLOCCOUNT_OUT=/path   On SIGUSR2 (unless MALLOCCOUNT_NO_SIGNAL is set)
 *                           and at exit, write the counters as text lines
 *                           "name value" to this path ("%p" in the path is
 *                           replaced by the pid).  Written to a temp file and
 *                           renamed, so readers never see a partial dump.
 *                           Note: a program that installs its own SIGUSR2
 *                           handler (nginx does: binary upgrade) replaces
 *                           ours; use MALLOCCOUNT_SHM for such programs.
 *
 * Shared-file layout (little endian, native): 8-byte magic "MALLOCC1",
 * uint64 number of counters, then that many uint64 counters in the order of
 * the enum below.
 *
 * Bootstrap: dlsym() may itself call calloc/malloc (e.g. for dlerror state)
 * before we know where the real allocator is.  Allocations made while this
 * thread is inside dlsym (or before resolution succeeded) are served from a
 * small static bump arena; free/realloc/malloc_usable_size recognise arena
 * pointers and never hand them to the real allocator.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
    MC_MALLOC,
    MC_CALLOC,
    MC_REALLOC,
    MC_POSIX_MEMALIGN,
    MC_ALIGNED_ALLOC,
    MC_MEMALIGN,
    MC_FREE,
    MC_FREE_NULL,
    MC_BYTES,
    MC_ARENA, /* allocations served by the bootstrap arena */
    MC_COUNT
};

static const char *const mc_names[MC_COUNT] = {
    "malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
    "memalign", "free", "free_null", "bytes", "arena",
};

#define MC_MAGIC "MALLOCC1"

struct mc_page {
    char magic[8];
    uint64_t ncounters;
    uint64_t c[MC_COUNT];
};

static struct mc_page mc_local = {MC_MAGIC, MC_COUNT, {0}};
static struct mc_page *mc_cur = &mc_local; /* accessed atomically */

static inline void mc_add(int which, uint64_t n) {
    struct mc_page *p = __atomic_load_n(&mc_cur, __ATOMIC_ACQUIRE);
    __atomic_fetch_add(&p->c[which], n, __ATOMIC_RELAXED);
}

/* ---- real allocator ---------------------------------------------------- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_pvalloc)(size_t);
static void *(*real_reallocarray)(void *, size_t, size_t);
static size_t (*real_malloc_usable_size)(void *);

static int mc_resolved; /* atomic: 1 once every pointer above is set */
/* initial-exec: never goes through __tls_get_addr (which may malloc). */
static __thread int mc_in_dlsym __attribute__((tls_model("initial-exec")));

#define RESOLVE(var, name) \
    __atomic_store_n(&var, (__typeof__(var))dlsym(RTLD_NEXT, name), __ATOMIC_RELEASE)

static void mc_resolve(void) {
    if (__atomic_load_n(&mc_resolved, __ATOMIC_ACQUIRE)) return;
    mc_in_dlsym = 1;
#ifdef MC_SELFTEST_BOOTSTRAP
    /* Test build only: behave like a dlsym that allocates (as older glibc's
     * dlerror bookkeeping does) to exercise the bootstrap arena. */
    {
        void *volatile p = calloc(1, 40);
        p = realloc(p, 80);
        free(p);
        void *q = NULL;
        if (posix_memalign(&q, 64, 32) == 0) free(q);
        p = malloc(10);
        free(p);
    }
#endif
    RESOLVE(real_malloc, "malloc");
    RESOLVE(real_calloc, "calloc");
    RESOLVE(real_realloc, "realloc");
    RESOLVE(real_free, "free");
    RESOLVE(real_posix_memalign, "posix_memalign");
    RESOLVE(real_aligned_alloc, "aligned_alloc");
    RESOLVE(real_memalign, "memalign");
    RESOLVE(real_valloc, "valloc");
    RESOLVE(real_pvalloc, "pvalloc");
    RESOLVE(real_reallocarray, "reallocarray");
    RESOLVE(real_malloc_usable_size, "malloc_usable_size");
    mc_in_dlsym = 0;
    if (real_malloc && real_calloc && real_realloc && real_free)
        __atomic_store_n(&mc_resolved, 1, __ATOMIC_RELEASE);
}

/* ---- bootstrap arena --------------------------------------------------- */

#define ARENA_SIZE (256 * 1024)
static char mc_arena[ARENA_SIZE] __attribute__((aligned(64)));
static size_t mc_arena_used; /* atomic */

struct arena_hdr { size_t size; size_t pad; }; /* 16 bytes, keeps alignment */

static void *arena_alloc(size_t size, size_t align) {
    if (align < 16) align = 16;
    if (align & (align - 1)) return NULL;
    size_t cur = __atomic_load_n(&mc_arena_used, __ATOMIC_RELAXED);
    for (;;) {
        size_t start = (cur + sizeof(struct arena_hdr) + align - 1) & ~(align - 1);
        size_t end = start + ((size + 15) & ~(size_t)15);
        if (end > ARENA_SIZE || end < start) return NULL;
        if (__atomic_compare_exchange_n(&mc_arena_used, &cur, end, 0,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            ((struct arena_hdr *)(mc_arena + start))[-1].size = size;
            mc_add(MC_ARENA, 1);
            return mc_arena + start; /* static storage: already zeroed */
        }
    }
}

static inline int in_arena(const void *p) {
    return (const char *)p >= mc_arena && (const char *)p < mc_arena + ARENA_SIZE;
}

static inline size_t arena_size(const void *p) {
    return ((const struct arena_hdr *)p)[-1].size;
}

/* Returns nonzero when the caller must use the arena instead of libc. */
static inline int need_arena(void) {
    if (__builtin_expect(__atomic_load_n(&mc_resolved, __ATOMIC_ACQUIRE), 1)) return 0;
    if (mc_in_dlsym) return 1;
    mc_resolve();
    return !__atomic_load_n(&mc_resolved, __ATOMIC_ACQUIRE);
}

/* ---- interposed functions ---------------------------------------------- */

void *malloc(size_t size) {
    mc_add(MC_MALLOC, 1);
    mc_add(MC_BYTES, size);
    if (need_arena()) return arena_alloc(size, 16);
    return real_malloc(size);
}

void *calloc(size_t n, size_t size) {
    mc_add(MC_CALLOC, 1);
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    mc_add(MC_BYTES, total);
    if (need_arena()) return arena_alloc(total, 16);
    return real_calloc(n, size);
}

void free(void *p) {
    if (!p) {
        mc_add(MC_FREE_NULL, 1);
        return;
    }
    mc_add(MC_FREE, 1);
    if (in_arena(p)) return; /* bump arena: never reclaimed */
    if (need_arena()) return; /* cannot happen for a libc pointer; be safe */
    real_free(p);
}

void *realloc(void *p, size_t size) {
    mc_add(MC_REALLOC, 1);
    mc_add(MC_BYTES, size);
    if (p && in_arena(p)) {
        size_t old = arena_size(p);
        void *q = need_arena() ? arena_alloc(size, 16) : real_malloc(size);
        if (q) memcpy(q, p, old < size ? old : size);
        return q;
    }
    if (need_arena()) return p ? NULL : arena_alloc(size, 16);
    return real_realloc(p, size);
}

void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        mc_add(MC_REALLOC, 1);
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

int posix_memalign(void **out, size_t align, size_t size) {
    mc_add(MC_POSIX_MEMALIGN, 1);
    mc_add(MC_BYTES, size);
    if (need_arena()) {
        void *q = arena_alloc(size, align);
        if (!q) return ENOMEM;
        *out = q;
        return 0;
    }
    return real_posix_memalign(out, align, size);
}

void *aligned_alloc(size_t align, size_t size) {
    mc_add(MC_ALIGNED_ALLOC, 1);
    mc_add(MC_BYTES, size);
    if (need_arena()) return arena_alloc(size, align);
    return real_aligned_alloc(align, size);
}

void *memalign(size_t align, size_t size) {
    mc_add(MC_MEMALIGN, 1);
    mc_add(MC_BYTES, size);
    if (need_arena()) return arena_alloc(size, align);
    return real_memalign(align, size);
}

void *valloc(size_t size) {
    mc_add(MC_MEMALIGN, 1);
    mc_add(MC_BYTES, size);
    if (need_arena()) return arena_alloc(size, 4096);
    return real_valloc(size);
}

void *pvalloc(size_t size) {
    mc_add(MC_MEMALIGN, 1);
    mc_add(MC_BYTES, size);
    if (need_arena()) return arena_alloc((size + 4095) & ~(size_t)4095, 4096);
    return real_pvalloc(size);
}

size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (in_arena(p)) return arena_size(p);
    if (need_arena() || !real_malloc_usable_size) return 0;
    return real_malloc_usable_size(p);
}

/* ---- reporting --------------------------------------------------------- */

static char mc_out_path[4096];
static int mc_have_out;

static size_t fmt_u64(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

static size_t append(char *buf, size_t at, size_t cap, const char *s, size_t n) {
    if (at + n > cap) n = cap > at ? cap - at : 0;
    memcpy(buf + at, s, n);
    return at + n;
}

/* Async-signal-safe: only open/write/close/rename/getpid and local buffers. */
static void mc_dump(void) {
    if (!mc_have_out) return;
    char path[4200], tmp[4300], text[1024], num[24];
    size_t pl = 0, tl = 0;
    for (const char *s = mc_out_path; *s && pl < sizeof(path) - 24; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            pl += fmt_u64(path + pl, (uint64_t)getpid());
            s++;
        } else {
            path[pl++] = *s;
        }
    }
    path[pl] = 0;
    memcpy(tmp, path, pl);
    tl = pl;
    tl = append(tmp, tl, sizeof(tmp) - 1, ".tmp.", 5);
    tl += fmt_u64(tmp + tl, (uint64_t)getpid());
    tmp[tl] = 0;

    struct mc_page *p = __atomic_load_n(&mc_cur, __ATOMIC_ACQUIRE);
    size_t n = 0;
    for (int i = 0; i < MC_COUNT; i++) {
        n = append(text, n, sizeof(text), mc_names[i], strlen(mc_names[i]));
        n = append(text, n, sizeof(text), " ", 1);
        size_t k = fmt_u64(num, __atomic_load_n(&p->c[i], __ATOMIC_RELAXED));
        n = append(text, n, sizeof(text), num, k);
        n = append(text, n, sizeof(text), "\n", 1);
    }
    int saved = errno;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, text + off, n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        close(fd);
        rename(tmp, path);
    }
    errno = saved;
}

static void mc_on_signal(int sig) {
    (void)sig;
    mc_dump();
}

__attribute__((constructor)) static void mc_init(void) {
    mc_resolve();

    const char *shm = getenv("MALLOCCOUNT_SHM");
    if (shm && *shm) {
        int fd = open(shm, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            struct stat st;
            if (fstat(fd, &st) == 0 && st.st_size < (off_t)sizeof(struct mc_page))
                (void)ftruncate(fd, 4096);
            void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
            if (m != MAP_FAILED) {
                struct mc_page *pg = m;
                /* First process to map the file stamps the header.  Zeroed
                 * counters are valid before the magic appears. */
                if (memcmp(pg->magic, MC_MAGIC, 8) != 0) {
                    pg->ncounters = MC_COUNT;
                    memcpy(pg->magic, MC_MAGIC, 8);
                }
                /* Carry over what this process counted before now. */
                struct mc_page *old = __atomic_exchange_n(&mc_cur, pg, __ATOMIC_ACQ_REL);
                for (int i = 0; i < MC_COUNT; i++) {
                    uint64_t v = __atomic_exchange_n(&old->c[i], 0, __ATOMIC_RELAXED);
                    __atomic_fetch_add(&pg->c[i], v, __ATOMIC_RELAXED);
                }
            }
        }
    }

    const char *out = getenv("MALLOCCOUNT_OUT");
    if (out && *out && strlen(out) < sizeof(mc_out_path)) {
        memcpy(mc_out_path, out, strlen(out) + 1);
        mc_have_out = 1;
        const char *nosig = getenv("MALLOCCOUNT_NO_SIGNAL");
        if (!nosig || !*nosig) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = mc_on_signal;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGUSR2, &sa, NULL);
        }
    }
}

__attribute__((destructor)) static void mc_fini(void) {
    mc_dump();
}
