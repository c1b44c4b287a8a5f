#define _GNU_SOURCE
#include "CLinux.h"
#include <sys/sendfile.h>
#include <unistd.h>

int berth_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}
int berth_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
unsigned int berth_epollexclusive(void) { return (unsigned int)EPOLLEXCLUSIVE; }
int berth_sock_nonblock_cloexec(void) { return SOCK_NONBLOCK | SOCK_CLOEXEC; }
ssize_t berth_sendfile(int out_fd, int in_fd, long long *offset, size_t count) {
    off_t o = (off_t)*offset;
    ssize_t n = sendfile(out_fd, in_fd, &o, count);
    *offset = (long long)o;
    return n;
}
int berth_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
_Static_assert(sizeof(off_t) == 8, "64-bit off_t expected");
