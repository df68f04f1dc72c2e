/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * Parse cost per message, one thread: what the honeypot does with each
 * datagram (sp_sip_parse_event + sp_sip_fill_event in passive mode,
 * sp_sip_parse + fill in responsive mode), and, for comparison,
 * libosip2's osip_message_parse given the whole message with its own
 * allocations (every header parsed, the body copied).
 *
 *   build-bench/tools/bench/bench_parse [--runs N] [FILE...]
 *
 * Without files: a flood INVITE of about 1 KB (15 headers and SDP, like
 * tools/bench/sip_flood's). Prints microseconds per message, the best of
 * 5 rounds of N (default 200,000) parses.
 */
#include "sip.h"

#include <osipparser2/osip_parser.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char flood_invite[] =
	"INVITE sip:00972592778143@203.0.113.9 SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bK1234567890abcdef;rport\r\n"
	"Max-Forwards: 70\r\n"
	"From: \"1001\" <sip:1001@203.0.113.9>;tag=8a7b6c5d4e3f\r\n"
	"To: <sip:00972592778143@203.0.113.9>\r\n"
	"Call-ID: 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d\r\n"
	"CSeq: 1 INVITE\r\n"
	"Contact: <sip:1001@198.51.100.7:5070;transport=udp>\r\n"
	"User-Agent: friendly-scanner\r\n"
	"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, "
	"UPDATE\r\n"
	"Supported: replaces, timer, 100rel\r\n"
	"P-Asserted-Identity: <sip:1001@198.51.100.7>\r\n"
	"Session-Expires: 1800\r\n"
	"Min-SE: 90\r\n"
	"Accept: application/sdp, application/dtmf-relay\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 339\r\n"
	"\r\n"
	"v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
	"m=audio 4000 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
	"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
	"a=x-padding:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";

enum mode { EVENT, REPLY, OSIP_WHOLE };

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Microseconds per parse, best of 5 rounds; -1 if the message does not
 * parse that way. */
static double measure(const char *msg, size_t len, enum mode mode, long runs)
{
	static sp_event ev;
	double best = -1;
	for (int round = 0; round < 5; round++) {
		double t0 = now_s();
		for (long i = 0; i < runs; i++) {
			if (mode == OSIP_WHOLE) {
				osip_message_t *o = NULL;
				if (osip_message_init(&o) != 0)
					return -1;
				int rc = osip_message_parse(o, msg, len);
				osip_message_free(o);
				if (rc != 0)
					return -1;
				continue;
			}
			sp_sip_msg *m = NULL;
			int rc = mode == EVENT ? sp_sip_parse_event(msg, len, &m)
					       : sp_sip_parse(msg, len, &m);
			if (rc != 0)
				return -1;
			sp_sip_fill_event(m, &ev);
			sp_sip_msg_free(m);
		}
		double us = (now_s() - t0) * 1e6 / (double)runs;
		if (best < 0 || us < best)
			best = us;
	}
	return best;
}

static void report(const char *name, const char *msg, size_t len, long runs)
{
	static const char *const label[] = {"event (passive)", "event and reply headers (-r)",
					    "libosip2 alone, whole message"};
	printf("%s: %zu bytes\n", name, len);
	for (int m = EVENT; m <= OSIP_WHOLE; m++) {
		double us = measure(msg, len, (enum mode)m, runs);
		if (us < 0)
			printf("  %-30s does not parse\n", label[m]);
		else
			printf("  %-30s %7.2f us\n", label[m], us);
	}
}

int main(int argc, char **argv)
{
	long runs = 200000;
	int first = 1;
	if (argc > 2 && strcmp(argv[1], "--runs") == 0) {
		runs = strtol(argv[2], NULL, 10);
		if (runs <= 0) {
			fprintf(stderr, "bench_parse: --runs wants a positive number\n");
			return 2;
		}
		first = 3;
	}
	/* the first parse initialises libosip2 */
	sp_sip_msg *m = NULL;
	if (sp_sip_parse(flood_invite, sizeof(flood_invite) - 1, &m) != 0) {
		fprintf(stderr, "bench_parse: the built-in INVITE does not parse\n");
		return 1;
	}
	sp_sip_msg_free(m);
	if (first >= argc) {
		report("flood INVITE (built in)", flood_invite, sizeof(flood_invite) - 1, runs);
		return 0;
	}
	for (int i = first; i < argc; i++) {
		static char buf[SP_SIP_MAX_MESSAGE];
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		size_t len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		report(argv[i], buf, len, runs / 10);
	}
	return 0;
}
