#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include "CLinuxFiles.h"

int berth_openat2(int dirfd, const char *path, int flags, unsigned long long resolve) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(unsigned int)flags;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
#else
    (void)dirfd; (void)path; (void)flags; (void)resolve;
    errno = ENOSYS;
    return -1;
#endif
}

unsigned long long berth_resolve_beneath(void) { return RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS; }

unsigned long long berth_resolve_beneath_no_symlinks(void) {
    return RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
}

int berth_o_path(void) { return O_PATH; }
