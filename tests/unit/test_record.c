/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <lz4.h>

#include "sp_error.h"
#include "sp_msgpack.h"
#include "sp_raw.h"
#include "sp_record.h"
#include "sp_time.h"

#define SEC SP_NS_PER_SEC
#define DAY (86400 * SEC)

static sp_event *sample_event(void)
{
	const char raw[] = "INVITE sip:441234@198.51.100.1 SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n\r\n";
	sp_event *e = sp_event_new(raw, sizeof(raw) - 1, 8192);
	assert_non_null(e);
	strcpy(e->src_ip, "203.0.113.5");
	strcpy(e->dst_ip, "198.51.100.1");
	e->src_port = 5071;
	e->dst_port = 5060;
	e->transport = SP_TP_UDP;
	e->mode = SP_MODE_RESPONSIVE;
	strcpy(e->method, "INVITE");
	strcpy(e->ruri_user, "00441234");
	strcpy(e->to_user, "+441234");
	strcpy(e->user_agent, "friendly-scanner");
	return e;
}

static void test_event_roundtrip(void **state)
{
	sp_event *e = sample_event(), d;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(sp_event_encode(e, &sb), 0);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_true(d.ts_ns == e->ts_ns);
	assert_memory_equal(d.id, e->id, 16);
	assert_string_equal(d.src_ip, e->src_ip);
	assert_string_equal(d.dst_ip, e->dst_ip);
	assert_int_equal(d.src_port, 5071);
	assert_int_equal(d.dst_port, 5060);
	assert_int_equal(d.transport, SP_TP_UDP);
	assert_int_equal(d.mode, SP_MODE_RESPONSIVE);
	assert_string_equal(d.method, "INVITE");
	assert_string_equal(d.ruri_user, "00441234");
	assert_string_equal(d.to_user, "+441234");
	assert_string_equal(d.user_agent, "friendly-scanner");
	assert_string_equal(d.origin, "");
	assert_int_equal(d.raw_len, e->raw_len);
	assert_memory_equal(d.raw, e->raw, e->raw_len);
	/* the time sits at a fixed place, fixed-size, whatever its value */
	for (uint64_t ts = 1; ts; ts = ts < UINT64_MAX / 1000 ? ts * 1000 : 0) {
		e->ts_ns = ts;
		sb.size = 0;
		sp_event_encode(e, &sb);
		const uint8_t *b = (const uint8_t *)sb.data;
		uint64_t v = 0;
		for (int i = 0; i < 8; i++)
			v = v << 8 | b[SP_EVENT_TS_OFFSET + i];
		assert_int_equal(b[SP_EVENT_TS_OFFSET - 1], 0xcf);
		assert_true(v == ts);
		assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
		assert_true(d.ts_ns == ts);
	}
	msgpack_sbuffer_destroy(&sb);
	free(e);
}

static void test_event_raw_cap(void **state)
{
	char big[70000];
	memset(big, 'A', sizeof(big));
	sp_event *e = sp_event_new(big, sizeof(big), 1024);
	assert_int_equal(e->raw_len, 1024);
	assert_int_equal(e->raw[1024], '\0');
	free(e);
	/* truncating copies never overflow a field */
	char f[8];
	sp_field_set(f, sizeof(f), "0123456789");
	assert_string_equal(f, "0123456");
}

/* A scanner's INVITE, as a flood sends it: stored compressed. */
static const char invite[] =
	"INVITE sip:0046812345678@198.51.100.7 SIP/2.0\r\n"
	"Via: SIP/2.0/UDP 203.0.113.5:5071;branch=z9hG4bK-2e4f0a1c77;rport\r\n"
	"Max-Forwards: 70\r\n"
	"To: <sip:0046812345678@198.51.100.7>\r\n"
	"From: \"100\" <sip:100@198.51.100.7>;tag=3a5f9c01\r\n"
	"Call-ID: 8d1b7e2f4c6a9b3d@203.0.113.5\r\n"
	"CSeq: 1 INVITE\r\n"
	"Contact: <sip:100@203.0.113.5:5071>\r\n"
	"User-Agent: friendly-scanner\r\n"
	"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n"
	"Content-Type: application/sdp\r\n"
	"Content-Length: 214\r\n\r\n"
	"v=0\r\no=- 1817 1817 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n"
	"m=audio 17390 RTP/AVP 0 8 18 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";

/* {0: 1, 15: bin} with the bin given: a stored event with only a
 * compressed message */
