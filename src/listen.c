/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "listen.h"
#include "sp_error.h"
#include "sp_file.h"
#include "sp_log.h"
#include "sp_thread.h"
#include "sp_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sock_diag.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SOCKETS 32
#define UDP_BATCH 32
#define UDP_BUF 65536 /* the largest UDP payload fits: nothing is truncated */

enum sock_kind { SOCK_UDP, SOCK_TCP, SOCK_TLS };

#define MAX_UDP_THREADS 8

struct udp_thread {
	pthread_t thread;
	struct lsock *s;
	unsigned index; /* 0 also counts the socket's kernel drops */
};

struct lsock {
	int fd;
	enum sock_kind kind;
	int family;
	struct udp_thread threads[MAX_UDP_THREADS]; /* UDP only */
	unsigned nthreads; /* started */
	struct sp_listeners *l;
};

struct conn {
	int fd;
	gnutls_session_t tls; /* NULL for TCP */
	bool handshaking;
	struct sockaddr_storage src, dst;
	uint8_t src_key[16];
	uint64_t opened_ns, last_ns, msg_start_ns; /* msg_start 0: between messages */
	char *buf;
	size_t len, cap;
	struct conn *prev, *next;
};

struct sp_listeners {
	sp_honeypot *hp;
	struct sp_listen_options opt;
	struct sp_listen_counters ctr;
	struct lsock socks[MAX_SOCKETS];
	int nsocks;
	int stop_fd; /* eventfd: wakes every thread to stop */
	int epfd;
	pthread_t stream_thread;
	bool stream_started;
	struct conn *conns; /* open connections */
	unsigned nconns;
	bool stopped;
	_Atomic bool udp_stopping;
};

struct sp_listen_counters *sp_listeners_counters(sp_listeners *l)
{
	return &l->ctr;
}

/* ---- binding -------------------------------------------------------- */

