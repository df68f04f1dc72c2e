/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
/*
 * libFuzzer target for dht/value.c: every DHT value is a stranger's bytes.
 * The input is one value; it is decoded as a record for 198.51.100.7, as
 * a record for number 441234, and as a feed batch for hour 491234, at a
 * fixed clock (so the seed values in tests/fuzz/dht_corpus stay valid).
 *
 * Beyond "no crash", it checks what the node relies on: an accepted value
 * is for the key asked, its records are in range, normalised and not
 * expired, and nothing is accepted without a verifying signature (a value
 * re-signed by nobody cannot pass: the reporter key must verify).
 */
#include "sp_error.h"
#include "value.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_S UINT64_C(1768435200) /* 2026-01-15T00:00:00Z */
#define HOUR (NOW_S / SP_DHT_FEED_PERIOD)

static void check_record(const struct sp_dht_record *r)
{
	char norm[SP_KEY_MAX];
	CHECK(r->kind == SP_KIND_IP || r->kind == SP_KIND_NUMBER);
	CHECK(memchr(r->key, '\0', sizeof(r->key)));
	if (r->kind == SP_KIND_IP)
		CHECK(sp_ip_normalize(r->key, norm, NULL) == 0 && strcmp(norm, r->key) == 0 &&
		      sp_ip_scope_is_shareable(sp_ip_scope(r->key)));
	else
		CHECK(sp_number_normalize(r->key, norm) == 0 && strcmp(norm, r->key) == 0);
	CHECK(r->first_s <= r->last_s && r->count > 0);
	CHECK(r->expires_s > NOW_S && r->expires_s <= r->last_s + SP_DHT_TTL_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sp_dht_value v;
	const struct sp_dht_expect want[] = {
		{ .type = SP_DHT_RECORD, .kind = SP_KIND_IP, .key = "198.51.100.7" },
		{ .type = SP_DHT_RECORD, .kind = SP_KIND_NUMBER, .key = "441234" },
		{ .type = SP_DHT_BATCH, .hour = HOUR },
	};
	/* each input twice: as a whole value, and as a bare body (what lies
	 * behind a valid signature, which the fuzzer cannot forge) */
	for (size_t w = 0; w < 2 * sizeof(want) / sizeof(want[0]); w++) {
		size_t dropped = 0, k = w % 3;
		int rc = w < 3 ? sp_dht_decode(data, size, &want[k], NOW_S, &v, &dropped)
			       : sp_dht_decode_body(data, size, &want[k], NOW_S, &v, &dropped);
		if (rc) {
			CHECK(v.n == 0);
			continue;
		}
		CHECK(size <= SP_DHT_VALUE_MAX);
		CHECK(v.type == want[k].type);
		CHECK(strlen(v.reporter_id) == 64);
		if (v.type == SP_DHT_RECORD) {
			CHECK(v.n == 1 && v.rec[0].kind == want[k].kind &&
			      strcmp(v.rec[0].key, want[k].key) == 0);
			CHECK(v.n_uas <= SP_AGG_MAX_UAS);
		} else {
			CHECK(v.hour == HOUR && v.n >= 1 && v.n <= SP_DHT_BATCH_MAX);
		}
		for (size_t i = 0; i < v.n; i++) {
			check_record(&v.rec[i]);
			sp_agg a;
			sp_dht_record_to_agg(&v, i, &a);
			CHECK(a.n_reports == 1 && strcmp(a.reports[0].reporter, v.reporter_id) == 0);
		}
	}
	return 0;
}
