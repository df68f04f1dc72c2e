/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export.h"
#include "json_stream.h"
#include "render.h"
#include "sp_error.h"
#include "sp_time.h"

#define SEC SP_NS_PER_SEC
#define DAY (86400 * SEC)
#define NOW (UINT64_C(1795780800) * SEC) /* 2026-11-27T12:00:00Z */

static char dir[64];
static sp_store *st;

static void put(const char *kind, const char *key, const char *reporter, uint64_t last_ago,
		uint64_t expires_in, const char *ua)
{
	sp_agg a;
	char k[SP_KEY_MAX];
	if (strcmp(kind, "ip") == 0) {
		assert_int_equal(sp_ip_normalize(key, k, NULL), 0);
		sp_agg_init(&a, SP_KIND_IP, k);
	} else {
		assert_int_equal(sp_number_normalize(key, k), 0);
		sp_agg_init(&a, SP_KIND_NUMBER, k);
	}
	a.methods = sp_method_bit("INVITE");
	a.transports = SP_TP_UDP;
	if (ua)
		sp_agg_add_ua(&a, ua);
	sp_report *r = sp_agg_report(&a, reporter, true);
	r->last_ns = NOW - last_ago;
	r->first_ns = r->last_ns - 3600 * SEC;
	r->count = 3;
	r->expires_ns = *reporter ? NOW + expires_in : 0;
	sp_wtxn *tx;
	assert_int_equal(sp_wtxn_begin(st, &tx), 0);
	assert_int_equal(sp_wtxn_merge(tx, &a), 0);
	assert_int_equal(sp_wtxn_commit(tx), 0);
}

static int setup(void **state)
{
	char path[128];
	strcpy(dir, "/tmp/sp-export-test-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.mdb", dir);
	struct sp_store_options o = { .path = path, .map_size = 64 << 20, .retention_ns = 7 * DAY,
				      .set_retention = true, .sync = SP_SYNC_NONE };
	assert_int_equal(sp_store_open(&st, &o), 0);
	put("ip", "203.0.113.5", "", DAY, 0, "friendly-scanner");
	put("ip", "198.51.100.7", "", 3 * DAY, 0, "evil, \"quoted\" agent");
	put("ip", "2001:db8::9", "peer1", 600 * SEC, 2 * DAY, NULL);
	put("ip", "8.8.4.4", "peer2", DAY, 100 * 365 * DAY, NULL); /* far future: ipset cap */
	put("ip", "10.1.2.3", "", DAY, 0, NULL);                  /* private */
	put("ip", "127.0.0.1", "", DAY, 0, NULL);                 /* loopback */
	put("ip", "203.0.113.200", "", 8 * DAY, 0, NULL);         /* expired */
	put("number", "+441234", "", DAY, 0, NULL);
	put("number", "00046500729221", "peer1", 2 * DAY, DAY, NULL);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	sp_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static char *run(enum sp_export_format fmt, enum sp_export_kind kind, enum sp_source src,
		 struct sp_export_stats *stats)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct sp_export_options o = { .format = fmt, .kind = kind, .source = src, .now_ns = NOW };
	assert_int_equal(sp_export(st, &o, f, stats), 0);
	fclose(f);
	return buf;
}

static void test_txt(void **state)
{
	struct sp_export_stats s;
	char *out = run(SP_FMT_TXT, SP_EXPORT_IP, SP_SOURCE_ALL, &s);
	/* key order; private, loopback and expired left out */
	assert_string_equal(out, "198.51.100.7\n2001:db8::9\n203.0.113.5\n8.8.4.4\n");
	assert_true(s.written == 4 && s.skipped_private == 2);
	free(out);
	out = run(SP_FMT_TXT, SP_EXPORT_ALL, SP_SOURCE_LOCAL, &s);
	assert_string_equal(out, "198.51.100.7\n203.0.113.5\n441234\n");
	free(out);
	out = run(SP_FMT_TXT, SP_EXPORT_NUMBER, SP_SOURCE_PEERS, &s);
	assert_string_equal(out, "046500729221\n");
	free(out);

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct sp_export_options o = { .format = SP_FMT_TXT, .kind = SP_EXPORT_IP, .now_ns = NOW,
				       .include_private = true, .since_ns = NOW - 2 * DAY };
	assert_int_equal(sp_export(st, &o, f, NULL), 0);
	fclose(f);
	assert_string_equal(buf, "10.1.2.3\n127.0.0.1\n2001:db8::9\n203.0.113.5\n8.8.4.4\n");
	free(buf);
}

