#ifndef BERTH_CLINUX_FILES_H
#define BERTH_CLINUX_FILES_H
/* File-system calls Swift cannot make directly (openat2 is reached through the variadic
   syscall(2)). Used by the static file server. */

/* openat2(2) with how.flags = flags, how.mode = 0 and how.resolve = resolve. Returns the fd,
   or -1 with errno set (ENOSYS when the kernel or a seccomp filter lacks openat2). */
int berth_openat2(int dirfd, const char *path, int flags, unsigned long long resolve);

/* RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: every component, symlinks included, must stay
   beneath dirfd; absolute symlinks and ".." escapes fail with EXDEV. */
unsigned long long berth_resolve_beneath(void);

/* RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS. */
unsigned long long berth_resolve_beneath_no_symlinks(void);

/* O_PATH (needs _GNU_SOURCE in C, so Swift's Glibc lacks it). */
int berth_o_path(void);

#endif
