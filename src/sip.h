/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * SIP messages: parsing with libosip2 into an event, and the replies of
 * responsive mode. No sockets here: the listeners (listen_*.c) hand in the
 * bytes of one message and send back what sp_sip_respond() writes.
 *
 * Everything here takes hostile input: lengths are capped, nothing from the
 * message is used as a format string, and a message that does not parse is
 * an SP_EPARSE, never a crash.
 */
#ifndef SP_SIP_H
#define SP_SIP_H

#include "sp_record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_SIP_MAX_MESSAGE 65536 /* largest message parsed (a whole UDP datagram) */
#define SP_SIP_MAX_REPLY 4096    /* largest reply written */

typedef struct sp_sip_msg sp_sip_msg;

/* Parse one whole message (no trailing bytes of another). Initialises
 * libosip2 on first use (thread-safe). Returns 0, SP_EPARSE, SP_ETOOBIG or
 * -ENOMEM. */
int sp_sip_parse(const char *buf, size_t len, sp_sip_msg **out);
void sp_sip_msg_free(sp_sip_msg *m);

/* True for requests, false for responses (we record both; reply to neither
 * response). */
bool sp_sip_is_request(const sp_sip_msg *m);

/* Copy what the event needs: method (requests; responses get "" ), the
 * Request-URI user, the To user (the called number) and the User-Agent,
 * each truncated to its field. %XX escapes in the user parts are decoded.
 * Leaves the other fields of ev alone. */
void sp_sip_fill_event(const sp_sip_msg *m, sp_event *ev);

/* Responsive mode. */
enum sp_sip_invite_answer { SP_SIP_ANSWER_404, SP_SIP_ANSWER_302 };

struct sp_sip_reply_ctx {
	const char *src_ip;   /* where the request came from: Via received= */
	uint16_t src_port;    /* Via rport= when the request asked for it */
	uint8_t transport;    /* one SP_TP_* bit */
	enum sp_sip_invite_answer invite_answer;
	const char *redirect_uri; /* Contact of the 302, e.g. "sip:voicemail@192.0.2.1" */
	const char *server;   /* Server header value */
	const char *realm;    /* REGISTER challenge realm */
};

/* Up to two replies, in the order to send them (INVITE: 100 Trying, then
 * 404 or 302). */
struct sp_sip_replies {
	int n;
	size_t len[2];
	char buf[2][SP_SIP_MAX_REPLY];
};

/* Fill out with the replies a real server would send to this request:
 * OPTIONS 200 (with Allow), REGISTER 401 with a digest challenge, INVITE
 * 100 then 404 (or 302 to redirect_uri), BYE 481, CANCEL 481, ACK and
 * responses none, any other method 405... Every reply matches the
 * request's transaction: all Via headers copied, the top one with
 * received= and (if asked) rport=, From, To with a tag added if absent,
 * Call-ID, CSeq; Content-Length: 0. Replies larger than
 * SP_SIP_MAX_REPLY (e.g. absurd Via lists) are not sent: out->n = 0. */
void sp_sip_respond(const sp_sip_msg *m, const struct sp_sip_reply_ctx *ctx,
		    struct sp_sip_replies *out);

#endif
