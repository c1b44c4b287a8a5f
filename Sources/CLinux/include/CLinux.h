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
#include "CLinuxFiles.h"

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

/* ---- UDP for QUIC (HTTP/3): what the Glibc module lacks — CMSG_*, in6_pktinfo (needs
   _GNU_SOURCE), UDP_SEGMENT — wrapped as whole operations. ---- */

/* One received datagram: the peer, the local address it arrived on (IP_PKTINFO /
   IPV6_PKTINFO, with the socket's port filled in), and its ECN bits (IP_TOS / IPV6_TCLASS). */
typedef struct berth_udp_msg {
    struct sockaddr_storage remote;
    struct sockaddr_storage local;
    socklen_t remote_len;
    socklen_t local_len;
    unsigned char *buf;
    size_t cap;
    size_t len;
    unsigned int ecn;
} berth_udp_msg;

/* Enables what a QUIC server socket needs: IP_PKTINFO / IPV6_RECVPKTINFO, IP_RECVTOS (also on
   a dual-stack IPv6 socket, where IPv4 packets report ECN only through IP_TOS) and
   IPV6_RECVTCLASS, IP(V6)_MTU_DISCOVER = PMTUDISC_PROBE (DF set, kernel PMTU ignored),
   O_NONBLOCK, FD_CLOEXEC and the buffer sizes. Returns 0, or -errno of the first failure that
   matters (PKTINFO). */
int berth_udp_configure(int fd, int family, int buffer_bytes);
/* The usable size of a socket's receive (receive != 0) or send buffer, in bytes (the kernel
   reports twice this), or -1. */
int berth_udp_buffer_bytes(int fd, int receive);
/* Receives up to n datagrams with recvmmsg (MSG_DONTWAIT). Returns the count, 0 when none
   were waiting, or -errno. */
int berth_udp_recv(int fd, berth_udp_msg *msgs, unsigned int n, unsigned short local_port);
/* Sends len bytes to remote as datagrams of segment bytes each (the last may be shorter) with
   UDP GSO (UDP_SEGMENT) when segment < len, from local (may be NULL) via IP_PKTINFO /
   IPV6_PKTINFO, with ECN bits ecn (IP_TOS for IPv4 and IPv4-mapped peers, else IPV6_TCLASS).
   Returns bytes sent or -errno (-EIO: GSO unsupported, send one datagram at a time). */
ssize_t berth_udp_send(int fd, const void *buf, size_t len, size_t segment, const struct sockaddr *remote,
                       socklen_t remote_len, const struct sockaddr *local, socklen_t local_len, unsigned int ecn);
/* 1 when the kernel accepts UDP_SEGMENT on this socket. */
int berth_udp_gso_supported(int fd);
/* timerfd_settime with an absolute CLOCK_MONOTONIC deadline in nanoseconds (0 disarms). */
int berth_timerfd_set_abs(int fd, unsigned long long deadline_ns);
/* Names the calling thread (at most 15 bytes are kept). */
int berth_set_thread_name(const char *name);
/* 1 when password hashes to hash (a crypt(5) string: bcrypt $2a$/$2b$/$2y$…), compared in
   constant time; 0 when it does not; -1 when hash is not a hash libcrypt knows. Slow by design
   (bcrypt cost 14: about a second): call it off the event loops. */
int berth_password_check(const char *password, const char *hash);
/* Writes a new bcrypt hash ($2a$, as Go's bcrypt) of password at cost into out. 0 or -1. */
int berth_password_hash_bcrypt(const char *password, int cost, char *out, size_t out_len);

#endif