static int bind_one(sp_listeners *l, const char *addr, uint16_t port, enum sock_kind kind)
{
	static const char *const names[] = { "UDP", "TCP", "TLS" };
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd, family;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (void *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		sl = sizeof(*s6);
		family = AF_INET6;
	} else {
		struct sockaddr_in *s4 = (void *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof(*s4);
		family = AF_INET;
	}
	if (l->nsocks >= MAX_SOCKETS) {
		log_error("too many listening sockets (at most %d)", MAX_SOCKETS);
		return -EMFILE;
	}
	fd = socket(family, (kind == SOCK_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC |
				    (kind == SOCK_UDP ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) /* "::" listens for IPv6 only: "0.0.0.0" has its own socket */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (kind == SOCK_UDP) {
		if (family == AF_INET)
			setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
		else
			setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
		struct timeval tv = { 0, 250000 }; /* readers look at the stop flag */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		int rb = (int)l->opt.udp_rcvbuf, got = 0;
		socklen_t gl = sizeof(got);
		if (rb > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) != 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb)); /* capped by rmem_max */
		if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got < rb)
			log_warn("UDP receive buffer on %s is %d KiB, not the %d KiB asked (raise "
				 "net.core.rmem_max, or start as root): bursts may be dropped by the kernel",
				 addr, got / 1024, rb / 1024);

	}
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
		goto fail;
	if (kind != SOCK_UDP && listen(fd, 1024) != 0)
		goto fail;
	/* report the port actually bound (port 0 picks one) */
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	port = ntohs(family == AF_INET ? ((struct sockaddr_in *)(void *)&ss)->sin_port
				       : ((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
	log_info("listening for SIP over %s on %s%s%s:%u", names[kind], family == AF_INET6 ? "[" : "",
		 addr, family == AF_INET6 ? "]" : "", port);
	l->socks[l->nsocks++] = (struct lsock){ .fd = fd, .kind = kind, .family = family, .l = l };
	return 0;
fail:;
	int err = errno;
	log_error("cannot listen for SIP over %s on %s port %u: %s%s", names[kind], addr, port,
		  strerror(err),
		  err == EACCES ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
		  : err == EADDRINUSE ? " (another program has it: choose another with --sip-port)"
				      : "");
	if (fd >= 0)
		close(fd);
	return -err;
}

int sp_listeners_bind(sp_listeners **out, sp_honeypot *hp, const struct sp_listen_options *opt)
{
	sp_listeners *l = calloc(1, sizeof(*l));
	int rc = 0;
	if (!l)
		return -ENOMEM;
	l->hp = hp;
	l->opt = *opt;
	l->epfd = -1;
	l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->stop_fd < 0) {
		free(l);
		return -errno;
	}
	for (size_t i = 0; rc == 0 && i < opt->addresses->n; i++) {
		const char *a = opt->addresses->v[i];
		if (opt->udp)
			rc = bind_one(l, a, opt->port, SOCK_UDP);
		if (rc == 0 && opt->tcp)
			rc = bind_one(l, a, opt->port, SOCK_TCP);
		if (rc == 0 && opt->tls)
			rc = bind_one(l, a, opt->tls_port, SOCK_TLS);
	}
	if (rc) {
		sp_listeners_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

/* ---- UDP -------------------------------------------------------------- */

struct udp_reply {
	int fd;
	struct msghdr *req; /* the request's header: its source and pktinfo */
};

/* Answer from the address the request was sent to, so a multi-homed host
 * replies from the right one. */
static void udp_reply(void *ctx, const char *buf, size_t len)
{
	struct udp_reply *r = ctx;
	char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_name = r->req->msg_name, .msg_namelen = r->req->msg_namelen,
			     .msg_iov = &iov, .msg_iovlen = 1 };
	memset(cbuf, 0, sizeof(cbuf));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(r->req); c; c = CMSG_NXTHDR(r->req, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			pi.ipi_ifindex = 0;
			pi.ipi_spec_dst = pi.ipi_addr;
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
			struct cmsghdr *o = CMSG_FIRSTHDR(&mh);
			o->cmsg_level = IPPROTO_IP;
			o->cmsg_type = IP_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(o), &pi, sizeof(pi));
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(pi));
			struct cmsghdr *o = CMSG_FIRSTHDR(&mh);
			o->cmsg_level = IPPROTO_IPV6;
			o->cmsg_type = IPV6_PKTINFO;
			o->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(o), &pi, sizeof(pi));
		}
	}
	sendmsg(r->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL); /* a lost reply is a lost datagram */
}

/* Our address from the pktinfo control message, with our port. */
static void udp_dst(struct msghdr *mh, int family, uint16_t port, struct sockaddr_storage *dst)
{
	memset(dst, 0, sizeof(*dst));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *d = (void *)dst;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			d->sin_family = AF_INET;
			d->sin_addr = pi.ipi_addr;
			d->sin_port = htons(port);
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *d = (void *)dst;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			d->sin6_family = AF_INET6;
			d->sin6_addr = pi.ipi6_addr;
			d->sin6_port = htons(port);
		}
	}
	(void)family;
}

/* Datagrams the kernel dropped on this socket because its receive buffer
 * was full (SO_MEMINFO, SK_MEMINFO_DROPS): losses we could not see. */
static void udp_count_kernel_drops(sp_listeners *l, int fd, uint32_t *seen)
{
	uint32_t mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);
	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 ||
	    len < sizeof(uint32_t) * (SK_MEMINFO_DROPS + 1))
		return;
	uint32_t drops = mem[SK_MEMINFO_DROPS];
	if (drops != *seen) {
		atomic_fetch_add_explicit(&l->ctr.udp_dropped_kernel, (uint32_t)(drops - *seen),
					  memory_order_relaxed);
		*seen = drops;
	}
}

