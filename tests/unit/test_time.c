/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sp_error.h"
#include "sp_time.h"

static void test_duration(void **state)
{
	uint64_t ns;
	char buf[64];
	assert_int_equal(sp_duration_parse("90", &ns), 0);
	assert_true(ns == 90 * SP_NS_PER_SEC);
	assert_int_equal(sp_duration_parse("7d", &ns), 0);
	assert_true(ns == 7 * 86400 * SP_NS_PER_SEC);
	assert_string_equal(sp_duration_format(ns, buf, sizeof(buf)), "7d");
	assert_int_equal(sp_duration_parse("1h30m", &ns), 0);
	assert_string_equal(sp_duration_format(ns, buf, sizeof(buf)), "1h30m");
	assert_int_equal(sp_duration_parse("250ms", &ns), 0);
	assert_true(ns == 250000000);
	assert_string_equal(sp_duration_format(ns, buf, sizeof(buf)), "250ms");
	assert_int_equal(sp_duration_parse("2w", &ns), 0);
	assert_string_equal(sp_duration_format(ns, buf, sizeof(buf)), "14d");
	const char *bad[] = { "", "d", "7x", "-1", "1.5h", "7d ", "99999999999999999999",
			      "30000000000d", "1h1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sp_duration_parse(bad[i], &ns), SP_EPARSE);
}

static void test_size(void **state)
{
	uint64_t v;
	assert_int_equal(sp_size_parse("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(sp_size_parse("64K", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(sp_size_parse("2GiB", &v), 0);
	assert_true(v == UINT64_C(2) << 30);
	assert_int_equal(sp_size_parse("1m", &v), 0);
	assert_true(v == UINT64_C(1) << 20);
	assert_int_equal(sp_size_parse("1Q", &v), SP_EPARSE);
	assert_int_equal(sp_size_parse("G", &v), SP_EPARSE);
	assert_int_equal(sp_size_parse("99999999999T", &v), SP_EPARSE);
}

static void test_timestamp(void **state)
{
	char buf[SP_TIMESTAMP_LEN];
	uint64_t ns, back;
	ns = UINT64_C(1795780800) * SP_NS_PER_SEC + 123456789;
	sp_timestamp_format(ns, buf);
	assert_string_equal(buf, "2026-11-27T12:00:00.123456789Z");
	assert_int_equal(sp_timestamp_parse(buf, &back), 0);
	assert_true(back == ns);
	assert_int_equal(sp_timestamp_parse("2026-11-27T12:00:00Z", &back), 0);
	assert_true(back == UINT64_C(1795780800) * SP_NS_PER_SEC);
	assert_int_equal(sp_timestamp_parse("2026-11-27T12:00:00.5+00:00", &back), 0);
	assert_true(back == UINT64_C(1795780800) * SP_NS_PER_SEC + 500000000);
	assert_string_equal(sp_timestamp_format_sec(ns, buf), "2026-11-27T12:00:00Z");
	const char *bad[] = { "", "2026-11-27", "2026-11-27T12:00:00", "2026-13-01T00:00:00Z",
			      "2026-11-27T12:00:00+01:00", "1969-12-31T23:59:59Z", "x026-11-27T12:00:00Z" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sp_timestamp_parse(bad[i], &back), SP_EPARSE);
}

/* The arithmetic date conversion agrees with gmtime_r over 1970-2400. */
static void test_timestamp_against_gmtime(void **state)
{
	char mine[SP_TIMESTAMP_LEN], ref[64];
	for (uint64_t sec = 0; sec < UINT64_C(13569465600); sec += 86399 * 7 + 3601) {
		time_t t = (time_t)sec;
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(ref, sizeof(ref), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		assert_string_equal(sp_timestamp_format_sec(sec * SP_NS_PER_SEC, mine), ref);
	}
	sp_timestamp_format(UINT64_C(951782400) * SP_NS_PER_SEC + 7, mine); /* 2000-02-29 */
	assert_string_equal(mine, "2000-02-29T00:00:00.000000007Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_timestamp_against_gmtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