static void pack_raw_z(msgpack_sbuffer *sb, const void *z, size_t len)
{
	msgpack_packer pk;
	sb->size = 0;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 15);
	msgpack_pack_bin_with_body(&pk, z, len);
}

static void test_event_raw_compressed(void **state)
{
	sp_event *e = sample_event(), d;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);

	/* a real message: stored in well under half its size, read back whole */
	sp_event *big = sp_event_new(invite, sizeof(invite) - 1, 8192);
	*big = *e;
	big->raw = invite;
	big->raw_len = sizeof(invite) - 1;
	assert_int_equal(sp_event_encode(big, &sb), 0);
	size_t with_msg = sb.size;
	sb.size = 0;
	big->raw_len = 0;
	sp_event_encode(big, &sb);
	size_t without = sb.size;
	assert_true(with_msg - without < (sizeof(invite) - 1) / 2);
	big->raw_len = sizeof(invite) - 1;
	sb.size = 0;
	sp_event_encode(big, &sb);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_int_equal(d.raw_len, sizeof(invite) - 1);
	assert_memory_equal(d.raw, invite, d.raw_len);
	assert_int_equal(d.raw[d.raw_len], '\0');
	assert_string_equal(d.user_agent, "friendly-scanner");

	/* store-compress no: stored as it is, and read the same */
	sp_raw_set_enabled(false);
	sb.size = 0;
	sp_event_encode(big, &sb);
	assert_true(sb.size > without + sizeof(invite) - 1);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_memory_equal(d.raw, invite, sizeof(invite) - 1);
	sp_raw_set_enabled(true);

	/* short or incompressible messages are stored as they are */
	char rnd[600];
	uint32_t x = 7;
	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (char)((x = x * 1103515245u + 12345u) >> 16);
	size_t zlen;
	assert_null(sp_raw_pack(rnd, sizeof(rnd), &zlen));
	assert_null(sp_raw_pack(invite, SP_RAW_MIN_COMPRESS - 1, &zlen));
	big->raw = rnd;
	big->raw_len = sizeof(rnd);
	sb.size = 0;
	sp_event_encode(big, &sb);
	assert_true(sb.size > without + sizeof(rnd));
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_int_equal(d.raw_len, sizeof(rnd));
	assert_memory_equal(d.raw, rnd, sizeof(rnd));

	/* hostile compressed messages: never read past their end; the message
	 * is left out and the event kept (its counts matter more) */
	const uint8_t *z = sp_raw_pack(invite, sizeof(invite) - 1, &zlen);
	assert_non_null(z);
	uint8_t bad[4096];
	memcpy(bad, z, zlen);
	pack_raw_z(&sb, bad, zlen);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0); /* as made */
	assert_memory_equal(d.raw, invite, d.raw_len);
	uint8_t out[SP_RAW_MAX];
	size_t got;
	for (size_t cut = 0; cut < zlen; cut++) { /* truncated */
		assert_int_not_equal(sp_raw_decompress(bad, cut, out, sizeof(out), &got), 0);
		pack_raw_z(&sb, bad, cut);
		assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
		assert_int_equal(d.raw_len, 0);
	}
	bad[0] = 2; /* a codec from a newer binary */
	assert_int_equal(sp_raw_decompress(bad, zlen, out, sizeof(out), &got), SP_ESCHEMA);
	pack_raw_z(&sb, bad, zlen);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_int_equal(d.raw_len, 0);
	bad[0] = SP_RAW_CODEC_LZ4_SIP1;
	memcpy(bad + zlen, bad + 4, zlen - 4); /* trailing bytes */
	assert_int_equal(sp_raw_decompress(bad, 2 * zlen - 4, out, sizeof(out), &got), SP_ECORRUPT);
	bad[3]--; /* a size one short of what the block holds */
	assert_int_equal(sp_raw_decompress(bad, zlen, out, sizeof(out), &got), SP_ECORRUPT);
	bad[3] += 2; /* one more */
	assert_int_equal(sp_raw_decompress(bad, zlen, out, sizeof(out), &got), SP_ECORRUPT);
	pack_raw_z(&sb, bad, zlen);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_int_equal(d.raw_len, 0);
	assert_string_equal(d.user_agent, ""); /* pack_raw_z's record has no other field */
	memset(bad + 1, 0xa5, sizeof(bad) - 1); /* garbage */
	assert_int_equal(sp_raw_decompress(bad, 200, out, sizeof(out), &got), SP_ECORRUPT);
	/* a block of zeros larger than any message, saying so or not */
	static char zeros[SP_RAW_MAX + 1];
	static char huge[4 + 1024];
	int hz = LZ4_compress_default(zeros, huge + 4, (int)sizeof(zeros), 1024);
	assert_true(hz > 0);
	huge[0] = SP_RAW_CODEC_LZ4_SIP1;
	huge[1] = 1, huge[2] = 0, huge[3] = 1; /* 65537 */
	assert_int_equal(sp_raw_decompress(huge, 4 + (size_t)hz, out, sizeof(out), &got), SP_ECORRUPT);
	huge[1] = 0, huge[2] = 4, huge[3] = 0; /* 1024 */
	assert_int_equal(sp_raw_decompress(huge, 4 + (size_t)hz, out, sizeof(out), &got), SP_ECORRUPT);
	pack_raw_z(&sb, huge, 4 + (size_t)hz);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), 0);
	assert_int_equal(d.raw_len, 0);
	/* not a bin */
	msgpack_packer pk;
	sb.size = 0;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 15);
	msgpack_pack_uint8(&pk, 7);
	assert_int_equal(sp_event_decode(sb.data, sb.size, &d), SP_ECORRUPT);

	msgpack_sbuffer_destroy(&sb);
	free(big);
	free(e);
}