static void *udp_main(void *arg)
{
	const struct udp_thread *ut = arg;
	struct lsock *s = ut->s;
	sp_listeners *l = s->l;
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage from[UDP_BATCH];
	char (*ctl)[256] = malloc(UDP_BATCH * 256); /* pktinfo and overflow count */
	char *bufs = malloc((size_t)UDP_BATCH * (UDP_BUF + 1));
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);
	uint16_t port = 0;
	uint32_t kernel_dropped = 0;
	uint64_t drops_checked_ns = 0;
	struct sp_honeypot_batch batch = { 0 };

	sp_thread_background("sp-sip-udp");
	getsockname(s->fd, (struct sockaddr *)&local, &ll);
	port = ntohs(local.ss_family == AF_INET ? ((struct sockaddr_in *)(void *)&local)->sin_port
						 : ((struct sockaddr_in6 *)(void *)&local)->sin6_port);
	if (!ctl || !bufs) {
		log_error("UDP listener: out of memory");
		goto out;
	}
	/* Blocking reads, not poll: the threads of a socket wait in recvmmsg,
	 * where each arrival wakes one of them (poll wakes them all, for
	 * one datagram). MSG_WAITFORONE returns once one is there, with
	 * whatever else is queued. Stopping sets the flag and shuts the
	 * socket down, which wakes them; SO_RCVTIMEO is the safety net. */
	while (!atomic_load_explicit(&l->udp_stopping, memory_order_acquire)) {
		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i].iov_base = bufs + (size_t)i * (UDP_BUF + 1);
			iov[i].iov_len = UDP_BUF;
			msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
							    .msg_namelen = sizeof(from[i]),
							    .msg_iov = &iov[i],
							    .msg_iovlen = 1,
							    .msg_control = ctl[i],
							    .msg_controllen = sizeof(ctl[i]) };
		}
		int n = recvmmsg(s->fd, msgs, UDP_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
			break; /* shut down (0), or the socket is gone */
		for (int i = 0; i < n; i++) {
			struct sockaddr_storage dst;
			struct udp_reply r = { s->fd, &msgs[i].msg_hdr };
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				atomic_fetch_add_explicit(&l->ctr.udp_truncated, 1, memory_order_relaxed);
				continue;
			}
			udp_dst(&msgs[i].msg_hdr, s->family, port, &dst);
			sp_honeypot_handle(l->hp, iov[i].iov_base, msgs[i].msg_len, SP_TP_UDP,
					   (struct sockaddr *)&from[i], (struct sockaddr *)&dst, udp_reply,
					   &r, &batch);
		}
		sp_honeypot_flush(l->hp, &batch);
		if (ut->index == 0 && sp_mono_ns() - drops_checked_ns > SP_NS_PER_SEC / 10) {
			udp_count_kernel_drops(l, s->fd, &kernel_dropped);
			drops_checked_ns = sp_mono_ns();
		}
	}
	if (ut->index == 0)
		udp_count_kernel_drops(l, s->fd, &kernel_dropped);
out:
	free(ctl);
	free(bufs);
	return NULL;
}

/* ---- TCP and TLS -------------------------------------------------------- */

static unsigned source_conns(sp_listeners *l, const uint8_t key[16])
{
	unsigned n = 0;
	for (struct conn *c = l->conns; c; c = c->next)
		n += memcmp(c->src_key, key, 16) == 0;
	return n;
}

static void sockaddr_key(const struct sockaddr_storage *ss, uint8_t key[16])
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)ss)->sin_addr, 4);
	} else {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr, 16);
	}
}

static void conn_close(sp_listeners *l, struct conn *c)
{
	if (c->tls) {
		if (!c->handshaking)
			gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* non-blocking: best effort */
		gnutls_deinit(c->tls);
	}
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->nconns--;
	free(c->buf);
	free(c);
}

