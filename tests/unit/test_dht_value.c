/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/* The signing identity and the DHT value codec: every hostile value the
 * issue names is refused with its own reason. */
#include "identity.h"
#include "sp_error.h"
#include "sp_time.h"
#include "value.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[64];
static sp_identity *id, *other;
static uint64_t now_s;

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/sp_dht_value.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char d2[80];
	snprintf(d2, sizeof(d2), "%s/other", dir);
	mkdir(d2, 0700);
	now_s = sp_now_ns() / SP_NS_PER_SEC;
	if (sp_identity_open(&id, dir, true, NULL) || sp_identity_open(&other, d2, true, NULL))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	sp_identity_free(id);
	sp_identity_free(other);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct sp_dht_record rec_ip(const char *key)
{
	struct sp_dht_record r = { .kind = SP_KIND_IP };
	snprintf(r.key, sizeof(r.key), "%s", key);
	r.first_s = now_s - 100;
	r.last_s = now_s - 10;
	r.count = 7;
	r.methods = 1;
	r.transports = 1;
	r.expires_s = now_s + 7 * 86400;
	return r;
}

static void test_identity_stable(void **state)
{
	sp_identity *again;
	bool created = true;
	char path[128];
	struct stat sb;
	assert_int_equal(sp_identity_open(&again, dir, true, &created), 0);
	assert_false(created);
	assert_string_equal(sp_identity_keyid(again), sp_identity_keyid(id));
	assert_int_equal(strlen(sp_identity_keyid(id)), 64);
	sp_identity_free(again);
	snprintf(path, sizeof(path), "%s/%s", dir, SP_IDENTITY_FILE);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* readable by others: refused, not used */
	chmod(path, 0644);
	assert_int_equal(sp_identity_open(&again, dir, true, NULL), SP_EKEYPERM);
	chmod(path, 0600);
	/* missing and not to be created */
	char empty[96];
	snprintf(empty, sizeof(empty), "%s/none", dir);
	mkdir(empty, 0700);
	assert_int_equal(sp_identity_open(&again, empty, false, NULL), SP_ENOTFOUND);
	/* not a key */
	snprintf(path, sizeof(path), "%s/%s", empty, SP_IDENTITY_FILE);
	FILE *f = fopen(path, "w");
	fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	chmod(path, 0600);
	assert_int_equal(sp_identity_open(&again, empty, true, NULL), SP_EPARSE);
}

static void test_keyid(void **state)
{
	uint8_t pub[SP_PUBKEY_LEN];
	char hex[SP_KEYID_LEN];
	assert_int_equal(sp_keyid_parse(sp_identity_keyid(id), pub), 0);
	sp_keyid_format(pub, hex);
	assert_string_equal(hex, sp_identity_keyid(id));
	assert_int_equal(sp_keyid_parse("abc", pub), SP_EPARSE);
	char bad[SP_KEYID_LEN];
	memset(bad, 'g', 64);
	bad[64] = 0;
	assert_int_equal(sp_keyid_parse(bad, pub), SP_EPARSE);
}

