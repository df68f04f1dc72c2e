/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The SIP listeners: UDP (reader threads per socket, recvmmsg batches, the
 * destination address from IP_PKTINFO / IPV6_RECVPKTINFO) and TCP and TLS
 * (one epoll thread; messages framed by Content-Length, pipelined and
 * partial messages handled, every buffer capped, slow or silent clients
 * dropped by timers). Each whole message goes to sp_honeypot_handle().
 *
 * Two steps, so the node can drop root in between: sp_listeners_bind()
 * opens and binds every socket; sp_listeners_run() starts the threads.
 */
#ifndef SP_LISTEN_H
#define SP_LISTEN_H

#include "honeypot.h"
#include "settings.h"

#include <gnutls/gnutls.h>

typedef struct sp_listeners sp_listeners;

struct sp_listen_options {
	const struct sp_strlist *addresses;
	uint16_t port, tls_port; /* 0: any free port (the log says which) */
	bool udp, tcp, tls;
	gnutls_certificate_credentials_t tls_cred; /* when tls */
	unsigned max_conns, max_conns_per_source;
	uint64_t idle_timeout_ns;    /* nothing received for this long: closed */
	uint64_t message_timeout_ns; /* a message begun must be whole by then */
	uint64_t handshake_timeout_ns;
	size_t max_header, max_body;
	size_t udp_rcvbuf;           /* socket receive buffer, absorbs bursts */
	unsigned udp_threads;        /* readers per UDP socket; 0: 2 */
};

struct sp_listen_counters {
	_Atomic uint64_t conns_accepted, conns_refused, conns_timed_out, oversized_closed,
		tls_failed, udp_truncated, udp_dropped_kernel;
};

/* Errors are logged with the address and port concerned. */
int sp_listeners_bind(sp_listeners **out, sp_honeypot *hp, const struct sp_listen_options *opt);
int sp_listeners_run(sp_listeners *l);
/* Stop the threads and close every socket; the counters stay readable
 * until sp_listeners_free() (which stops first if need be). */
void sp_listeners_stop(sp_listeners *l);
void sp_listeners_free(sp_listeners *l);
struct sp_listen_counters *sp_listeners_counters(sp_listeners *l);

/* TLS credentials from cert and key files, or, when both are NULL, from
 * DIR/tls-cert.pem and DIR/tls-key.pem, generated (self-signed ECDSA P-256)
 * on first use and reused. */
int sp_tls_credentials(const char *cert, const char *key, const char *dir,
		       gnutls_certificate_credentials_t *out);

#endif