static void accept_all(sp_listeners *l, struct lsock *s)
{
	for (;;) {
		struct sockaddr_storage src;
		socklen_t sl = sizeof(src);
		int fd = accept4(s->fd, (struct sockaddr *)&src, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a transient error: epoll tells us again */
		uint8_t key[16];
		sockaddr_key(&src, key);
		if (l->nconns >= l->opt.max_conns ||
		    source_conns(l, key) >= l->opt.max_conns_per_source) {
			atomic_fetch_add_explicit(&l->ctr.conns_refused, 1, memory_order_relaxed);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->src = src;
		memcpy(c->src_key, key, 16);
		sl = sizeof(c->dst);
		getsockname(fd, (struct sockaddr *)&c->dst, &sl);
		c->opened_ns = c->last_ns = sp_mono_ns();
		if (s->kind == SOCK_TLS) {
			if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK) != 0 ||
			    gnutls_set_default_priority(c->tls) != 0 ||
			    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, l->opt.tls_cred) != 0) {
				if (c->tls)
					gnutls_deinit(c->tls);
				close(fd);
				free(c);
				continue;
			}
			gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
			gnutls_transport_set_int(c->tls, fd);
			c->handshaking = true;
		}
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			if (c->tls)
				gnutls_deinit(c->tls);
			close(fd);
			free(c);
			continue;
		}
		c->next = l->conns;
		if (l->conns)
			l->conns->prev = c;
		l->conns = c;
		l->nconns++;
		atomic_fetch_add_explicit(&l->ctr.conns_accepted, 1, memory_order_relaxed);
	}
}

