/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "honeypot.h"
#include "sp_error.h"
#include "sp_log.h"
#include "sp_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RL_SLOTS 4096 /* sources tracked for the reply limit: bounded memory */

struct bucket {
	uint8_t addr[16];
	uint64_t last_ns;
	double tokens;
};

struct sp_honeypot {
	sp_writer *w;
	struct sp_honeypot_options opt;
	struct sp_honeypot_counters ctr;
	pthread_mutex_t rl_lock;
	struct bucket *rl;
	uint32_t rl_seed; /* random: slots cannot be aimed at from outside */
};

int sp_honeypot_new(sp_honeypot **out, sp_writer *w, const struct sp_honeypot_options *opt)
{
	sp_honeypot *hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	hp->rl = calloc(RL_SLOTS, sizeof(*hp->rl));
	if (!hp->rl) {
		free(hp);
		return -ENOMEM;
	}
	hp->w = w;
	hp->opt = *opt;
	if (!hp->opt.reply_rate)
		hp->opt.reply_rate = 10;
	if (!hp->opt.reply_burst)
		hp->opt.reply_burst = 20;
	pthread_mutex_init(&hp->rl_lock, NULL);
	if (getrandom(&hp->rl_seed, sizeof(hp->rl_seed), 0) != sizeof(hp->rl_seed))
		hp->rl_seed = (uint32_t)sp_now_ns();
	*out = hp;
	return 0;
}

void sp_honeypot_free(sp_honeypot *hp)
{
	if (!hp)
		return;
	pthread_mutex_destroy(&hp->rl_lock);
	free(hp->rl);
	free(hp);
}

struct sp_honeypot_counters *sp_honeypot_counters(sp_honeypot *hp)
{
	return &hp->ctr;
}

static size_t format_ipv4(const uint8_t b[4], char *out)
{
	size_t o = 0;
	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (i)
			out[o++] = '.';
		if (v >= 100)
			out[o++] = (char)('0' + v / 100);
		if (v >= 10)
			out[o++] = (char)('0' + v / 10 % 10);
		out[o++] = (char)('0' + v % 10);
	}
	out[o] = '\0';
	return o;
}

/* The store's key form without a parse and reformat on the hot path:
 * dotted quad for IPv4 (and IPv4-mapped IPv6), inet_ntop's RFC 5952 text
 * for IPv6. */
void sp_sockaddr_text(const struct sockaddr *sa, char *ip, size_t len, uint16_t *port)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char buf[INET6_ADDRSTRLEN] = "";
	*port = 0;
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		format_ipv4((const uint8_t *)&s4->sin_addr, buf);
		*port = ntohs(s4->sin_port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		const uint8_t *b = s6->sin6_addr.s6_addr;
		if (memcmp(b, mapped, sizeof(mapped)) == 0)
			format_ipv4(b + 12, buf);
		else
			inet_ntop(AF_INET6, b, buf, sizeof(buf));
		*port = ntohs(s6->sin6_port);
	}
	/* no snprintf on the hot path (two per event) */
	if (len > 0) {
		size_t n = strnlen(buf, sizeof(buf));
		if (n >= len)
			n = len - 1;
		memcpy(ip, buf, n);
		ip[n] = '\0';
	}
}

/* Raw 16-byte form of the source for the rate limiter. */
static void addr_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	}
}

/* Token bucket per source: a honeypot must not become a reflector. */
static bool reply_allowed(sp_honeypot *hp, const struct sockaddr *src)
{
	uint8_t a[16];
	uint32_t h = 2166136261u;
	bool ok;

	addr_bytes(src, a);
	h ^= hp->rl_seed;
	for (int i = 0; i < 16; i++)
		h = (h ^ a[i]) * 16777619u;
	pthread_mutex_lock(&hp->rl_lock);
	/* the time under the lock: another listener thread may have moved
	 * last_ns on since (the unsigned difference would refill the bucket) */
	uint64_t now = sp_mono_ns();
	/* sources that share a slot share its budget: a collision can only
	 * mean fewer replies, never a fresh burst (the hash is also keyed) */
	struct bucket *b = &hp->rl[(h ^ (h >> 16)) % RL_SLOTS];
	if (b->last_ns == 0) {
		memcpy(b->addr, a, 16);
		b->tokens = hp->opt.reply_burst;
	} else {
		double add = (double)(now - b->last_ns) / 1e9 * hp->opt.reply_rate;
		b->tokens += add;
		if (b->tokens > hp->opt.reply_burst)
			b->tokens = hp->opt.reply_burst;
	}
	b->last_ns = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&hp->rl_lock);
	return ok;
}

static void print_event(const sp_event *e, uint8_t transport)
{
	char ts[SP_TIMESTAMP_LEN];
	/* upstream's form: 2021-11-23 20:13:36.427515810 */
	/* one fwrite per event keeps concurrent listeners' output whole */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return;
	fprintf(f, "\nBad Actor is:\nEvent Timestamp: %s\nSIP Message: %.*s\n\nSource IP: %s\n"
		   "Called Number: %s\nSIP Method: %s\nTransport Type: %s\nUser Agent: %s\n",
		(sp_timestamp_format(e->ts_ns, ts), ts[10] = ' ', ts[29] = '\0', ts), (int)e->raw_len,
		e->raw, e->src_ip, e->to_user,
		e->method, sp_transport_name(transport), e->user_agent);
	fclose(f);
	fwrite(buf, 1, len, stdout);
	fflush(stdout);
	free(buf);
}