static void test_json_and_jsonl_round_trip(void **state)
{
	struct sp_export_stats s;
	char *out = run(SP_FMT_JSON, SP_EXPORT_ALL, SP_SOURCE_ALL, &s);
	json_error_t err;
	json_t *arr = json_loads(out, 0, &err);
	assert_non_null(arr);
	assert_int_equal(json_array_size(arr), 6);
	json_t *first = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(first, "key")), "198.51.100.7");
	assert_string_equal(json_string_value(json_object_get(first, "user_agents")->type == JSON_ARRAY
						      ? json_array_get(json_object_get(first, "user_agents"), 0)
						      : NULL),
			    "evil, \"quoted\" agent");
	json_decref(arr);
	free(out);

	out = run(SP_FMT_JSONL, SP_EXPORT_ALL, SP_SOURCE_ALL, &s);
	int lines = 0;
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, &err);
		assert_non_null(j);
		sp_agg a, b;
		char e[128];
		assert_int_equal(sp_agg_from_json(j, &a, e, sizeof(e)), 0);
		assert_int_equal(sp_store_get(st, a.kind, a.key, &b), 0);
		assert_int_equal(a.n_reports, b.n_reports);
		assert_true(a.reports[0].first_ns == b.reports[0].first_ns);
		assert_true(a.reports[0].last_ns == b.reports[0].last_ns);
		assert_true(a.reports[0].count == b.reports[0].count);
		assert_true(a.reports[0].expires_ns == b.reports[0].expires_ns);
		assert_int_equal(a.methods, b.methods);
		json_decref(j);
		lines++;
	}
	assert_int_equal(lines, 6);
	free(out);
	out = run(SP_FMT_JSON, SP_EXPORT_NUMBER, SP_SOURCE_LOCAL, &s);
	assert_non_null(strstr(out, "\"key\":\"441234\""));
	free(out);
	/* an empty export is still valid JSON */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct sp_export_options o = { .format = SP_FMT_JSON, .now_ns = NOW + 200 * 365 * DAY };
	assert_int_equal(sp_export(st, &o, f, NULL), 0);
	fclose(f);
	assert_string_equal(buf, "[]\n");
	free(buf);
}

static void test_json_from_bad_input(void **state)
{
	const char *bad[] = {
		"[]", "{}", "{\"kind\":\"ip\",\"key\":\"x\",\"reports\":[]}",
		"{\"kind\":\"cat\",\"key\":\"1\",\"reports\":[]}",
		"{\"kind\":\"ip\",\"key\":\"1.2.3.4\",\"reports\":[]}",
		"{\"kind\":\"ip\",\"key\":\"1.2.3.4\",\"reports\":[{\"reporter\":\"local\"}]}",
		"{\"kind\":\"ip\",\"key\":\"1.2.3.4\",\"reports\":[{\"reporter\":\"local\",\"count\":-1,"
		"\"first_seen\":\"2026-11-27T12:00:00Z\",\"last_seen\":\"2026-11-27T12:00:00Z\"}]}",
		"{\"kind\":\"ip\",\"key\":\"1.2.3.4\",\"reports\":[{\"reporter\":\"local\",\"count\":1,"
		"\"first_seen\":\"2026-11-28T12:00:00Z\",\"last_seen\":\"2026-11-27T12:00:00Z\"}]}",
		"{\"kind\":\"ip\",\"key\":\"1.2.3.4\",\"methods\":[\"EAT\"],\"reports\":[{\"reporter\":"
		"\"local\",\"count\":1,\"first_seen\":\"2026-11-27T12:00:00Z\",\"last_seen\":"
		"\"2026-11-27T12:00:00Z\"}]}",
		"{\"kind\":\"ip\",\"key\":\"1.2.3.4\",\"reports\":[{\"reporter\":\"peer\",\"count\":1,"
		"\"first_seen\":\"2026-11-27T12:00:00Z\",\"last_seen\":\"2026-11-27T12:00:00Z\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = json_loads(bad[i], 0, NULL);
		sp_agg a;
		char e[128] = "";
		assert_non_null(j);
		assert_int_equal(sp_agg_from_json(j, &a, e, sizeof(e)), SP_EPARSE);
		assert_true(strlen(e) > 5); /* says why */
		json_decref(j);
	}
}

static void test_csv(void **state)
{
	char *out = run(SP_FMT_CSV, SP_EXPORT_IP, SP_SOURCE_LOCAL, NULL);
	assert_non_null(strstr(out, "kind,value,first_seen,last_seen,count,expires,local,peers,"
				    "methods,transports,user_agents\n"));
	assert_non_null(strstr(out, "ip,198.51.100.7,2026-11-24T11:00:00Z,2026-11-24T12:00:00Z,3,"
				    "2026-12-01T12:00:00Z,yes,0,INVITE,UDP,\"evil, \"\"quoted\"\" agent\"\n"));
	free(out);
}

