#define _GNU_SOURCE
#include "CLinux.h"
#include <sys/sendfile.h>
#include <unistd.h>
#include <pthread.h>

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
int berth_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
_Static_assert(sizeof(off_t) == 8, "64-bit off_t expected");

/* ---- UDP for QUIC ---- */
#include <errno.h>
#include <string.h>
#include <netinet/udp.h>
#include <netinet/ip.h>
#include <sys/timerfd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

static int berth_setint(int fd, int level, int name, int v) {
    return setsockopt(fd, level, name, &v, sizeof v) == 0 ? 0 : -errno;
}

/* Raises a socket buffer to `bytes` (never lowers it: an inherited socket may come with a
   larger one, e.g. systemd's ReceiveBuffer=): the FORCE option first (works with
   CAP_NET_ADMIN, beyond net.core.[rw]mem_max), else the capped one. The kernel reports twice
   what was set. */
static void berth_udp_grow_buffer(int fd, int name, int force_name, int bytes) {
    int cur = 0;
    socklen_t len = sizeof(cur);
    if (getsockopt(fd, SOL_SOCKET, name, &cur, &len) == 0 && cur / 2 >= bytes) return;
    if (berth_setint(fd, SOL_SOCKET, force_name, bytes) == 0) return;
    int after = 0;
    len = sizeof(after);
    berth_setint(fd, SOL_SOCKET, name, bytes);
    if (getsockopt(fd, SOL_SOCKET, name, &after, &len) == 0 && after < cur) berth_setint(fd, SOL_SOCKET, name, cur / 2);
}

int berth_udp_buffer_bytes(int fd, int receive) {
    int v = 0;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, &v, &len) != 0) return -1;
    return v / 2;
}

int berth_udp_configure(int fd, int family, int buffer_bytes) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl >= 0 && !(fdfl & FD_CLOEXEC)) fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC);
    if (buffer_bytes > 0) {
        berth_udp_grow_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, buffer_bytes);
        berth_udp_grow_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, buffer_bytes);
    }
    int rc;
    if (family == AF_INET6) {
        rc = berth_setint(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
        if (rc != 0) return rc;
        berth_setint(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
        berth_setint(fd, IPPROTO_IP, IP_RECVTOS, 1); /* IPv4 peers on a dual-stack socket */
        berth_setint(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE);
        berth_setint(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    } else {
        rc = berth_setint(fd, IPPROTO_IP, IP_PKTINFO, 1);
        if (rc != 0) return rc;
        berth_setint(fd, IPPROTO_IP, IP_RECVTOS, 1);
        berth_setint(fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    }
    return 0;
}

#define BERTH_UDP_BATCH 64
#define BERTH_CMSG_SPACE (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo)) + 2 * CMSG_SPACE(sizeof(int)))

int berth_udp_recv(int fd, berth_udp_msg *msgs, unsigned int n, unsigned short local_port) {
    struct mmsghdr hdrs[BERTH_UDP_BATCH];
    struct iovec iovs[BERTH_UDP_BATCH];
    union { char buf[BERTH_CMSG_SPACE]; struct cmsghdr align; } ctl[BERTH_UDP_BATCH];
    if (n > BERTH_UDP_BATCH) n = BERTH_UDP_BATCH;
    memset(hdrs, 0, sizeof(struct mmsghdr) * n);
    for (unsigned int i = 0; i < n; i++) {
        iovs[i].iov_base = msgs[i].buf;
        iovs[i].iov_len = msgs[i].cap;
        hdrs[i].msg_hdr.msg_name = &msgs[i].remote;
        hdrs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        hdrs[i].msg_hdr.msg_iov = &iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
        hdrs[i].msg_hdr.msg_control = ctl[i].buf;
        hdrs[i].msg_hdr.msg_controllen = sizeof ctl[i].buf;
    }
    int got;
    do {
        got = recvmmsg(fd, hdrs, n, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    for (int i = 0; i < got; i++) {
        berth_udp_msg *m = &msgs[i];
        m->len = hdrs[i].msg_len;
        m->remote_len = hdrs[i].msg_hdr.msg_namelen;
        m->local_len = 0;
        m->ecn = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&hdrs[i].msg_hdr); c; c = CMSG_NXTHDR(&hdrs[i].msg_hdr, c)) {
            if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
                struct in6_pktinfo pi;
                memcpy(&pi, CMSG_DATA(c), sizeof pi);
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&m->local;
                memset(a, 0, sizeof *a);
                a->sin6_family = AF_INET6;
                a->sin6_addr = pi.ipi6_addr;
                a->sin6_port = htons(local_port);
                m->local_len = sizeof *a;
            } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                if (m->local_len == 0) {
                    struct in_pktinfo pi;
                    memcpy(&pi, CMSG_DATA(c), sizeof pi);
                    struct sockaddr_in *a = (struct sockaddr_in *)&m->local;
                    memset(a, 0, sizeof *a);
                    a->sin_family = AF_INET;
                    a->sin_addr = pi.ipi_addr;
                    a->sin_port = htons(local_port);
                    m->local_len = sizeof *a;
                }
            } else if (c->cmsg_level == IPPROTO_IP && (c->cmsg_type == IP_TOS || c->cmsg_type == IP_RECVTOS)) {
                m->ecn = (*(unsigned char *)CMSG_DATA(c)) & 0x3;
            } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
                int v;
                memcpy(&v, CMSG_DATA(c), sizeof v);
                m->ecn = (unsigned int)v & 0x3;
            }
        }
    }
    return got;
}