static void test_record_roundtrip(void **state)
{
	struct sp_dht_record r = rec_ip("203.0.113.5");
	sp_agg uas;
	sp_agg_init(&uas, SP_KIND_IP, "203.0.113.5");
	sp_agg_add_ua(&uas, "friendly-scanner");
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(sp_dht_encode_record(id, &r, &uas, now_s, &sb), 0);
	assert_true(sb.size < 400);

	struct sp_dht_value *v = malloc(sizeof(*v));
	struct sp_dht_expect want = { .type = SP_DHT_RECORD, .kind = SP_KIND_IP, .key = "203.0.113.5" };
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &want, now_s, v, NULL), 0);
	assert_int_equal(v->n, 1);
	assert_string_equal(v->reporter_id, sp_identity_keyid(id));
	assert_string_equal(v->rec[0].key, "203.0.113.5");
	assert_int_equal(v->rec[0].count, 7);
	assert_int_equal(v->rec[0].last_s, now_s - 10);
	assert_int_equal(v->n_uas, 1);
	assert_string_equal(v->uas[0], "friendly-scanner");

	sp_agg a;
	sp_dht_record_to_agg(v, 0, &a);
	assert_int_equal(a.n_reports, 1);
	assert_string_equal(a.reports[0].reporter, sp_identity_keyid(id));
	assert_int_equal(a.reports[0].expires_ns, r.expires_s * SP_NS_PER_SEC);

	/* the same value copied under another key verifies but is refused */
	struct sp_dht_expect elsewhere = { .type = SP_DHT_RECORD, .kind = SP_KIND_IP,
					   .key = "203.0.113.6" };
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &elsewhere, now_s, v, NULL), SP_EKEYMISMATCH);
	struct sp_dht_expect feed = { .type = SP_DHT_BATCH, .hour = now_s / 3600 };
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &feed, now_s, v, NULL), SP_EKEYMISMATCH);

	/* expired by the time it is read */
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &want, r.expires_s + 1, v, NULL),
			 SP_EEXPIRED);

	/* any byte of the body changed: the signature fails (or it no longer
	 * parses); never accepted */
	for (size_t i = 3; i < sb.size - SP_SIG_LEN - 2; i++) {
		char *copy = malloc(sb.size);
		memcpy(copy, sb.data, sb.size);
		copy[i] ^= 0x01;
		int rc = sp_dht_decode(copy, sb.size, &want, now_s, v, NULL);
		assert_true(rc == SP_EBADSIG || rc == SP_EPARSE);
		free(copy);
	}
	/* the signature changed */
	sb.data[sb.size - 1] ^= 0x80;
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &want, now_s, v, NULL), SP_EBADSIG);
	msgpack_sbuffer_destroy(&sb);
	free(v);
}

/* A value framed and signed by hand, for bodies our encoder never makes. */
static void sign_body(const sp_identity *signer, const msgpack_sbuffer *body, int outer_version,
		      bool with_sig, msgpack_sbuffer *out)
{
	static const char domain[] = "sentrypeer:v1:sig";
	uint8_t *msg = malloc(sizeof(domain) + body->size), sig[SP_SIG_LEN];
	memcpy(msg, domain, sizeof(domain));
	memcpy(msg + sizeof(domain), body->data, body->size);
	assert_int_equal(sp_identity_sign(signer, msg, sizeof(domain) + body->size, sig), 0);
	free(msg);
	msgpack_packer pk;
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, with_sig ? 3 : 2);
	msgpack_pack_uint8(&pk, (uint8_t)outer_version);
	msgpack_pack_bin_with_body(&pk, body->data, body->size);
	if (with_sig)
		msgpack_pack_bin_with_body(&pk, sig, SP_SIG_LEN);
}

static void pack_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

/* A record body with a chosen version, key and reporter. */
static void record_body(msgpack_sbuffer *b, int version, const char *key, const uint8_t *reporter,
			uint64_t expires)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, b, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 13);
	msgpack_pack_uint8(&pk, 0); msgpack_pack_uint8(&pk, (uint8_t)version);
	msgpack_pack_uint8(&pk, 1); msgpack_pack_uint8(&pk, SP_DHT_RECORD);
	msgpack_pack_uint8(&pk, 2); msgpack_pack_bin_with_body(&pk, reporter, SP_PUBKEY_LEN);
	msgpack_pack_uint8(&pk, 3); msgpack_pack_uint64(&pk, now_s);
	msgpack_pack_uint8(&pk, 4); msgpack_pack_uint8(&pk, SP_KIND_NUMBER);
	msgpack_pack_uint8(&pk, 5); pack_s(&pk, key);
	msgpack_pack_uint8(&pk, 6); msgpack_pack_uint64(&pk, now_s - 5);
	msgpack_pack_uint8(&pk, 7); msgpack_pack_uint64(&pk, now_s - 1);
	msgpack_pack_uint8(&pk, 8); msgpack_pack_uint64(&pk, 3);
	msgpack_pack_uint8(&pk, 9); msgpack_pack_uint32(&pk, 1);
	msgpack_pack_uint8(&pk, 10); msgpack_pack_uint8(&pk, 1);
	msgpack_pack_uint8(&pk, 11); msgpack_pack_array(&pk, 0);
	msgpack_pack_uint8(&pk, 12); msgpack_pack_uint64(&pk, expires);
}

