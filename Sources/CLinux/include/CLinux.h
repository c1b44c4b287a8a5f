#ifndef BERTH_CLINUX_H
#define BERTH_CLINUX_H
/* Only what Swift cannot import directly: macros, variadic calls, struct layouts. Prefixed berth_. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>

/* accept4 with flags (glibc declares it only under _GNU_SOURCE). */
int berth_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/* fcntl with an int argument (variadic in C). */
int berth_fcntl_int(int fd, int cmd, int arg);
/* The EPOLLEXCLUSIVE flag value (1u << 28). */
unsigned int berth_epollexclusive(void);
/* SOCK_NONBLOCK | SOCK_CLOEXEC. */
int berth_sock_nonblock_cloexec(void);
/* sendfile(2) wrapper with 64-bit offset. */
ssize_t berth_sendfile(int out_fd, int in_fd, long long *offset, size_t count);
/* pipe2 (GNU). */
int berth_pipe2(int fds[2], int flags);

#endif