static int berth_is_v4_peer(const struct sockaddr *remote) {
    if (remote->sa_family == AF_INET) return 1;
    if (remote->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)remote;
        return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
    }
    return 0;
}

ssize_t berth_udp_send(int fd, const void *buf, size_t len, size_t segment, const struct sockaddr *remote,
                       socklen_t remote_len, const struct sockaddr *local, socklen_t local_len, unsigned int ecn) {
    union { char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = { (void *)buf, len };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = (void *)remote;
    mh.msg_namelen = remote_len;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof ctl.buf;
    size_t used = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (local && local_len > 0) {
        if (local->sa_family == AF_INET6) {
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
            struct in6_pktinfo pi;
            memset(&pi, 0, sizeof pi);
            pi.ipi6_addr = ((const struct sockaddr_in6 *)local)->sin6_addr;
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
            used += CMSG_SPACE(sizeof(struct in6_pktinfo));
        } else {
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_PKTINFO;
            c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
            struct in_pktinfo pi;
            memset(&pi, 0, sizeof pi);
            pi.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
            memcpy(CMSG_DATA(c), &pi, sizeof pi);
            used += CMSG_SPACE(sizeof(struct in_pktinfo));
        }
        c = CMSG_NXTHDR(&mh, c);
    }
    if (ecn && c) {
        int v = (int)(ecn & 0x3);
        if (berth_is_v4_peer(remote)) {
            c->cmsg_level = IPPROTO_IP;
            c->cmsg_type = IP_TOS;
        } else {
            c->cmsg_level = IPPROTO_IPV6;
            c->cmsg_type = IPV6_TCLASS;
        }
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &v, sizeof v);
        used += CMSG_SPACE(sizeof(int));
        c = CMSG_NXTHDR(&mh, c);
    }
    if (segment > 0 && segment < len && c) {
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t s = (uint16_t)segment;
        memcpy(CMSG_DATA(c), &s, sizeof s);
        used += CMSG_SPACE(sizeof(uint16_t));
    }
    mh.msg_controllen = used;
    if (used == 0) mh.msg_control = NULL;
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

int berth_udp_gso_supported(int fd) {
    int v = 0;
    socklen_t l = sizeof v;
    return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &l) == 0 ? 1 : 0;
}

int berth_timerfd_set_abs(int fd, unsigned long long deadline_ns) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (deadline_ns != 0) {
        its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ULL);
        its.it_value.tv_nsec = (long)(deadline_ns % 1000000000ULL);
    }
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) == 0 ? 0 : -errno;
}