static void test_uuid(void **state)
{
	uint8_t a[16], b[16], c[16];
	char s[SP_UUID_LEN];
	sp_uuid_new(a);
	sp_uuid_new(b);
	assert_memory_not_equal(a, b, 16);
	sp_uuid_format(a, s);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(s[14], '4'); /* version 4 */
	assert_int_equal(sp_uuid_parse(s, c), 0);
	assert_memory_equal(a, c, 16);
	assert_int_equal(sp_uuid_parse("not-a-uuid", c), SP_EPARSE);
}

static sp_agg *sample_agg(void)
{
	sp_agg *a = calloc(1, sizeof(*a));
	sp_agg_init(a, SP_KIND_NUMBER, "441234");
	a->methods = sp_method_bit("INVITE") | sp_method_bit("FOO");
	a->transports = SP_TP_UDP | SP_TP_TLS;
	sp_agg_add_ua(a, "friendly-scanner");
	sp_agg_add_ua(a, "friendly-scanner");
	sp_agg_add_ua(a, "sipvicious");
	sp_agg_add_raw(a, "+441234");
	sp_report *r = sp_agg_report(a, "", true);
	r->first_ns = 100 * SEC;
	r->last_ns = 200 * SEC;
	r->count = 7;
	r = sp_agg_report(a, "peer-a", true);
	r->first_ns = 150 * SEC;
	r->last_ns = 250 * SEC;
	r->count = 3;
	r->expires_ns = 250 * SEC + DAY;
	return a;
}

static void test_agg_roundtrip(void **state)
{
	sp_agg *a = sample_agg(), *d = calloc(1, sizeof(*d));
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(a->n_uas, 2);
	assert_int_equal(sp_agg_encode(a, &sb), 0);
	assert_int_equal(sp_agg_decode(sb.data, sb.size, d), 0);
	assert_int_equal(d->kind, SP_KIND_NUMBER);
	assert_string_equal(d->key, "441234");
	assert_int_equal(d->methods, a->methods);
	assert_int_equal(d->transports, a->transports);
	assert_int_equal(d->n_uas, 2);
	assert_string_equal(d->uas[1], "sipvicious");
	assert_int_equal(d->n_raws, 1);
	assert_int_equal(d->n_reports, 2);
	assert_string_equal(d->reports[0].reporter, "");
	assert_string_equal(d->reports[1].reporter, "peer-a");
	assert_true(d->reports[1].expires_ns == a->reports[1].expires_ns);
	assert_true(d->reports[0].count == 7);
	msgpack_sbuffer_destroy(&sb);
	free(a);
	free(d);
}

/* A map {0: version, 99: "future field"} with a kind and key. */
static void pack_agg_with(msgpack_sbuffer *sb, uint64_t version, bool extra)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, extra ? 4 : 3);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint64(&pk, version);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, SP_KIND_IP);
	msgpack_pack_uint8(&pk, 2);
	msgpack_pack_str_with_body(&pk, "203.0.113.5", 11);
	if (extra) {
		msgpack_pack_uint8(&pk, 99);
		msgpack_pack_str_with_body(&pk, "future", 6);
	}
}