static void stream_reply(void *ctx, const char *buf, size_t len)
{
	struct conn *c = ctx;
	/* a honeypot buffers nothing for a client that does not read */
	if (c->tls)
		gnutls_record_send(c->tls, buf, len);
	else
		send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Content-Length (or its compact form "l") of a header block, 0 when
 * absent; -1 when a value is not digits (then the stream cannot be framed).
 * The buffer is not NUL-terminated: every read stays inside h[0..hlen). */
static long content_length(const char *h, size_t hlen)
{
	long cl = 0;
	for (const char *p = h, *end = h + hlen; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end; /* this line is [p, le) */
		const char *v = NULL;
		if (le - p > 14 && strncasecmp(p, "content-length", 14) == 0)
			v = p + 14;
		else if (le - p > 1 && (p[0] == 'l' || p[0] == 'L') &&
			 (p[1] == ':' || p[1] == ' ' || p[1] == '\t'))
			v = p + 1;
		if (v) {
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			if (v < le && *v == ':') {
				long x = 0;
				int digits = 0;
				for (v++; v < le && (*v == ' ' || *v == '\t'); v++)
					;
				for (; v < le && *v >= '0' && *v <= '9'; v++, digits++) {
					if (x > (LONG_MAX - 9) / 10)
						return -1;
					x = x * 10 + (*v - '0');
				}
				for (; v < le && (*v == ' ' || *v == '\t' || *v == '\r'); v++)
					;
				if (!digits || v != le)
					return -1;
				cl = x;
			}
		}
		p = le + 1;
	}
	return cl;
}

/* Hand every whole message in the buffer to the honeypot. Returns false
 * when the connection must close (a message too large or malformed). */
static bool frame(sp_listeners *l, struct conn *c)
{
	size_t off = 0;
	for (;;) {
		/* CRLF keep-alives between messages (RFC 5626: answer CRLFCRLF with CRLF) */
		while (off + 1 < c->len && c->buf[off] == '\r' && c->buf[off + 1] == '\n') {
			if (off + 3 < c->len && memcmp(c->buf + off, "\r\n\r\n", 4) == 0) {
				stream_reply(c, "\r\n", 2);
				off += 4;
			} else {
				off += 2;
			}
		}
		size_t left = c->len - off;
		if (left == 0)
			break;
		if (!c->msg_start_ns)
			c->msg_start_ns = sp_mono_ns();
		const char *start = c->buf + off;
		const char *eoh = memmem(start, left, "\r\n\r\n", 4);
		if (!eoh) {
			if (left > l->opt.max_header)
				goto too_big;
			break; /* wait for the rest of the headers */
		}
		size_t hlen = (size_t)(eoh - start) + 4;
		if (hlen > l->opt.max_header)
			goto too_big;
		long cl = content_length(start, hlen);
		if (cl < 0)
			return false; /* cannot frame what follows */
		if ((size_t)cl > l->opt.max_body)
			goto too_big;
		if (left < hlen + (size_t)cl)
			break; /* wait for the body */
		sp_honeypot_handle(l->hp, start, hlen + (size_t)cl, c->tls ? SP_TP_TLS : SP_TP_TCP,
				   (struct sockaddr *)&c->src, (struct sockaddr *)&c->dst, stream_reply, c,
				   NULL);
		off += hlen + (size_t)cl;
		c->msg_start_ns = 0;
	}
	if (off) {
		memmove(c->buf, c->buf + off, c->len - off);
		c->len -= off;
	}
	return true;
too_big:
	atomic_fetch_add_explicit(&l->ctr.oversized_closed, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sp_honeypot_counters(l->hp)->oversized, 1, memory_order_relaxed);
	return false;
}

static void conn_readable(sp_listeners *l, struct conn *c)
{
	size_t limit = l->opt.max_header + l->opt.max_body + 4;
	if (c->handshaking) {
		int rc = gnutls_handshake(c->tls);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
			return;
		if (rc < 0) {
			atomic_fetch_add_explicit(&l->ctr.tls_failed, 1, memory_order_relaxed);
			conn_close(l, c);
			return;
		}
		c->handshaking = false;
		c->last_ns = sp_mono_ns();
	}
	for (;;) {
		if (c->len == c->cap) {
			if (c->cap >= limit) {
				atomic_fetch_add_explicit(&l->ctr.oversized_closed, 1, memory_order_relaxed);
				conn_close(l, c);
				return;
			}
			size_t ncap = c->cap ? c->cap * 2 : 4096;
			if (ncap > limit)
				ncap = limit;
			char *nb = realloc(c->buf, ncap);
			if (!nb) {
				conn_close(l, c);
				return;
			}
			c->buf = nb;
			c->cap = ncap;
		}
		ssize_t n = c->tls ? gnutls_record_recv(c->tls, c->buf + c->len, c->cap - c->len)
				   : recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			c->last_ns = sp_mono_ns();
			if (!frame(l, c)) {
				conn_close(l, c);
				return;
			}
			continue;
		}
		if (c->tls ? (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			   : (n < 0 && (errno == EAGAIN || errno == EINTR)))
			break;
		conn_close(l, c); /* closed by the peer, or an error */
		return;
	}
	/* a long-lived connection keeps no large buffer between messages */
	if (c->len == 0 && c->cap > 4096) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
}

static void expire_conns(sp_listeners *l)
{
	uint64_t now = sp_mono_ns();
	for (struct conn *c = l->conns, *next; c; c = next) {
		next = c->next;
		bool late = (c->handshaking && now - c->opened_ns > l->opt.handshake_timeout_ns) ||
			    (now - c->last_ns > l->opt.idle_timeout_ns) ||
			    (c->msg_start_ns && now - c->msg_start_ns > l->opt.message_timeout_ns);
		if (late) {
			atomic_fetch_add_explicit(c->handshaking ? &l->ctr.tls_failed : &l->ctr.conns_timed_out,
						  1, memory_order_relaxed);
			conn_close(l, c);
		}
	}
}

static void *stream_main(void *arg)
{
	sp_listeners *l = arg;
	struct epoll_event evs[64];
	uint64_t next_expiry = sp_mono_ns() + SP_NS_PER_SEC / 4;

	sp_thread_background("sp-sip-stream");

	for (;;) {
		int n = epoll_wait(l->epfd, evs, 64, 250);
		if (n < 0 && errno != EINTR)
			break;
		bool stop = false;
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &l->stop_fd) {
				stop = true;
			} else if (p >= (void *)l->socks && p < (void *)(l->socks + MAX_SOCKETS)) {
				accept_all(l, p);
			} else {
				conn_readable(l, p);
			}
		}
		if (stop)
			break;
		if (sp_mono_ns() >= next_expiry) {
			expire_conns(l);
			next_expiry = sp_mono_ns() + SP_NS_PER_SEC / 4;
		}
	}
	while (l->conns)
		conn_close(l, l->conns);
	return NULL;
}

