/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * The honeypot: what happens to one SIP message once a listener has read
 * it whole. It is parsed (sip.h), turned into an event and handed to the
 * writer (never waiting on the disk), and in responsive mode answered
 * through the listener's reply callback, within a per-source rate limit.
 * Safe to call from several listener threads at once.
 */
#ifndef SP_HONEYPOT_H
#define SP_HONEYPOT_H

#include "sip.h"
#include "writer.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

typedef struct sp_honeypot sp_honeypot;

struct sp_honeypot_options {
	bool responsive;
	const char *redirect_uri; /* set: INVITEs get 302 to it, else 404 */
	size_t raw_max;           /* bytes of each message kept */
	unsigned reply_rate;      /* replies a second per source address */
	unsigned reply_burst;     /* and the burst above it */
	bool debug;               /* print each event ("Bad Actor is:") and each parse error */
};

/* Counted since start; the node writes their increases to the store. */
struct sp_honeypot_counters {
	_Atomic uint64_t received, parse_errors, oversized, events, queue_full;
	_Atomic uint64_t replies, replies_limited;
	_Atomic uint64_t udp, tcp, tls;
};

/* Send len bytes back to the source of the message being handled. */
typedef void (*sp_reply_fn)(void *ctx, const char *buf, size_t len);

int sp_honeypot_new(sp_honeypot **out, sp_writer *w, const struct sp_honeypot_options *opt);
void sp_honeypot_free(sp_honeypot *hp);

/* Events a listener collects over one read batch and hands to the writer
 * together: one lock and at most one wake-up instead of one per message. */
#define SP_HONEYPOT_BATCH 64
struct sp_honeypot_batch {
	unsigned n;
	sp_prepared *ev[SP_HONEYPOT_BATCH];
	/* counted here, added to the shared counters at flush: two reader
	 * threads incrementing them per message made their cache line bounce */
	uint64_t received, handled;
	uint8_t transport;
};

/* One whole message from src to dst (our address) over transport (one
 * SP_TP_* bit). reply may be NULL (no answer possible). batch NULL: the
 * event goes to the writer at once; else into batch, which is handed over
 * when full and by sp_honeypot_flush(). */
void sp_honeypot_handle(sp_honeypot *hp, const char *buf, size_t len, uint8_t transport,
			const struct sockaddr *src, const struct sockaddr *dst, sp_reply_fn reply,
			void *reply_ctx, struct sp_honeypot_batch *batch);
void sp_honeypot_flush(sp_honeypot *hp, struct sp_honeypot_batch *batch);

struct sp_honeypot_counters *sp_honeypot_counters(sp_honeypot *hp);

/* Text form of a socket address, normalised as a store key; port in *port. */
void sp_sockaddr_text(const struct sockaddr *sa, char *ip, size_t len, uint16_t *port);

#endif