static void test_hostile_records(void **state)
{
	struct sp_dht_value *v = malloc(sizeof(*v));
	struct sp_dht_expect want = { .type = SP_DHT_RECORD, .kind = SP_KIND_NUMBER, .key = "441234" };
	msgpack_sbuffer b, out;
	const uint8_t *pub = sp_identity_pubkey(id);
	uint64_t exp = now_s + 3600;

	/* well-formed by hand: accepted (so the cases below fail for their reason) */
	msgpack_sbuffer_init(&b); msgpack_sbuffer_init(&out);
	record_body(&b, 1, "441234", pub, exp);
	sign_body(id, &b, 1, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), 0);
	msgpack_sbuffer_clear(&out);
	/* unsigned */
	sign_body(id, &b, 1, false, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), SP_EBADSIG);
	msgpack_sbuffer_clear(&out);
	/* signed by someone else while naming us as reporter */
	sign_body(other, &b, 1, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), SP_EBADSIG);
	msgpack_sbuffer_clear(&out);
	/* another outer version */
	sign_body(id, &b, 2, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), SP_ESCHEMA);
	msgpack_sbuffer_destroy(&b); msgpack_sbuffer_destroy(&out);

	/* another body version, properly signed */
	msgpack_sbuffer_init(&b); msgpack_sbuffer_init(&out);
	record_body(&b, 2, "441234", pub, exp);
	sign_body(id, &b, 1, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), SP_ESCHEMA);
	msgpack_sbuffer_destroy(&b); msgpack_sbuffer_destroy(&out);

	/* a key that is not normalised ("+441234" is stored as 441234) */
	struct sp_dht_expect plus = { .type = SP_DHT_RECORD, .kind = SP_KIND_NUMBER, .key = "+441234" };
	msgpack_sbuffer_init(&b); msgpack_sbuffer_init(&out);
	record_body(&b, 1, "+441234", pub, exp);
	sign_body(id, &b, 1, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &plus, now_s, v, NULL), SP_EPARSE);
	msgpack_sbuffer_destroy(&b); msgpack_sbuffer_destroy(&out);

	/* an expiry beyond what any reporter may claim */
	msgpack_sbuffer_init(&b); msgpack_sbuffer_init(&out);
	record_body(&b, 1, "441234", pub, now_s + SP_DHT_TTL_MAX + 86400);
	sign_body(id, &b, 1, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), SP_EPARSE);
	msgpack_sbuffer_destroy(&b); msgpack_sbuffer_destroy(&out);

	/* already expired */
	msgpack_sbuffer_init(&b); msgpack_sbuffer_init(&out);
	record_body(&b, 1, "441234", pub, now_s - 1);
	sign_body(id, &b, 1, true, &out);
	assert_int_equal(sp_dht_decode(out.data, out.size, &want, now_s, v, NULL), SP_EPARSE);
	msgpack_sbuffer_destroy(&b); msgpack_sbuffer_destroy(&out);

	/* a private address: no peer may list the LAN */
	struct sp_dht_record priv = rec_ip("10.1.2.3");
	struct sp_dht_expect wp = { .type = SP_DHT_RECORD, .kind = SP_KIND_IP, .key = "10.1.2.3" };
	msgpack_sbuffer_init(&out);
	assert_int_equal(sp_dht_encode_record(id, &priv, NULL, now_s, &out), 0);
	assert_int_equal(sp_dht_decode(out.data, out.size, &wp, now_s, v, NULL), SP_EPARSE);
	msgpack_sbuffer_destroy(&out);

	/* oversized, garbage, truncated, hostile headers */
	char *big = calloc(1, SP_DHT_VALUE_MAX + 1);
	assert_int_equal(sp_dht_decode(big, SP_DHT_VALUE_MAX + 1, &want, now_s, v, NULL), SP_ETOOBIG);
	free(big);
	const char *garbage[] = { "", "hello", "\x93\x01", "\xdd\xff\xff\xff\xff",
				  "\x93\x01\xc6\xff\xff\xff\xff", "\x93\x01\xc4\x01\x80\xc4\x40" };
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		size_t len = strlen(garbage[i]) + (i == 2 ? 0 : 0);
		int rc = sp_dht_decode(garbage[i], len, &want, now_s, v, NULL);
		assert_true(rc == SP_EPARSE || rc == SP_EBADSIG);
	}
	/* a real value cut short anywhere */
	struct sp_dht_record r = rec_ip("203.0.113.9");
	struct sp_dht_expect w9 = { .type = SP_DHT_RECORD, .kind = SP_KIND_IP, .key = "203.0.113.9" };
	msgpack_sbuffer_init(&out);
	assert_int_equal(sp_dht_encode_record(id, &r, NULL, now_s, &out), 0);
	for (size_t cut = 0; cut < out.size; cut++)
		assert_int_not_equal(sp_dht_decode(out.data, cut, &w9, now_s, v, NULL), 0);
	assert_int_equal(sp_dht_decode(out.data, out.size, &w9, now_s, v, NULL), 0);
	msgpack_sbuffer_destroy(&out);
	free(v);
}