int sp_listeners_run(sp_listeners *l)
{
	bool streams = false;
	int rc;
	for (int i = 0; i < l->nsocks; i++)
		streams |= l->socks[i].kind != SOCK_UDP;
	if (streams) {
		l->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (l->epfd < 0)
			return -errno;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &l->stop_fd };
		epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev);
		for (int i = 0; i < l->nsocks; i++) {
			if (l->socks[i].kind == SOCK_UDP)
				continue;
			ev.data.ptr = &l->socks[i];
			epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->socks[i].fd, &ev);
		}
		if ((rc = pthread_create(&l->stream_thread, NULL, stream_main, l)))
			return -rc;
		l->stream_started = true;
	}
	unsigned threads = l->opt.udp_threads ? l->opt.udp_threads : 2;
	if (threads > MAX_UDP_THREADS)
		threads = MAX_UDP_THREADS;
	for (int i = 0; i < l->nsocks; i++) {
		struct lsock *s = &l->socks[i];
		if (s->kind != SOCK_UDP)
			continue;
		for (unsigned t = 0; t < threads; t++) {
			struct udp_thread *ut = &s->threads[t];
			ut->s = s;
			ut->index = t;
			if ((rc = pthread_create(&ut->thread, NULL, udp_main, ut)))
				return -rc;
			s->nthreads++;
		}
	}
	return 0;
}

void sp_listeners_stop(sp_listeners *l)
{
	if (!l || l->stopped)
		return;
	uint64_t one = 1;
	atomic_store_explicit(&l->udp_stopping, true, memory_order_release);
	if (write(l->stop_fd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the listeners: %s", strerror(errno));
	for (int i = 0; i < l->nsocks; i++) /* wakes the UDP readers */
		if (l->socks[i].kind == SOCK_UDP)
			shutdown(l->socks[i].fd, SHUT_RD);
	if (l->stream_started)
		pthread_join(l->stream_thread, NULL);
	for (int i = 0; i < l->nsocks; i++) {
		for (unsigned t = 0; t < l->socks[i].nthreads; t++)
			pthread_join(l->socks[i].threads[t].thread, NULL);
		close(l->socks[i].fd);
	}
	if (l->epfd >= 0)
		close(l->epfd);
	close(l->stop_fd);
	l->stopped = true;
}

void sp_listeners_free(sp_listeners *l)
{
	sp_listeners_stop(l);
	free(l);
}

/* ---- TLS credentials ----------------------------------------------------- */

/* Written under a temporary name, then renamed. The data directory may
 * belong to the user a root node switches to: the temporary file is made
 * new (O_EXCL, O_NOFOLLOW), so a link planted there cannot make root
 * write elsewhere, and rename() replaces a link at the final name rather
 * than follow it. A temporary file left by a crash is removed first. */
static int write_private(const char *path, const void *data, size_t len)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = open(tmp, flags, 0600);
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, flags, 0600);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, data, len);
	int rc = (w == (ssize_t)len && fsync(fd) == 0) ? 0 : -EIO;
	close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

/* A self-signed ECDSA P-256 certificate for ten years, written once. */
static int generate_pair(const char *cert_path, const char *key_path)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t kpem = { NULL, 0 }, cpem = { NULL, 0 };
	unsigned char serial[16];
	int rc = -EIO;
	time_t now = time(NULL);

	if (gnutls_x509_privkey_init(&key) || gnutls_x509_crt_init(&crt))
		goto out;
	if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0))
		goto out;
	if (gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)))
		goto out;
	serial[0] &= 0x7f;
	if (gnutls_x509_crt_set_version(crt, 3) || gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 10L * 365 * 86400) ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "sip", 3) ||
	    gnutls_x509_crt_set_key(crt, key) || gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0))
		goto out;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &kpem) ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cpem))
		goto out;
	if ((rc = write_private(key_path, kpem.data, kpem.size)) == 0)
		rc = write_private(cert_path, cpem.data, cpem.size);
