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

/* Days since 1970-01-01 to a civil date (proleptic Gregorian), after
 * Howard Hinnant's days_from_civil inverse: no gmtime_r, no locale. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + (unsigned)era * 400 + (*m <= 2));
}

static void put_digits(char *p, unsigned v, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SS" (19 bytes, no NUL); years past 9999 are clamped. */
static void format_seconds(uint64_t sec, char *p)
{
	int y;
	unsigned m, d, s = (unsigned)(sec % 86400);
	civil_from_days((int64_t)(sec / 86400), &y, &m, &d);
	if (y > 9999)
		y = 9999;
	put_digits(p, (unsigned)y, 4);
	p[4] = '-';
	put_digits(p + 5, m, 2);
	p[7] = '-';
	put_digits(p + 8, d, 2);
	p[10] = 'T';
	put_digits(p + 11, s / 3600, 2);
	p[13] = ':';
	put_digits(p + 14, s / 60 % 60, 2);
	p[16] = ':';
	put_digits(p + 17, s % 60, 2);
}

char *sp_timestamp_format(uint64_t ns, char *buf)
{
	format_seconds(ns / SP_NS_PER_SEC, buf);
	buf[19] = '.';
	put_digits(buf + 20, (unsigned)(ns % SP_NS_PER_SEC), 9);
	buf[29] = 'Z';
	buf[30] = '\0';
	return buf;
}

char *sp_timestamp_format_sec(uint64_t ns, char *buf)
{
	format_seconds(ns / SP_NS_PER_SEC, buf);
	buf[19] = 'Z';
	buf[20] = '\0';
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