static _Atomic uint64_t *transport_counter(sp_honeypot *hp, uint8_t transport)
{
	return transport == SP_TP_UDP ? &hp->ctr.udp : transport == SP_TP_TCP ? &hp->ctr.tcp
									  : &hp->ctr.tls;
}

void sp_honeypot_flush(sp_honeypot *hp, struct sp_honeypot_batch *batch)
{
	if (!batch)
		return;
	if (batch->received) {
		atomic_fetch_add_explicit(&hp->ctr.received, batch->received, memory_order_relaxed);
		batch->received = 0;
	}
	if (batch->handled) {
		atomic_fetch_add_explicit(transport_counter(hp, batch->transport), batch->handled,
					  memory_order_relaxed);
		batch->handled = 0;
	}
	if (batch->n == 0)
		return;
	/* never waits for the disk: a full queue drops and counts */
	size_t queued = sp_writer_submit_prepared(hp->w, batch->ev, batch->n);
	atomic_fetch_add_explicit(&hp->ctr.events, queued, memory_order_relaxed);
	if (queued < batch->n)
		atomic_fetch_add_explicit(&hp->ctr.queue_full, batch->n - queued,
					  memory_order_relaxed);
	batch->n = 0;
}

void sp_honeypot_handle(sp_honeypot *hp, const char *buf, size_t len, uint8_t transport,
			const struct sockaddr *src, const struct sockaddr *dst, sp_reply_fn reply,
			void *reply_ctx, struct sp_honeypot_batch *batch)
{
	sp_sip_msg *m = NULL;
	char src_ip[SP_KEY_MAX];
	uint16_t src_port;

	if (batch && batch->handled && batch->transport != transport)
		sp_honeypot_flush(hp, batch); /* one transport per batch's count */
	if (batch)
		batch->received++, batch->transport = transport;
	else
		atomic_fetch_add_explicit(&hp->ctr.received, 1, memory_order_relaxed);
	/* passive mode parses what the event needs; responsive mode also
	 * what a reply needs, and records a message it cannot answer */
	bool answer = hp->opt.responsive && reply;
	int rc = answer ? sp_sip_parse(buf, len, &m) : sp_sip_parse_event(buf, len, &m);
	if (rc == SP_EPARSE && answer) {
		rc = sp_sip_parse_event(buf, len, &m);
		if (rc == 0 && hp->opt.debug)
			log_debug("a %zu-byte message parses, but not its Via, From, Call-ID or "
				  "CSeq: recorded, no reply", len);
	}
	if (rc) {
		atomic_fetch_add_explicit(rc == SP_ETOOBIG ? &hp->ctr.oversized : &hp->ctr.parse_errors,
					  1, memory_order_relaxed);
		if (hp->opt.debug) {
			sp_sockaddr_text(src, src_ip, sizeof(src_ip), &src_port);
			log_debug("%zu bytes from %s port %u over %s do not parse as SIP: %s", len,
				  src_ip, src_port, sp_transport_name(transport), sp_strerror(rc));
		}
		return;
	}

	/* on the stack, raw in the caller's buffer: the writer gets the
	 * record prepared from it */
	sp_event ev, *e = &ev;
	sp_event_init(e, buf, len, hp->opt.raw_max);
	sp_sockaddr_text(src, e->src_ip, sizeof(e->src_ip), &e->src_port);
	sp_sockaddr_text(dst, e->dst_ip, sizeof(e->dst_ip), &e->dst_port);
	e->transport = transport;
	e->mode = hp->opt.responsive ? SP_MODE_RESPONSIVE : SP_MODE_PASSIVE;
	sp_sip_fill_event(m, e);
	if (hp->opt.debug)
		print_event(e, transport);

	if (answer && sp_sip_is_request(m)) {
		if (reply_allowed(hp, src)) {
			struct sp_sip_replies out;
			struct sp_sip_reply_ctx ctx = {
				.src_ip = e->src_ip,
				.src_port = e->src_port,
				.transport = transport,
				.invite_answer = hp->opt.redirect_uri ? SP_SIP_ANSWER_302 : SP_SIP_ANSWER_404,
				.redirect_uri = hp->opt.redirect_uri,
				.server = "FPBX-16.0.33(18.13.0)",
				.realm = "asterisk",
			};
			sp_sip_respond(m, &ctx, &out);
			for (int i = 0; i < out.n; i++)
				reply(reply_ctx, out.buf[i], out.len[i]);
			if (out.n)
				atomic_fetch_add_explicit(&hp->ctr.replies, (uint64_t)out.n,
							  memory_order_relaxed);
		} else {
			atomic_fetch_add_explicit(&hp->ctr.replies_limited, 1, memory_order_relaxed);
		}
	}
	sp_sip_msg_free(m);

	if (batch)
		batch->handled++;
	else
		atomic_fetch_add_explicit(transport_counter(hp, transport), 1, memory_order_relaxed);
	sp_prepared *p = sp_event_prepare(e);
	if (batch && p) {
		batch->ev[batch->n++] = p;
		if (batch->n == SP_HONEYPOT_BATCH)
			sp_honeypot_flush(hp, batch);
		return;
	}
	/* never waits for the disk: a full queue (or no memory) drops and counts */
	if (!p || sp_writer_submit_prepared(hp->w, &p, 1) == 0)
		atomic_fetch_add_explicit(&hp->ctr.queue_full, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&hp->ctr.events, 1, memory_order_relaxed);
}
