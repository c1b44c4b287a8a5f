/*
 * selftest.c - checks malloccount.so counts exactly.
 * Run with LD_PRELOAD=malloccount.so MALLOCCOUNT_SHM=<file> MALLOCCOUNT_OUT=<file>.
 * Built with -O0 -fno-builtin so the compiler cannot elide malloc/free pairs.
 * Between two snapshots it calls nothing but the allocator (no stdio).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MALLOC, CALLOC, REALLOC, POSIX_MEMALIGN, ALIGNED_ALLOC, MEMALIGN, FREE, FREE_NULL, BYTES, ARENA, N };
static const char *names[N] = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
                               "memalign", "free", "free_null", "bytes", "arena"};

struct page { char magic[8]; uint64_t n; uint64_t c[N]; };

static const char *shm_path;
static int failures;

static void snap(uint64_t out[N]) {
    struct page p;
    int fd = open(shm_path, O_RDONLY);
    if (fd < 0 || pread(fd, &p, sizeof p, 0) != (ssize_t)sizeof p || memcmp(p.magic, "MALLOCC1", 8)) {
        static const char msg[] = "selftest: cannot read MALLOCCOUNT_SHM file\n";
        write(2, msg, sizeof msg - 1);
        _exit(2);
    }
    close(fd);
    memcpy(out, p.c, sizeof p.c);
}

static void expect(const char *phase, const uint64_t a[N], const uint64_t b[N], const uint64_t want[N]) {
    int before = failures;
    for (int i = 0; i < N; i++) {
        if (i == BYTES || i == ARENA) continue;
        uint64_t got = b[i] - a[i];
        if (got != want[i]) {
            printf("FAIL %s: %s delta %llu, expected %llu\n", phase, names[i],
                   (unsigned long long)got, (unsigned long long)want[i]);
            failures++;
        }
    }
    printf("%s %s: malloc=%llu calloc=%llu realloc=%llu posix_memalign=%llu aligned_alloc=%llu "
           "memalign=%llu free=%llu free_null=%llu\n", failures > before ? "FAIL" : "ok  ", phase,
           (unsigned long long)(b[MALLOC] - a[MALLOC]), (unsigned long long)(b[CALLOC] - a[CALLOC]),
           (unsigned long long)(b[REALLOC] - a[REALLOC]),
           (unsigned long long)(b[POSIX_MEMALIGN] - a[POSIX_MEMALIGN]),
           (unsigned long long)(b[ALIGNED_ALLOC] - a[ALIGNED_ALLOC]),
           (unsigned long long)(b[MEMALIGN] - a[MEMALIGN]), (unsigned long long)(b[FREE] - a[FREE]),
           (unsigned long long)(b[FREE_NULL] - a[FREE_NULL]));
}

static void *volatile slots[2000];

#define THREADS 4
#define PER_THREAD 100000
static pthread_barrier_t start_bar, end_bar, exit_bar;

static void *worker(void *arg) {
    (void)arg;
    pthread_barrier_wait(&start_bar);
    for (int i = 0; i < PER_THREAD; i++) {
        void *volatile p = malloc(32 + (i & 63));
        free(p);
    }
    pthread_barrier_wait(&end_bar);
    pthread_barrier_wait(&exit_bar); /* thread exit frees TLS: keep it out */
    return NULL;
}

int main(void) {
    shm_path = getenv("MALLOCCOUNT_SHM");
    const char *out = getenv("MALLOCCOUNT_OUT");
    if (!shm_path || !out) {
        fprintf(stderr, "selftest: set MALLOCCOUNT_SHM and MALLOCCOUNT_OUT\n");
        return 2;
    }
    printf("selftest: pid %d\n", getpid());
    fflush(stdout);

    /* Exercise the dlsym/dlerror path (may allocate) before measuring. */
    (void)dlsym(RTLD_NEXT, "malloccount_no_such_symbol");
    (void)dlerror();

    uint64_t a[N], b[N], want[N];

    /* Phase 1: known single-threaded sequence. */
    snap(a);
    for (int i = 0; i < 1000; i++) slots[i] = malloc(24);
    for (int i = 0; i < 500; i++) slots[1000 + i] = calloc(3, 8);
    for (int i = 0; i < 250; i++) slots[i] = realloc(slots[i], 4096);
    for (int i = 0; i < 100; i++) { void *p; posix_memalign(&p, 64, 100); slots[1500 + i] = p; }
    for (int i = 0; i < 50; i++) slots[1600 + i] = aligned_alloc(64, 128);
    for (int i = 0; i < 25; i++) slots[1650 + i] = memalign(256, 10);
    for (int i = 0; i < 1675; i++) free(slots[i]);
    for (int i = 0; i < 10; i++) free(NULL);
    snap(b);
    memset(want, 0, sizeof want);
    want[MALLOC] = 1000; want[CALLOC] = 500; want[REALLOC] = 250; want[POSIX_MEMALIGN] = 100;
    want[ALIGNED_ALLOC] = 50; want[MEMALIGN] = 25; want[FREE] = 1675; want[FREE_NULL] = 10;
    expect("single-thread", a, b, want);

    /* Phase 2: concurrent threads, counted between two barriers. */
    pthread_t t[THREADS];
    pthread_barrier_init(&start_bar, NULL, THREADS + 1);
    pthread_barrier_init(&end_bar, NULL, THREADS + 1);
    pthread_barrier_init(&exit_bar, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, NULL);
    snap(a);  /* threads are parked on start_bar: quiet */
    pthread_barrier_wait(&start_bar);
    pthread_barrier_wait(&end_bar);
    snap(b);
    pthread_barrier_wait(&exit_bar);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    memset(want, 0, sizeof want);
    want[MALLOC] = (uint64_t)THREADS * PER_THREAD;
    want[FREE] = (uint64_t)THREADS * PER_THREAD;
    expect("4 threads", a, b, want);

    /* Phase 3: SIGUSR2 text dump agrees with the shared page. */
    unlink(out);
    snap(a);
    raise(SIGUSR2);
    FILE *f = fopen(out, "r");
    if (!f) {
        printf("FAIL sigusr2: no dump at %s\n", out);
        failures++;
    } else {
        char name[64];
        unsigned long long v;
        int seen = 0;
        while (fscanf(f, "%63s %llu", name, &v) == 2) {
            for (int i = 0; i < N; i++) {
                if (strcmp(name, names[i]) == 0) {
                    seen++;
                    if (v != a[i]) {
                        printf("FAIL sigusr2: %s=%llu, shared page says %llu\n", name, v,
                               (unsigned long long)a[i]);
                        failures++;
                    }
                }
            }
        }
        fclose(f);
        if (seen != N) {
            printf("FAIL sigusr2: dump has %d of %d counters\n", seen, N);
            failures++;
        } else {
            printf("ok   sigusr2: dump matches shared page (arena allocations: %llu)\n",
                   (unsigned long long)a[ARENA]);
        }
    }

    printf(failures ? "selftest: FAILED (%d)\n" : "selftest: all counts exact\n", failures);
    return failures ? 1 : 0;
}
