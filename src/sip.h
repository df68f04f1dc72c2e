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
 * libosip2 on first use (thread-safe). buf need not be NUL-terminated and is
 * not kept. libosip2 parses the start line and the headers the node reads:
 * To, User-Agent and Content-Length for the event, and Via, From, Call-ID
 * and CSeq for a reply (long and compact forms); every other header must
 * have a name and a colon and stays in the raw message only. Returns 0,
 * SP_EPARSE (malformed, a NUL in the start line or headers, a body shorter
 * than its Content-Length), SP_ETOOBIG (len above SP_SIP_MAX_MESSAGE, or
 * more than 256 separators -- line ends, ',', ';', '&' -- in the headers
 * libosip2 is given, which it handles in quadratic time) or -ENOMEM. Bodies
 * are never parsed. Free *out with sp_sip_msg_free(). */
int sp_sip_parse(const char *buf, size_t len, sp_sip_msg **out);

/* The same, with only the event's headers parsed: about a fifth of the
 * cost of sp_sip_parse() for a flood INVITE. sp_sip_respond() makes no
 * reply to such a message. */
int sp_sip_parse_event(const char *buf, size_t len, sp_sip_msg **out);
void sp_sip_msg_free(sp_sip_msg *m);

/* True for requests, false for responses (we record both; reply to neither
 * response). */
bool sp_sip_is_request(const sp_sip_msg *m);

/* Copy what the event needs: method (requests; responses get "" ), the
 * Request-URI user, the To user (the called number) and the User-Agent,
 * each truncated to its field (never inside a UTF-8 sequence). %XX escapes
 * in the user parts are decoded (a decoded %00 ends the user); for tel:
 * URIs the user is the number without its parameters. Control characters
 * become '?' (tab a space), so fields are safe for one-line logs. Leaves
 * the other fields of ev alone. */
void sp_sip_fill_event(const sp_sip_msg *m, sp_event *ev);

/* Responsive mode. */
enum sp_sip_invite_answer { SP_SIP_ANSWER_404, SP_SIP_ANSWER_302 };

struct sp_sip_reply_ctx {
	const char *src_ip;   /* where the request came from: Via received= */
	uint16_t src_port;    /* Via rport= when the request asked for it */
	uint8_t transport;    /* one SP_TP_* bit */
	enum sp_sip_invite_answer invite_answer;
	const char *redirect_uri; /* Contact of the 302, e.g. "sip:voicemail@192.0.2.1";
				   * NULL or not a sip:/sips:/tel: URI: 404 instead */
	const char *server;   /* Server header value; NULL: none */
	const char *realm;    /* REGISTER challenge realm; NULL or with '"': "sip" */
};

/* Up to two replies, in the order to send them (INVITE: 100 Trying, then
 * 404 or 302). */
struct sp_sip_replies {
	int n;
	size_t len[2];
	char buf[2][SP_SIP_MAX_REPLY];
};

/* Fill out with the replies a real server would send to this request:
 * OPTIONS 200 (with Allow and Accept), REGISTER 401 with a digest
 * challenge, INVITE 100 then 404 (or 302 to redirect_uri; 481 if the To
 * already has a tag: a dialog we never had), BYE 481, CANCEL 481, ACK and
 * responses none, any other method 405 with Allow. Every reply matches the
 * request's transaction: all Via headers copied in order, the top one with
 * received=src_ip (replacing any) and rport=src_port if it asked with a
 * bare rport, From, To (on all but the 100, with a tag added if absent:
 * the same for a retransmission), Call-ID, CSeq; Content-Length: 0.
 * No reply (out->n = 0) without Via, From, To, Call-ID or CSeq, when the
 * CSeq method is not the request's, for a version other than SIP/2.0, or
 * when a reply would be larger than SP_SIP_MAX_REPLY or than 3 times the
 * request plus 512 bytes (no amplification), or would not parse back.
 * out->buf[i] is NUL-terminated when len[i] < SP_SIP_MAX_REPLY. */
void sp_sip_respond(const sp_sip_msg *m, const struct sp_sip_reply_ctx *ctx,
		    struct sp_sip_replies *out);

#endif
