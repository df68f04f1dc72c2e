/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_key.h"
#include "sp_error.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

int sp_ip_normalize(const char *in, char *out, int *family)
{
	char tmp[SP_KEY_MAX];
	unsigned char addr[16];
	size_t n = strlen(in);

	if (n >= sizeof(tmp) || n == 0)
		return SP_EBADIP;
	if (in[0] == '[' && in[n - 1] == ']') { /* [2001:db8::1] */
		memcpy(tmp, in + 1, n - 2);
		tmp[n - 2] = '\0';
	} else {
		memcpy(tmp, in, n + 1);
	}
	if (inet_pton(AF_INET, tmp, addr) == 1) {
		/* inet_pton takes only the canonical dotted quad (four decimal
		 * parts, no leading zeros), so the text is already the key */
		memcpy(out, tmp, strlen(tmp) + 1);
		if (family)
			*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, tmp, addr) == 1) {
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
			inet_ntop(AF_INET, addr + 12, out, SP_KEY_MAX);
			if (family)
				*family = AF_INET;
		} else {
			inet_ntop(AF_INET6, addr, out, SP_KEY_MAX);
			if (family)
				*family = AF_INET6;
		}
		return 0;
	}
	return SP_EBADIP;
}

int sp_number_normalize(const char *in, char *out)
{
	const char *s = in;
	size_t n = 0;

	if (*s == '+')
		s++;
	else if (s[0] == '0' && s[1] == '0')
		s += 2;
	if (!isdigit((unsigned char)*s))
		return SP_EBADNUMBER;
	for (; *s; s++) {
		if (isdigit((unsigned char)*s)) {
			if (n >= SP_NUMBER_DIGITS_MAX)
				return SP_EBADNUMBER;
			out[n++] = *s;
		} else if (!strchr(" -.()", *s)) {
			return SP_EBADNUMBER;
		}
	}
	out[n] = '\0';
	return 0;
}

/* "a.b.c.d" with 1-3 digits each: meant as IPv4 even when out of range */
static bool looks_like_ipv4(const char *s)
{
	int groups = 0, digits = 0;
	for (;; s++) {
		if (isdigit((unsigned char)*s)) {
			if (++digits > 3)
				return false;
		} else if (*s == '.' || *s == '\0') {
			if (digits == 0)
				return false;
			groups++;
			digits = 0;
			if (*s == '\0')
				return groups == 4;
		} else {
			return false;
		}
	}
}

int sp_key_classify(const char *in, enum sp_kind *kind, char *out)
{
	if (sp_ip_normalize(in, out, NULL) == 0) {
		*kind = SP_KIND_IP;
		return 0;
	}
	if (strchr(in, ':') || looks_like_ipv4(in)) {
		*kind = SP_KIND_IP;
		return SP_EBADIP;
	}
	*kind = SP_KIND_NUMBER;
	return sp_number_normalize(in, out);
}

static bool v4_in(uint32_t a, uint32_t net, int bits)
{
	uint32_t mask = bits ? ~UINT32_C(0) << (32 - bits) : 0;
	return (a & mask) == net;
}

enum sp_ip_scope sp_ip_scope(const char *ip)
{
	unsigned char b[16];

	if (inet_pton(AF_INET, ip, b) == 1) {
		uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
		if (v4_in(a, 0x7f000000, 8))
			return SP_SCOPE_LOOPBACK;
		if (v4_in(a, 0x0a000000, 8) || v4_in(a, 0xac100000, 12) || v4_in(a, 0xc0a80000, 16) ||
		    v4_in(a, 0x64400000, 10))
			return SP_SCOPE_PRIVATE;
		if (v4_in(a, 0xa9fe0000, 16))
			return SP_SCOPE_LINKLOCAL;
		if (v4_in(a, 0xc0000200, 24) || v4_in(a, 0xc6336400, 24) || v4_in(a, 0xcb007100, 24))
			return SP_SCOPE_DOC;
		if (v4_in(a, 0, 8) || v4_in(a, 0xe0000000, 4) || v4_in(a, 0xf0000000, 4) ||
		    v4_in(a, 0xc0000000, 24) || v4_in(a, 0xc6120000, 15))
			return SP_SCOPE_RESERVED;
		return SP_SCOPE_PUBLIC;
	}
	if (inet_pton(AF_INET6, ip, b) == 1) {
		static const unsigned char zero[16];
		if (memcmp(b, zero, 15) == 0 && b[15] == 1)
			return SP_SCOPE_LOOPBACK;
		if (memcmp(b, zero, 16) == 0 || b[0] == 0xff)
			return SP_SCOPE_RESERVED;
		if ((b[0] & 0xfe) == 0xfc)
			return SP_SCOPE_PRIVATE;
		if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
			return SP_SCOPE_LINKLOCAL;
		if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
			return SP_SCOPE_DOC;
		return SP_SCOPE_PUBLIC;
	}
	return SP_SCOPE_RESERVED;
}

bool sp_ip_scope_is_shareable(enum sp_ip_scope scope)
{
	return scope == SP_SCOPE_PUBLIC || scope == SP_SCOPE_DOC;
}

const char *sp_kind_name(enum sp_kind kind)
{
	return kind == SP_KIND_IP ? "ip" : "number";
}

int sp_own_addresses(char (**out)[SP_KEY_MAX], size_t *n)
{
	struct ifaddrs *ifa, *i;
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (getifaddrs(&ifa) != 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next)
		cap++;
	char(*keys)[SP_KEY_MAX] = calloc(cap ? cap : 1, sizeof(*keys));
	if (!keys) {
		freeifaddrs(ifa);
		return -ENOMEM;
	}
	for (i = ifa; i; i = i->ifa_next) {
		char buf[INET6_ADDRSTRLEN];
		const void *addr;
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			addr = &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
		else if (i->ifa_addr->sa_family == AF_INET6)
			addr = &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
		else
			continue;
		if (inet_ntop(i->ifa_addr->sa_family, addr, buf, sizeof(buf)) &&
		    sp_ip_normalize(buf, keys[*n], NULL) == 0)
			(*n)++;
	}
	freeifaddrs(ifa);
	*out = keys;
	return 0;
}
