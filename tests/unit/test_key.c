/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "sp_error.h"
#include "sp_key.h"
#include "honeypot.h"

#include <netinet/in.h>

static void ip_ok(const char *in, const char *want, int family)
{
	char out[SP_KEY_MAX];
	int fam = 0;
	assert_int_equal(sp_ip_normalize(in, out, &fam), 0);
	assert_string_equal(out, want);
	assert_int_equal(fam, family);
}

static void test_ip_normalize(void **state)
{
	ip_ok("203.0.113.5", "203.0.113.5", AF_INET);
	ip_ok("::ffff:203.0.113.5", "203.0.113.5", AF_INET);
	ip_ok("::FFFF:cb00:7105", "203.0.113.5", AF_INET);
	ip_ok("2001:DB8:0:0::1", "2001:db8::1", AF_INET6);
	ip_ok("[2001:db8::1]", "2001:db8::1", AF_INET6);
	ip_ok("::1", "::1", AF_INET6);
	/* IPv4 text is kept as given: only the canonical form parses */
	ip_ok("0.0.0.0", "0.0.0.0", AF_INET);
	ip_ok("255.255.255.255", "255.255.255.255", AF_INET);
}

static void test_ip_reject(void **state)
{
	char out[SP_KEY_MAX];
	const char *bad[] = { "", "1.2.3", "1.2.3.4.5", "999.1.1.1", "1.2.3.4 ", " 1.2.3.4",
			      "1.2.3.4/24", "fe80::1%eth0", "2001:db8::g", "[1.2.3.4", "hello",
			      "01.2.3.4x", "::ffff:1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.4.",
			      "1.2.3.256", "1..2.3", "0x1.2.3.4", "1.2.3.4\n",
			      "1234567890123456789012345678901234567890123456789012345678901234567890" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sp_ip_normalize(bad[i], out, NULL), SP_EBADIP);
}

static void num_ok(const char *in, const char *want)
{
	char out[SP_KEY_MAX];
	assert_int_equal(sp_number_normalize(in, out), 0);
	assert_string_equal(out, want);
}

static void test_number_normalize(void **state)
{
	/* the issue's example: one key for all three */
	num_ok("+441234", "441234");
	num_ok("00441234", "441234");
	num_ok("441234", "441234");
	num_ok("+44 (0) 1234-567.890", "4401234567890");
	num_ok("01234", "01234"); /* national prefix kept */
	num_ok("100", "100");
	num_ok("0", "0");
	num_ok("00046500729221", "046500729221");
	num_ok("981046500729221", "981046500729221");
}

static void test_number_reject(void **state)
{
	char out[SP_KEY_MAX];
	const char *bad[] = { "", "+", "00", "admin", "12a4", "+-1", "*43", "1#", "++44",
			      "123456789012345678901234567890123" /* 33 digits */, " 44" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sp_number_normalize(bad[i], out), SP_EBADNUMBER);
	num_ok("12345678901234567890123456789012", "12345678901234567890123456789012");
}

static void test_classify(void **state)
{
	char out[SP_KEY_MAX];
	enum sp_kind k;
	assert_int_equal(sp_key_classify("203.0.113.5", &k, out), 0);
	assert_int_equal(k, SP_KIND_IP);
	assert_int_equal(sp_key_classify("+441234", &k, out), 0);
	assert_int_equal(k, SP_KIND_NUMBER);
	assert_string_equal(out, "441234");
	assert_int_equal(sp_key_classify("999.1.1.1", &k, out), SP_EBADIP);
	assert_int_equal(sp_key_classify("2001:db8::zz", &k, out), SP_EBADIP);
	assert_int_equal(sp_key_classify("44.1234.5678", &k, out), 0); /* dotted number */
	assert_int_equal(k, SP_KIND_NUMBER);
	assert_int_equal(sp_key_classify("bob", &k, out), SP_EBADNUMBER);
}