static void test_versions(void **state)
{
	sp_agg *d = calloc(1, sizeof(*d));
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	pack_agg_with(&sb, SP_RECORD_VERSION, true); /* unknown keys are ignored */
	assert_int_equal(sp_agg_decode(sb.data, sb.size, d), 0);
	assert_string_equal(d->key, "203.0.113.5");
	sb.size = 0;
	pack_agg_with(&sb, SP_RECORD_VERSION + 1, false);
	assert_int_equal(sp_agg_decode(sb.data, sb.size, d), SP_ESCHEMA);
	sb.size = 0;
	pack_agg_with(&sb, 0, false);
	assert_int_equal(sp_agg_decode(sb.data, sb.size, d), SP_ECORRUPT);
	msgpack_sbuffer_destroy(&sb);
	free(d);
}

static void test_hostile_bytes(void **state)
{
	sp_agg *d = calloc(1, sizeof(*d));
	sp_event e;
	/* array32 claiming 4 billion elements: must fail fast, allocate nothing */
	const uint8_t huge_array[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x00 };
	const uint8_t huge_map[] = { 0xdf, 0x7f, 0xff, 0xff, 0xff };
	const uint8_t huge_str[] = { 0x81, 0x02, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a' };
	const uint8_t deep[] = { 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x01 };
	const uint8_t never[] = { 0xc1 };
	assert_int_equal(sp_msgpack_check(huge_array, sizeof(huge_array), 8), SP_EPARSE);
	assert_int_equal(sp_agg_decode(huge_array, sizeof(huge_array), d), SP_ECORRUPT);
	assert_int_equal(sp_agg_decode(huge_map, sizeof(huge_map), d), SP_ECORRUPT);
	assert_int_equal(sp_event_decode(huge_str, sizeof(huge_str), &e), SP_ECORRUPT);
	assert_int_equal(sp_msgpack_check(deep, sizeof(deep), 4), SP_EPARSE);
	assert_int_equal(sp_msgpack_check(deep, sizeof(deep), 8), 0);
	assert_int_equal(sp_msgpack_check(never, 1, 4), SP_EPARSE);
	assert_int_equal(sp_agg_decode("", 0, d), SP_ECORRUPT);

	/* every truncation of a valid record, and trailing garbage, is refused */
	sp_agg *a = sample_agg();
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	sp_agg_encode(a, &sb);
	for (size_t n = 0; n < sb.size; n++)
		assert_int_not_equal(sp_agg_decode(sb.data, n, d), 0);
	msgpack_sbuffer_write(&sb, "x", 1);
	assert_int_equal(sp_agg_decode(sb.data, sb.size, d), SP_ECORRUPT);

	/* flipped bytes: any answer but a crash (run under ASan) */
	sb.size--;
	uint64_t x = 0x9e3779b97f4a7c15u;
	char *copy = malloc(sb.size);
	for (int round = 0; round < 20000; round++) {
		memcpy(copy, sb.data, sb.size);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			copy[x % sb.size] = (char)(x >> 32);
		}
		int rc = sp_agg_decode(copy, sb.size, d);
		assert_true(rc == 0 || rc == SP_ECORRUPT || rc == SP_ESCHEMA);
		if (rc == 0)
			assert_true(d->n_reports <= SP_AGG_MAX_REPORTS && d->n_uas <= SP_AGG_MAX_UAS &&
				    strlen(d->key) < SP_KEY_MAX);
	}
	free(copy);
	msgpack_sbuffer_destroy(&sb);
	free(a);
	free(d);
}

static void test_merge_idempotent(void **state)
{
	sp_agg *a = sample_agg(), *b = sample_agg(), *m = calloc(1, sizeof(*m));
	sp_agg_init(m, SP_KIND_NUMBER, "441234");
	sp_agg_merge(m, a);
	sp_agg_merge(m, b); /* same data again: nothing changes */
	assert_int_equal(m->n_reports, 2);
	assert_true(m->reports[0].count == 7 && m->reports[1].count == 3);
	/* newer data moves last/count/expires up and first down */
	b->reports[0].first_ns = 50 * SEC;
	b->reports[0].last_ns = 300 * SEC;
	b->reports[0].count = 9;
	sp_agg_merge(m, b);
	assert_true(m->reports[0].first_ns == 50 * SEC && m->reports[0].last_ns == 300 * SEC);
	assert_true(m->reports[0].count == 9);
	free(a);
	free(b);
	free(m);
}

