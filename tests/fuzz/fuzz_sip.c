/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * libFuzzer target for src/sip.c: parse, fill an event, reply. The input is
 * one raw datagram, so corpus files are plain SIP messages.
 *
 * Beyond "no crash", it checks what the honeypot relies on and aborts when
 * one does not hold: fields are terminated within their size and carry no
 * control characters, replies are bounded (4 KiB, and 3x the request plus
 * 512 bytes), hold no NUL, end the header block, and parse back as a
 * response to the same request.
 */
#include "sip.h"
#include "sp_error.h"
#include "sp_record.h"

#include "fuzz.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_field(const char *f, size_t size, bool printable)
{
	size_t n = strnlen(f, size);
	CHECK(n < size);
	if (printable)
		for (size_t i = 0; i < n; i++)
			CHECK((unsigned char)f[i] >= 0x20 && f[i] != 0x7f);
}

static void check_replies(const struct sp_sip_replies *out, size_t size, bool request)
{
	CHECK(out->n >= 0 && out->n <= 2);
	if (!request)
		CHECK(out->n == 0);
	for (int i = 0; i < out->n; i++) {
		size_t len = out->len[i];
		CHECK(len > 12 && len <= SP_SIP_MAX_REPLY);
		CHECK(len <= 3 * size + 512);
		CHECK(memcmp(out->buf[i], "SIP/2.0 ", 8) == 0);
		CHECK(memcmp(out->buf[i] + len - 4, "\r\n\r\n", 4) == 0);
		CHECK(memchr(out->buf[i], '\0', len) == NULL);
		/* what we send must parse, as a response */
		sp_sip_msg *r = NULL;
		int rc = sp_sip_parse(out->buf[i], len, &r);
		CHECK(rc == 0 || rc == -ENOMEM);
		if (rc == 0) {
			CHECK(!sp_sip_is_request(r));
			sp_sip_msg_free(r);
		}
	}
	if (out->n == 2)
		CHECK(memcmp(out->buf[0], "SIP/2.0 100 ", 12) == 0);
}

/* The first line ends in " SIP/2.0" (a CR or LF follows). */
static bool sip20_request(const char *d, size_t n)
{
	const char *lf = memchr(d, '\n', n), *cr = memchr(d, '\r', n);
	const char *end = !lf ? cr : !cr ? lf : lf < cr ? lf : cr;
	return end && end - d >= 8 && memcmp(end - 8, " SIP/2.0", 8) == 0;
}

static void check_event(const sp_sip_msg *m, sp_event *ev)
{
	memset(ev, 0x5a, sizeof(*ev));
	sp_sip_fill_event(m, ev);
	check_field(ev->method, sizeof(ev->method), true);
	check_field(ev->ruri_user, sizeof(ev->ruri_user), true);
	check_field(ev->to_user, sizeof(ev->to_user), true);
	check_field(ev->user_agent, sizeof(ev->user_agent), true);
	if (!sp_sip_is_request(m))
		CHECK(ev->method[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_sip_replies out; /* 8 KiB: off the stack */
	struct sp_sip_reply_ctx ctx = {
		.src_ip = "203.0.113.5",
		.src_port = 5071,
		.transport = SP_TP_UDP,
		.invite_answer = SP_SIP_ANSWER_404,
		.server = "FPBX-13.0.197(13.23.1)",
		.realm = "asterisk",
	};
	sp_event ev, eev;

	/* passive mode's parse: only the event's headers */
	sp_sip_msg *em = NULL;
	int erc = sp_sip_parse_event((const char *)data, size, &em);
	CHECK(erc == 0 || erc == SP_EPARSE || erc == SP_ETOOBIG || erc == -ENOMEM);
	CHECK((erc == 0) == (em != NULL));
	if (em) {
		check_event(em, &eev);
		sp_sip_respond(em, &ctx, &out);
		CHECK(out.n == 0);
	}

	sp_sip_msg *m = NULL;
	int rc = sp_sip_parse((const char *)data, size, &m);

	CHECK(rc == 0 || rc == SP_EPARSE || rc == SP_ETOOBIG || rc == -ENOMEM);
	if (rc) {
		CHECK(m == NULL);
		sp_sip_msg_free(em);
		return 0;
	}
	CHECK(m != NULL);
	/* what parses whole parses for the event too, with the same event:
	 * for requests whose line ends in SIP/2.0 (osip's check of other
	 * versions depends on the bytes after the line) */
	if (sip20_request((const char *)data, size))
		CHECK(erc == 0 || erc == -ENOMEM);
	check_event(m, &ev);
	if (em) {
		CHECK(strcmp(ev.method, eev.method) == 0);
		CHECK(strcmp(ev.ruri_user, eev.ruri_user) == 0);
		CHECK(strcmp(ev.to_user, eev.to_user) == 0);
		CHECK(strcmp(ev.user_agent, eev.user_agent) == 0);
	}
	sp_sip_msg_free(em);

	sp_sip_respond(m, &ctx, &out);
	check_replies(&out, size, sp_sip_is_request(m));

	ctx.src_ip = "2001:db8::5";
	ctx.src_port = 65535;
	ctx.transport = SP_TP_TCP;
	ctx.invite_answer = SP_SIP_ANSWER_302;
	ctx.redirect_uri = "sip:voicemail@192.0.2.1";
	sp_sip_respond(m, &ctx, &out);
	check_replies(&out, size, sp_sip_is_request(m));

	sp_sip_msg_free(m);
	return 0;
}
