/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "json_stream.h"
#include "render.h"
#include "sp_time.h"

#include <string.h>
#include <time.h>

size_t sp_utf8_seq(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (n == 0 || c == 0 || n > left)
		return 0;
	for (size_t k = 1; k < n; k++)
		if ((s[k] & 0xc0) != 0x80)
			return 0;
	if ((n == 2 && c < 0xc2) || (n == 3 && c == 0xe0 && s[1] < 0xa0) ||
	    (n == 3 && c == 0xed && s[1] >= 0xa0) || (n == 4 && c == 0xf0 && s[1] < 0x90) ||
	    (n == 4 && (c > 0xf4 || (c == 0xf4 && s[1] >= 0x90))))
		return 0;
	return n;
}

void sp_json_write_string(FILE *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes it */
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	putc_unlocked('"', out);
	while (i < len) {
		unsigned c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		fwrite_unlocked(p + i - run, 1, run, out);
		run = 0;
		if (c >= 0x80) {
			size_t n = sp_utf8_seq(p + i, len - i);
			if (n) {
				fwrite_unlocked(p + i, 1, n, out);
				i += n;
			} else {
				fwrite_unlocked("\xef\xbf\xbd", 1, 3, out);
				i++;
			}
			continue;
		}
		putc_unlocked('\\', out);
		switch (c) {
		case '"': putc_unlocked('"', out); break;
		case '\\': putc_unlocked('\\', out); break;
		case '\b': putc_unlocked('b', out); break;
		case '\f': putc_unlocked('f', out); break;
		case '\n': putc_unlocked('n', out); break;
		case '\r': putc_unlocked('r', out); break;
		case '\t': putc_unlocked('t', out); break;
		default:
			fwrite_unlocked("u00", 1, 3, out);
			putc_unlocked(hex[c >> 4], out);
			putc_unlocked(hex[c & 15], out);
		}
		i++;
	}
	fwrite_unlocked(p + i - run, 1, run, out);
	putc_unlocked('"', out);
}

static void write_u64(FILE *out, uint64_t v)
{
	char buf[24];
	size_t i = sizeof(buf);
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	fwrite_unlocked(buf + i, 1, sizeof(buf) - i, out);
}

void sp_json_write_time(FILE *out, uint64_t ns)
{
	char buf[SP_TIMESTAMP_LEN];
	fwrite_unlocked(sp_timestamp_format(ns, buf), 1, SP_TIMESTAMP_LEN - 1, out);
}

/* A member's name and colon, with the comma before it unless it is the
 * first: one write of a literal. */
#define LIT(out, s) fwrite_unlocked(s, 1, sizeof(s) - 1, out)
#define KEY(out, name) LIT(out, ",\"" name "\":")
#define FIRST_KEY(out, name) LIT(out, "\"" name "\":")

static void time_value(FILE *out, uint64_t ns)
{
	char buf[SP_TIMESTAMP_LEN + 2];
	buf[0] = '"';
	sp_timestamp_format(ns, buf + 1);
	buf[SP_TIMESTAMP_LEN] = '"';
	fwrite_unlocked(buf, 1, SP_TIMESTAMP_LEN + 1, out);
}

#define TIME_FIELD(out, name, ns) (KEY(out, name), time_value(out, ns))

static void name_list(FILE *out, const char *csv)
{
	putc_unlocked('[', out);
	for (const char *p = csv; *p;) {
		size_t n = strcspn(p, ",");
		if (p != csv)
			putc_unlocked(',', out);
		sp_json_write_string(out, p, n);
		p += n + (p[n] == ',');
	}
	putc_unlocked(']', out);
}

bool sp_agg_write_json_members(FILE *out, const sp_agg *a, enum sp_source src, uint64_t now_ns,
			       uint64_t retention_ns)
{
	struct sp_agg_summary sum;
	char buf[512];
	if (!sp_agg_summarize(a, src, now_ns, retention_ns, &sum))
		return false;

	FIRST_KEY(out, "kind");
	sp_json_write_string(out, sp_kind_name(a->kind), strlen(sp_kind_name(a->kind)));
	KEY(out, "key");
	sp_json_write_string(out, a->key, strlen(a->key));
	TIME_FIELD(out, "first_seen", sum.first_ns);
	TIME_FIELD(out, "last_seen", sum.last_ns);
	KEY(out, "count");
	write_u64(out, sum.count);
	TIME_FIELD(out, "expires", sum.expires_ns);
	KEY(out, "local");
	if (sum.local)
		LIT(out, "true");
	else
		LIT(out, "false");
	KEY(out, "peers");
	write_u64(out, sum.peers);
	KEY(out, "methods");
	name_list(out, sp_methods_format(a->methods, buf, sizeof(buf)));
	KEY(out, "transports");
	name_list(out, sp_transports_format(a->transports, buf, sizeof(buf)));
	KEY(out, "user_agents");
	putc_unlocked('[', out);
	for (unsigned i = 0; i < a->n_uas; i++) {
		if (i)
			putc_unlocked(',', out);
		sp_json_write_string(out, a->uas[i], strlen(a->uas[i]));
	}
	putc_unlocked(']', out);
	KEY(out, "raw_forms");
	putc_unlocked('[', out);
	for (unsigned i = 0; i < a->n_raws; i++) {
		if (i)
			putc_unlocked(',', out);
		sp_json_write_string(out, a->raws[i], strlen(a->raws[i]));
	}
	putc_unlocked(']', out);
	KEY(out, "reports");
	putc_unlocked('[', out);
	bool first = true;
	for (unsigned i = 0; i < a->n_reports; i++) {
		const sp_report *r = &a->reports[i];
		bool local = r->reporter[0] == '\0';
		uint64_t exp = sp_report_expiry(r, retention_ns);
		if ((src == SP_SOURCE_LOCAL && !local) || (src == SP_SOURCE_PEERS && local) ||
		    exp <= now_ns)
			continue;
		if (!first)
			putc_unlocked(',', out);
		first = false;
		putc_unlocked('{', out);
		FIRST_KEY(out, "reporter");
		const char *who = local ? SP_REPORTER_LOCAL : r->reporter;
		sp_json_write_string(out, who, strlen(who));
		TIME_FIELD(out, "first_seen", r->first_ns);
		TIME_FIELD(out, "last_seen", r->last_ns);
		KEY(out, "count");
		write_u64(out, r->count);
		TIME_FIELD(out, "expires", exp);
		putc_unlocked('}', out);
	}
	putc_unlocked(']', out);
	return true;
}

bool sp_agg_write_json(FILE *out, const sp_agg *a, enum sp_source src, uint64_t now_ns,
		       uint64_t retention_ns)
{
	struct sp_agg_summary sum;
	if (!sp_agg_summarize(a, src, now_ns, retention_ns, &sum))
		return false;
	putc_unlocked('{', out);
	sp_agg_write_json_members(out, a, src, now_ns, retention_ns);
	putc_unlocked('}', out);
	return true;
}