static void test_expiry_and_summary(void **state)
{
	sp_agg *a = sample_agg();
	struct sp_agg_summary s;
	uint64_t ret = 7 * DAY;
	/* this node's report lives until last + retention, the peer's until its own expiry */
	assert_true(sp_report_expiry(&a->reports[0], ret) == 200 * SEC + ret);
	assert_true(sp_report_expiry(&a->reports[1], ret) == 250 * SEC + DAY);
	assert_true(sp_agg_summarize(a, SP_SOURCE_ALL, 300 * SEC, ret, &s));
	assert_true(s.count == 10 && s.local && s.peers == 1 && s.local_count == 7);
	assert_true(s.first_ns == 100 * SEC && s.last_ns == 250 * SEC);
	assert_true(s.expires_ns == 200 * SEC + ret);
	assert_true(sp_agg_summarize(a, SP_SOURCE_PEERS, 300 * SEC, ret, &s));
	assert_true(s.count == 3 && !s.local);
	/* two days on the peer report has expired, ours has not */
	uint64_t later = 250 * SEC + 2 * DAY;
	assert_true(sp_agg_summarize(a, SP_SOURCE_ALL, later, ret, &s));
	assert_true(s.peers == 0 && s.count == 7);
	assert_false(sp_agg_summarize(a, SP_SOURCE_PEERS, later, ret, &s));
	assert_int_equal(sp_agg_expire(a, later, ret), 1);
	assert_int_equal(sp_agg_expire(a, 200 * SEC + ret, ret), 0);
	free(a);
}

static void test_report_cap_and_order(void **state)
{
	sp_agg *a = calloc(1, sizeof(*a));
	char id[16];
	sp_agg_init(a, SP_KIND_IP, "203.0.113.5");
	for (int i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "peer%d", i);
		sp_report *r = sp_agg_report(a, id, true);
		if (i < SP_AGG_MAX_REPORTS)
			assert_non_null(r);
		else
			assert_null(r);
	}
	a->n_reports = 2;
	sp_report *mine = sp_agg_report(a, "", true);
	assert_ptr_equal(mine, &a->reports[0]); /* this node sorts first */
	assert_string_equal(a->reports[1].reporter, "peer0");
	free(a);
}

static void test_methods_transports(void **state)
{
	char buf[256];
	uint32_t m;
	uint8_t t;
	m = sp_method_bit("INVITE") | sp_method_bit("OPTIONS") | sp_method_bit("XYZ");
	assert_string_equal(sp_methods_format(m, buf, sizeof(buf)), "INVITE,OPTIONS,OTHER");
	/* a short buffer keeps the names that fit whole */
	assert_string_equal(sp_methods_format(m, buf, 14), "INVITE");
	assert_string_equal(sp_methods_format(m, buf, 15), "INVITE,OPTIONS");
	assert_string_equal(sp_methods_format(m, buf, 7), "INVITE");
	assert_string_equal(sp_methods_format(m, buf, 6), "");
	assert_string_equal(sp_methods_format(0, buf, sizeof(buf)), "");
	assert_string_equal(sp_methods_format(UINT32_MAX, buf, sizeof(buf)),
			    "INVITE,ACK,BYE,CANCEL,REGISTER,OPTIONS,PRACK,SUBSCRIBE,NOTIFY,PUBLISH,"
			    "INFO,REFER,MESSAGE,UPDATE,OTHER");
	assert_int_equal(sp_methods_parse("INVITE,OPTIONS,OTHER", &m), 0);
	assert_int_equal(m, sp_method_bit("INVITE") | sp_method_bit("OPTIONS") | SP_METHOD_OTHER);
	assert_int_equal(sp_methods_parse("INVITE,BOGUS", &m), SP_EPARSE);
	assert_string_equal(sp_transports_format(SP_TP_UDP | SP_TP_TLS, buf, sizeof(buf)), "UDP,TLS");
	assert_int_equal(sp_transports_parse("udp,TCP", &t), 0);
	assert_int_equal(t, SP_TP_UDP | SP_TP_TCP);
	assert_string_equal(sp_transport_name(SP_TP_TCP), "TCP");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_roundtrip), cmocka_unit_test(test_event_raw_cap),
		cmocka_unit_test(test_event_raw_compressed),
		cmocka_unit_test(test_uuid), cmocka_unit_test(test_agg_roundtrip),
		cmocka_unit_test(test_versions), cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_merge_idempotent), cmocka_unit_test(test_expiry_and_summary),
		cmocka_unit_test(test_report_cap_and_order), cmocka_unit_test(test_methods_transports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