out:
	gnutls_free(kpem.data);
	gnutls_free(cpem.data);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

/* A file of the pair the node made, read as what it must be: a regular
 * file of at most 64 KiB, not a link (the data directory may belong to
 * the user a root node switches to; a link there could point root at a
 * device or a file of any size). */
static int read_own_pem(const char *path, gnutls_datum_t *d)
{
	struct stat sb;
	int fd = sp_open_plain(path, O_RDONLY, 0);
	if (fd < 0)
		return fd;
	int rc = 0;
	if (fstat(fd, &sb) != 0)
		rc = -errno;
	else if (sb.st_size <= 0 || sb.st_size > 65536)
		rc = SP_EPARSE;
	else if (!(d->data = gnutls_malloc((size_t)sb.st_size)))
		rc = -ENOMEM;
	else if (read(fd, d->data, (size_t)sb.st_size) != sb.st_size)
		rc = -EIO;
	else
		d->size = (unsigned)sb.st_size;
	if (rc && d->data) {
		gnutls_free(d->data);
		d->data = NULL;
	}
	close(fd);
	return rc;
}

/* The node's own pair, loaded from what read_own_pem() read. */
static int load_own_pair(gnutls_certificate_credentials_t cred, const char *cert,
			 const char *key)
{
	gnutls_datum_t c = { NULL, 0 }, k = { NULL, 0 };
	int rc = read_own_pem(cert, &c);
	if (rc == 0)
		rc = read_own_pem(key, &k);
	if (rc)
		log_error("cannot read %s: %s (the node's own pair must be regular files of at "
			  "most 64 KiB, not links; give others with --tls-cert and --tls-key)",
			  c.data ? key : cert, sp_strerror(rc));
	else if ((rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM)) < 0)
		log_error("cannot load TLS certificate %s and key %s: %s", cert, key,
			  gnutls_strerror(rc));
	gnutls_free(c.data);
	if (k.data)
		gnutls_memset(k.data, 0, k.size);
	gnutls_free(k.data);
	return rc;
}

int sp_tls_credentials(const char *cert, const char *key, const char *dir,
		       gnutls_certificate_credentials_t *out)
{
	char cbuf[4096], kbuf[4096];
	struct stat sb;
	int rc;

	if ((cert == NULL) != (key == NULL)) {
		log_error("TLS needs both --tls-cert and --tls-key, or neither (self-signed)");
		return SP_EPARSE;
	}
	if (!cert) {
		snprintf(cbuf, sizeof(cbuf), "%s/tls-cert.pem", dir);
		snprintf(kbuf, sizeof(kbuf), "%s/tls-key.pem", dir);
		cert = cbuf;
		key = kbuf;
		if (stat(cert, &sb) != 0 || stat(key, &sb) != 0) {
			if ((rc = generate_pair(cert, key))) {
				log_error("cannot create a self-signed TLS certificate in %s: %s", dir,
					  sp_strerror(rc));
				return rc;
			}
			log_info("created a self-signed TLS certificate: %s", cert);
		}
	}
	if (gnutls_certificate_allocate_credentials(out))
		return -ENOMEM;
	/* the user's own files may be links (certbot's live/ directory) */
	if (cert == cbuf)
		rc = load_own_pair(*out, cert, key);
	else if ((rc = gnutls_certificate_set_x509_key_file(*out, cert, key,
							    GNUTLS_X509_FMT_PEM)) < 0)
		log_error("cannot load TLS certificate %s and key %s: %s", cert, key,
			  gnutls_strerror(rc));
	if (rc < 0) {
		gnutls_certificate_free_credentials(*out);
		*out = NULL;
		return SP_EPARSE;
	}
	return 0;
}
