/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "sp_time.h"
#include "sp_error.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t sp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * SP_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t sp_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SP_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static const struct unit {
	const char *name;
	uint64_t ns;
} units[] = {
	{ "ms", UINT64_C(1000000) },
	{ "w", 7 * 86400 * SP_NS_PER_SEC },
	{ "d", 86400 * SP_NS_PER_SEC },
	{ "h", 3600 * SP_NS_PER_SEC },
	{ "m", 60 * SP_NS_PER_SEC },
	{ "s", SP_NS_PER_SEC },
};

static int read_uint(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	if (!isdigit((unsigned char)*s))
		return SP_EPARSE;
	for (; isdigit((unsigned char)*s); s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return SP_EPARSE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*sp = s;
	*out = v;
	return 0;
}

int sp_duration_parse(const char *s, uint64_t *out_ns)
{
	uint64_t total = 0, v;
	if (!s || !*s)
		return SP_EPARSE;
	if (read_uint(&s, &v))
		return SP_EPARSE;
	if (*s == '\0') { /* plain number: seconds */
		if (v > UINT64_MAX / SP_NS_PER_SEC)
			return SP_EPARSE;
		*out_ns = v * SP_NS_PER_SEC;
		return 0;
	}
	for (;;) {
		const struct unit *u = NULL;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].name);
			if (strncmp(s, units[i].name, n) == 0) {
				u = &units[i];
				s += n;
				break;
			}
		}
		if (!u || v > UINT64_MAX / u->ns || total > UINT64_MAX - v * u->ns)
			return SP_EPARSE;
		total += v * u->ns;
		if (*s == '\0')
			break;
		if (read_uint(&s, &v))
			return SP_EPARSE;
	}
	*out_ns = total;
	return 0;
}

char *sp_duration_format(uint64_t ns, char *buf, size_t len)
{
	size_t off = 0;
	if (ns == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	for (size_t i = 1; i < sizeof(units) / sizeof(units[0]); i++) {
		if (i == 1)
			continue; /* "7d" reads better than "1w" */
		uint64_t n = ns / units[i].ns;
		if (n && off < len) {
			off += (size_t)snprintf(buf + off, len - off, "%llu%s",
						(unsigned long long)n, units[i].name);
			ns -= n * units[i].ns;
		}
	}
	if (ns && off < len) {
		snprintf(buf + off, len - off, "%llums", (unsigned long long)(ns / 1000000));
	}
	return buf;
}

int sp_size_parse(const char *s, uint64_t *out)
{
	uint64_t v, mul = 1;
	if (!s || read_uint(&s, &v))
		return SP_EPARSE;
	switch (toupper((unsigned char)*s)) {
	case '\0': break;
	case 'K': mul = UINT64_C(1) << 10; s++; break;
	case 'M': mul = UINT64_C(1) << 20; s++; break;
	case 'G': mul = UINT64_C(1) << 30; s++; break;
	case 'T': mul = UINT64_C(1) << 40; s++; break;
	default: return SP_EPARSE;
	}
	if (mul > 1 && (strcmp(s, "iB") == 0 || strcmp(s, "B") == 0))
		s += strlen(s);
	if (*s != '\0' || v > UINT64_MAX / mul)
		return SP_EPARSE;
	*out = v * mul;
	return 0;
}

char *sp_timestamp_format(uint64_t ns, char *buf)
{
	time_t sec = (time_t)(ns / SP_NS_PER_SEC);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[96];
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%09uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ns % SP_NS_PER_SEC));
	memcpy(buf, tmp, SP_TIMESTAMP_LEN - 1); /* years 1970..9999 fit exactly */
	buf[strnlen(tmp, SP_TIMESTAMP_LEN - 1)] = '\0';
	return buf;
}

char *sp_timestamp_format_sec(uint64_t ns, char *buf)
{
	time_t sec = (time_t)(ns / SP_NS_PER_SEC);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char tmp[96];
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	memcpy(buf, tmp, SP_TIMESTAMP_LEN - 1); /* years 1970..9999 fit exactly */
	buf[strnlen(tmp, SP_TIMESTAMP_LEN - 1)] = '\0';
	return buf;
}

static int read_fixed(const char **sp, int digits, int *out)
{
	int v = 0;
	for (int i = 0; i < digits; i++) {
		if (!isdigit((unsigned char)(*sp)[i]))
			return SP_EPARSE;
		v = v * 10 + ((*sp)[i] - '0');
	}
	*sp += digits;
	*out = v;
	return 0;
}

int sp_timestamp_parse(const char *s, uint64_t *out_ns)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, se;
	uint64_t frac = 0;

	if (read_fixed(&s, 4, &y) || *s++ != '-' || read_fixed(&s, 2, &mo) || *s++ != '-' ||
	    read_fixed(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
		return SP_EPARSE;
	s++;
	if (read_fixed(&s, 2, &h) || *s++ != ':' || read_fixed(&s, 2, &mi) || *s++ != ':' ||
	    read_fixed(&s, 2, &se))
		return SP_EPARSE;
	if (*s == '.') {
		int n = 0;
		s++;
		if (!isdigit((unsigned char)*s))
			return SP_EPARSE;
		for (; isdigit((unsigned char)*s); s++, n++) {
			if (n < 9)
				frac = frac * 10 + (uint64_t)(*s - '0');
		}
		for (; n < 9; n++)
			frac *= 10;
	}
	if (strcmp(s, "Z") != 0 && strcmp(s, "z") != 0 && strcmp(s, "+00:00") != 0)
		return SP_EPARSE;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return SP_EPARSE;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	time_t t = timegm(&tm);
	if (t < 0)
		return SP_EPARSE;
	*out_ns = (uint64_t)t * SP_NS_PER_SEC + frac;
	return 0;
}