static void test_scope(void **state)
{
	assert_int_equal(sp_ip_scope("8.8.8.8"), SP_SCOPE_PUBLIC);
	assert_int_equal(sp_ip_scope("127.0.0.1"), SP_SCOPE_LOOPBACK);
	assert_int_equal(sp_ip_scope("::1"), SP_SCOPE_LOOPBACK);
	assert_int_equal(sp_ip_scope("10.1.2.3"), SP_SCOPE_PRIVATE);
	assert_int_equal(sp_ip_scope("172.31.255.255"), SP_SCOPE_PRIVATE);
	assert_int_equal(sp_ip_scope("172.32.0.1"), SP_SCOPE_PUBLIC);
	assert_int_equal(sp_ip_scope("192.168.1.1"), SP_SCOPE_PRIVATE);
	assert_int_equal(sp_ip_scope("100.64.0.1"), SP_SCOPE_PRIVATE);
	assert_int_equal(sp_ip_scope("169.254.1.1"), SP_SCOPE_LINKLOCAL);
	assert_int_equal(sp_ip_scope("fe80::1"), SP_SCOPE_LINKLOCAL);
	assert_int_equal(sp_ip_scope("fd00::1"), SP_SCOPE_PRIVATE);
	assert_int_equal(sp_ip_scope("203.0.113.5"), SP_SCOPE_DOC);
	assert_int_equal(sp_ip_scope("2001:db8::1"), SP_SCOPE_DOC);
	assert_int_equal(sp_ip_scope("0.0.0.0"), SP_SCOPE_RESERVED);
	assert_int_equal(sp_ip_scope("224.0.0.1"), SP_SCOPE_RESERVED);
	assert_int_equal(sp_ip_scope("255.255.255.255"), SP_SCOPE_RESERVED);
	assert_int_equal(sp_ip_scope("::"), SP_SCOPE_RESERVED);
	assert_int_equal(sp_ip_scope("ff02::1"), SP_SCOPE_RESERVED);
	assert_int_equal(sp_ip_scope("2a00:1450::1"), SP_SCOPE_PUBLIC);
	assert_true(sp_ip_scope_is_shareable(SP_SCOPE_DOC));
	assert_false(sp_ip_scope_is_shareable(SP_SCOPE_PRIVATE));
}

/* Listener addresses become store keys without a parse: the same text as
 * sp_ip_normalize() gives. */
static void test_sockaddr_text(void **state)
{
	const char *cases[][2] = { { "203.0.113.5", "203.0.113.5" }, { "0.0.0.0", "0.0.0.0" },
				   { "255.255.255.255", "255.255.255.255" },
				   { "::ffff:10.1.2.3", "10.1.2.3" }, { "2001:DB8:0:0::1", "2001:db8::1" },
				   { "::1", "::1" }, { "fe80::1:2", "fe80::1:2" } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		char out[SP_KEY_MAX], norm[SP_KEY_MAX];
		uint16_t port;
		memset(&ss, 0, sizeof(ss));
		if (strchr(cases[i][0], ':')) {
			struct sockaddr_in6 *s6 = (void *)&ss;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(5060);
			assert_int_equal(inet_pton(AF_INET6, cases[i][0], &s6->sin6_addr), 1);
		} else {
			struct sockaddr_in *s4 = (void *)&ss;
			s4->sin_family = AF_INET;
			s4->sin_port = htons(5061);
			assert_int_equal(inet_pton(AF_INET, cases[i][0], &s4->sin_addr), 1);
		}
		sp_sockaddr_text((struct sockaddr *)&ss, out, sizeof(out), &port);
		assert_string_equal(out, cases[i][1]);
		assert_int_equal(sp_ip_normalize(cases[i][0], norm, NULL), 0);
		assert_string_equal(out, norm);
		assert_int_equal(port, strchr(cases[i][0], ':') ? 5060 : 5061);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_normalize), cmocka_unit_test(test_ip_reject),
		cmocka_unit_test(test_number_normalize), cmocka_unit_test(test_number_reject),
		cmocka_unit_test(test_classify), cmocka_unit_test(test_scope),
		cmocka_unit_test(test_sockaddr_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