static void test_batch(void **state)
{
	enum { N = 300 };
	struct sp_dht_record *recs = calloc(N, sizeof(*recs));
	struct sp_dht_value *v = malloc(sizeof(*v));
	for (int i = 0; i < N; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i % 250);
		recs[i] = rec_ip(ip);
		if (i >= 250) {
			recs[i].kind = SP_KIND_NUMBER;
			snprintf(recs[i].key, sizeof(recs[i].key), "4420%07d", i);
		}
	}
	recs[3].expires_s = now_s - 1; /* one stale record in an otherwise good batch */
	recs[3].last_s = now_s - 100;
	recs[3].first_s = now_s - 200;
	size_t n = sp_dht_batch_fit(recs, N);
	assert_true(n > 50 && n < N);
	uint64_t hour = now_s / SP_DHT_FEED_PERIOD;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(sp_dht_encode_batch(id, hour, recs, n, now_s, &sb), 0);
	assert_true(sb.size <= SP_DHT_BATCH_BYTES);
	struct sp_dht_expect want = { .type = SP_DHT_BATCH, .hour = hour };
	size_t dropped = 0;
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &want, now_s, v, &dropped), 0);
	assert_int_equal(dropped, 1);
	assert_int_equal(v->n, n - 1);
	assert_string_equal(v->rec[0].key, "198.51.100.0");
	assert_string_equal(v->rec[3].key, "198.51.100.4");
	/* under another hour's key */
	struct sp_dht_expect other_hour = { .type = SP_DHT_BATCH, .hour = hour - 1 };
	assert_int_equal(sp_dht_decode(sb.data, sb.size, &other_hour, now_s, v, NULL), SP_EKEYMISMATCH);
	msgpack_sbuffer_destroy(&sb);
	/* too many records for one batch */
	msgpack_sbuffer_init(&sb);
	assert_int_equal(sp_dht_encode_batch(id, hour, recs, N, now_s, &sb), SP_ETOOBIG);
	msgpack_sbuffer_destroy(&sb);
	free(recs);
	free(v);
}

static void test_names(void **state)
{
	char buf[SP_DHT_NAME_MAX];
	assert_string_equal(sp_dht_record_name(SP_KIND_IP, "203.0.113.5", buf),
			    "sentrypeer:v1:ip:203.0.113.5");
	assert_string_equal(sp_dht_record_name(SP_KIND_NUMBER, "441234", buf),
			    "sentrypeer:v1:number:441234");
	assert_string_equal(sp_dht_feed_name(491234, buf), "sentrypeer:v1:feed:491234");

	sp_agg a;
	struct sp_dht_record r;
	sp_agg_init(&a, SP_KIND_IP, "203.0.113.5");
	sp_report *peer = sp_agg_report(&a, "ab", true);
	peer->count = 4;
	peer->last_ns = 1;
	assert_int_equal(sp_dht_record_from_agg(&a, 3600, &r), SP_ENOTFOUND); /* no local report */
	sp_report *mine = sp_agg_report(&a, "", true);
	mine->first_ns = 10 * SP_NS_PER_SEC;
	mine->last_ns = 20 * SP_NS_PER_SEC;
	mine->count = 2;
	assert_int_equal(sp_dht_record_from_agg(&a, 3600, &r), 0);
	assert_int_equal(r.count, 2); /* only what this node saw */
	assert_int_equal(r.expires_s, 20 + 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_stable),
		cmocka_unit_test(test_keyid),
		cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_hostile_records),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