static void test_firewall_formats(void **state)
{
	char *out = run(SP_FMT_NFT, SP_EXPORT_IP, SP_SOURCE_ALL, NULL);
	assert_non_null(strstr(out, "flush set inet sentrypeer sentrypeer_v4\n"));
	assert_non_null(strstr(out, "add element inet sentrypeer sentrypeer_v4 {\n"
				    "\t198.51.100.7 timeout 345600s,\n\t203.0.113.5 timeout 518400s,\n"
				    "\t8.8.4.4 timeout "));
	assert_non_null(strstr(out, "add element inet sentrypeer sentrypeer_v6 {\n"
				    "\t2001:db8::9 timeout 172800s\n}\n"));
	assert_null(strstr(out, "10.1.2.3"));
	free(out);

	out = run(SP_FMT_IPSET, SP_EXPORT_IP, SP_SOURCE_ALL, NULL);
	assert_non_null(strstr(out, "add sentrypeer-v4-new 8.8.4.4 timeout 2147483 -exist\n"));
	assert_non_null(strstr(out, "add sentrypeer-v4-new 203.0.113.5 timeout 518400 -exist\n"));
	assert_non_null(strstr(out, "swap sentrypeer-v6-new sentrypeer-v6\n"));
	free(out);

	out = run(SP_FMT_CROWDSEC, SP_EXPORT_IP, SP_SOURCE_ALL, NULL);
	assert_non_null(strstr(out, "duration,scope,value\n345600s,Ip,198.51.100.7\n"));
	free(out);
}


/* The streaming writer must say exactly what jansson says. */
static void test_stream_matches_jansson(void **state)
{
	const char *uas[] = { "plain", "quote\" back\\slash", "ctl\x01\x1f\t\n\r\b\f end",
			      "bad\xff\xc3(utf8\xe2\x82", "caf\xc3\xa9 \xf0\x9f\x93\x9e", "/slash/", "" };
	enum sp_source srcs[] = { SP_SOURCE_ALL, SP_SOURCE_LOCAL, SP_SOURCE_PEERS };
	int compared = 0;
	for (size_t u = 0; u < sizeof(uas) / sizeof(uas[0]); u++) {
		sp_agg a;
		sp_agg_init(&a, u % 2 ? SP_KIND_NUMBER : SP_KIND_IP, u % 2 ? "441234" : "203.0.113.5");
		a.methods = u ? sp_method_bit("INVITE") | SP_METHOD_OTHER : 0;
		a.transports = u ? SP_TP_UDP | SP_TP_WSS : 0;
		sp_agg_add_ua(&a, uas[u]);
		sp_agg_add_raw(&a, uas[(u + 1) % 7]);
		sp_report *r = sp_agg_report(&a, "", true);
		r->first_ns = NOW - DAY - u;
		r->last_ns = NOW - 3600 * SEC + 123456789;
		r->count = 10 + u;
		r = sp_agg_report(&a, u % 3 ? "peer\"x" : "abcdef", true);
		r->first_ns = NOW - 2 * DAY;
		r->last_ns = NOW - DAY;
		r->count = UINT64_C(1) << 40;
		r->expires_ns = NOW + DAY * u;
		for (size_t k = 0; k < 3; k++) {
			json_t *j = sp_agg_to_json(&a, srcs[k], NOW, 7 * DAY);
			char *buf = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&buf, &len);
			bool wrote = sp_agg_write_json(f, &a, srcs[k], NOW, 7 * DAY);
			fclose(f);
			assert_int_equal(wrote, j != NULL);
			if (j) {
				char *ref = json_dumps(j, JSON_COMPACT);
				assert_string_equal(buf, ref);
				free(ref);
				json_decref(j);
				compared++;
			}
			free(buf);
		}
	}
	assert_true(compared >= 15);
}

static void test_lossy_strings(void **state)
{
	json_t *j = sp_json_string_lossy("ok\xff\xfe" "end\xe2\x82", 9);
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "ok\xef\xbf\xbd\xef\xbf\xbd" "end\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
	j = sp_json_string_lossy("caf\xc3\xa9", 5);
	assert_string_equal(json_string_value(j), "caf\xc3\xa9");
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_json_and_jsonl_round_trip),
		cmocka_unit_test(test_json_from_bad_input),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_firewall_formats),
		cmocka_unit_test(test_lossy_strings),
		cmocka_unit_test(test_stream_matches_jansson),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
