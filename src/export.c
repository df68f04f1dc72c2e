/* SPDX-License-Identifier: GPL-2.0-only OR GPL-3.0-only */
#include "export.h"
#include "json_stream.h"
#include "render.h"
#include "sp_error.h"
#include "sp_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define NFT_CHUNK 1000
#define IPSET_TIMEOUT_MAX 2147483 /* larger is invalid for ipset */
#define IPSET_MAXELEM 4194304

static const char *const format_names[] = { "json", "jsonl", "csv", "txt", "nft", "ipset",
					     "crowdsec" };

int sp_export_format_parse(const char *s, enum sp_export_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++)
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum sp_export_format)i;
			return 0;
		}
	return SP_EPARSE;
}

const char *sp_export_format_name(enum sp_export_format f) { return format_names[f]; }

bool sp_export_format_ip_only(enum sp_export_format f)
{
	return f == SP_FMT_NFT || f == SP_FMT_IPSET || f == SP_FMT_CROWDSEC;
}

static bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!(*s == '_' || *s == '-' || (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z')))
			return false;
	return true;
}

/* Quote a value from the command line or the network in an error: at most
 * 40 bytes, printable ASCII, the rest as '?'. */
static const char *quoted(const char *v, char *buf, size_t len)
{
	size_t o = 0;
	for (; *v && o + 4 < len && o < 40; v++)
		buf[o++] = (*v >= 0x20 && *v < 0x7f) ? *v : '?';
	if (*v && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

int sp_export_option_set(struct sp_export_options *opt, bool *kind_given, const char *name,
			 const char *value, char *err, size_t errlen)
{
	char q[64];
	uint64_t d;
	if (strcmp(name, "include-private") == 0 || strcmp(name, "include_private") == 0) {
		bool yes = !value || !*value || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0 ||
			   strcmp(value, "true") == 0;
		if (!yes && strcmp(value, "0") != 0 && strcmp(value, "no") != 0 &&
		    strcmp(value, "false") != 0) {
			snprintf(err, errlen, "'%s': expected yes or no", quoted(value, q, sizeof(q)));
			return SP_EPARSE;
		}
		opt->include_private = yes;
		return 0;
	}
	if (!value)
		value = "";
	if (strcmp(name, "format") == 0) {
		if (sp_export_format_parse(value, &opt->format) == 0)
			return 0;
		snprintf(err, errlen, "'%s': expected json, jsonl, csv, txt, nft, ipset or crowdsec",
			 quoted(value, q, sizeof(q)));
		return SP_EPARSE;
	}
	if (strcmp(name, "kind") == 0) {
		*kind_given = true;
		if (strcmp(value, "ip") == 0)
			opt->kind = SP_EXPORT_IP;
		else if (strcmp(value, "number") == 0)
			opt->kind = SP_EXPORT_NUMBER;
		else if (strcmp(value, "all") == 0)
			opt->kind = SP_EXPORT_ALL;
		else {
			snprintf(err, errlen, "'%s': expected ip, number or all", quoted(value, q, sizeof(q)));
			return SP_EPARSE;
		}
		return 0;
	}
	if (strcmp(name, "since") == 0) {
		if (sp_duration_parse(value, &d) || d == 0) {
			snprintf(err, errlen, "'%s': expected a duration such as 90s, 15m, 12h or 7d",
				 quoted(value, q, sizeof(q)));
			return SP_EPARSE;
		}
		uint64_t now = sp_now_ns();
		opt->since_ns = d < now ? now - d : 1;
		return 0;
	}
	if (strcmp(name, "source") == 0) {
		if (strcmp(value, "local") == 0)
			opt->source = SP_SOURCE_LOCAL;
		else if (strcmp(value, "peers") == 0)
			opt->source = SP_SOURCE_PEERS;
		else if (strcmp(value, "all") == 0)
			opt->source = SP_SOURCE_ALL;
		else {
			snprintf(err, errlen, "'%s': expected local, peers or all",
				 quoted(value, q, sizeof(q)));
			return SP_EPARSE;
		}
		return 0;
	}
	if (strcmp(name, "nft-table") == 0 || strcmp(name, "set-name") == 0) {
		if (!valid_name(value, 24)) {
			snprintf(err, errlen, "'%s': names are 1-24 letters, digits, - or _",
				 quoted(value, q, sizeof(q)));
			return SP_EPARSE;
		}
		if (name[0] == 'n')
			opt->nft_table = value;
		else
			opt->set_prefix = value;
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s'", quoted(name, q, sizeof(q)));
	return SP_ENOTFOUND;
}

int sp_export_options_finish(struct sp_export_options *opt, bool kind_given, char *err,
			     size_t errlen)
{
	bool ip_only = sp_export_format_ip_only(opt->format);
	if (!kind_given)
		opt->kind = ip_only || opt->format == SP_FMT_TXT ? SP_EXPORT_IP : SP_EXPORT_ALL;
	if (ip_only && opt->kind != SP_EXPORT_IP) {
		snprintf(err, errlen, "format %s lists IP addresses only",
			 sp_export_format_name(opt->format));
		return SP_EPARSE;
	}
	return 0;
}

struct sp_addr_filter {
	bool include_private;
	char (*keys)[SP_KEY_MAX]; /* this host's own addresses */
	size_t n;
};

sp_addr_filter *sp_addr_filter_new(bool include_private)
{
	sp_addr_filter *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->include_private = include_private;
	if (!include_private)
		sp_own_addresses(&f->keys, &f->n);
	return f;
}

bool sp_addr_filter_allows(const sp_addr_filter *f, const char *ip)
{
	if (f->include_private)
		return true;
	if (!sp_ip_scope_is_shareable(sp_ip_scope(ip)))
		return false;
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->keys[i], ip) == 0)
			return false;
	return true;
}

void sp_addr_filter_free(sp_addr_filter *f)
{
	if (f)
		free(f->keys);
	free(f);
}

struct ctx {
	const struct sp_export_options *opt;
	FILE *out;
	struct sp_export_stats *stats;
	uint64_t retention;
	sp_addr_filter *filter;
	int family;      /* nft/ipset passes: AF_INET or AF_INET6 */
	size_t in_chunk; /* nft: elements in the open statement */
	bool first;      /* json: no comma before the first record */
	const char *set;
};

static void csv_field(FILE *out, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static int emit(const sp_agg *a, void *ud)
{
	struct ctx *c = ud;
	const struct sp_export_options *o = c->opt;
	struct sp_agg_summary sum;
	char t1[SP_TIMESTAMP_LEN], t2[SP_TIMESTAMP_LEN], t3[SP_TIMESTAMP_LEN];

	if (!sp_agg_summarize(a, o->source, o->now_ns, c->retention, &sum))
		return 0;
	if (o->since_ns && sum.last_ns < o->since_ns)
		return 0;
	if (!sum.local && sum.peers < o->min_reporters)
		return 0;
	if (a->kind == SP_KIND_IP) {
		if (c->family && (strchr(a->key, ':') ? AF_INET6 : AF_INET) != c->family)
			return 0;
		if (!sp_addr_filter_allows(c->filter, a->key)) {
			c->stats->skipped_private++;
			return 0;
		}
	}
	uint64_t ttl = (sum.expires_ns - o->now_ns + SP_NS_PER_SEC - 1) / SP_NS_PER_SEC;

	switch (o->format) {
	case SP_FMT_TXT:
		fputs(a->key, c->out);
		fputc('\n', c->out);
		break;
	case SP_FMT_JSON:
	case SP_FMT_JSONL:
		if (o->format == SP_FMT_JSON)
			fputs(c->first ? "\n" : ",\n", c->out);
		c->first = false;
		sp_agg_write_json(c->out, a, o->source, o->now_ns, c->retention);
		if (o->format == SP_FMT_JSONL)
			fputc('\n', c->out);
		break;
	case SP_FMT_CSV: {
		char m[256], t[64];
		fprintf(c->out, "%s,", sp_kind_name(a->kind));
		csv_field(c->out, a->key);
		fprintf(c->out, ",%s,%s,%llu,%s,%s,%u,", sp_timestamp_format_sec(sum.first_ns, t1),
			sp_timestamp_format_sec(sum.last_ns, t2), (unsigned long long)sum.count,
			sp_timestamp_format_sec(sum.expires_ns, t3), sum.local ? "yes" : "no", sum.peers);
		csv_field(c->out, sp_methods_format(a->methods, m, sizeof(m)));
		fputc(',', c->out);
		csv_field(c->out, sp_transports_format(a->transports, t, sizeof(t)));
		fputc(',', c->out);
		char uas[SP_AGG_MAX_UAS * (SP_UA_MAX + 1) + 1] = "";
		for (unsigned i = 0; i < a->n_uas; i++) {
			if (i)
				strcat(uas, "|");
			strcat(uas, a->uas[i]);
		}
		csv_field(c->out, uas);
		fputc('\n', c->out);
		break;
	}
	case SP_FMT_NFT:
		if (c->in_chunk == 0)
			fprintf(c->out, "add element inet %s %s {", o->nft_table, c->set);
		fprintf(c->out, "%s\n\t%s timeout %llus", c->in_chunk ? "," : "", a->key,
			(unsigned long long)ttl);
		if (++c->in_chunk == NFT_CHUNK) {
			fputs("\n}\n", c->out);
			c->in_chunk = 0;
		}
		break;
	case SP_FMT_IPSET:
		fprintf(c->out, "add %s-new %s timeout %llu -exist\n", c->set, a->key,
			(unsigned long long)(ttl > IPSET_TIMEOUT_MAX ? IPSET_TIMEOUT_MAX : ttl));
		break;
	case SP_FMT_CROWDSEC:
		fprintf(c->out, "%llus,Ip,%s\n", (unsigned long long)ttl, a->key);
		break;
	}
	c->stats->written++;
	return ferror(c->out) ? -EIO : 0;
}

static int pass(sp_store *st, struct ctx *c, enum sp_kind kind)
{
	return sp_store_foreach(st, kind, emit, c, &c->stats->corrupt);
}

int sp_export(sp_store *st, const struct sp_export_options *opt_in, FILE *out,
	      struct sp_export_stats *stats)
{
	struct sp_export_options opt = *opt_in;
	struct sp_export_stats dummy;
	struct ctx c = { 0 };
	char set4[64], set6[64];
	int rc = 0;

	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	if (!opt.now_ns)
		opt.now_ns = sp_now_ns();
	if (!opt.nft_table)
		opt.nft_table = "sentrypeer";
	if (!opt.set_prefix)
		opt.set_prefix = "sentrypeer";
	c.opt = &opt;
	c.out = out;
	c.stats = stats;
	c.retention = sp_store_retention(st);
	c.first = true;
	if (!(c.filter = sp_addr_filter_new(opt.include_private)))
		return -ENOMEM;

	bool ips = opt.kind != SP_EXPORT_NUMBER, numbers = opt.kind != SP_EXPORT_IP;
	switch (opt.format) {
	case SP_FMT_TXT:
	case SP_FMT_JSONL:
	case SP_FMT_JSON:
	case SP_FMT_CSV:
		if (opt.format == SP_FMT_JSON)
			fputs("[", out);
		if (opt.format == SP_FMT_CSV)
			fputs("kind,value,first_seen,last_seen,count,expires,local,peers,methods,"
			      "transports,user_agents\n", out);
		if (ips)
			rc = pass(st, &c, SP_KIND_IP);
		if (rc == 0 && numbers)
			rc = pass(st, &c, SP_KIND_NUMBER);
		if (opt.format == SP_FMT_JSON)
			fputs(stats->written ? "\n]\n" : "]\n", out);
		break;
	case SP_FMT_NFT:
		snprintf(set4, sizeof(set4), "%s_v4", opt.set_prefix);
		snprintf(set6, sizeof(set6), "%s_v6", opt.set_prefix);
		fprintf(out,
			"#!/usr/sbin/nft -f\n"
			"# SentryPeer blocklist. Load with: nft -f FILE (one atomic transaction)\n"
			"# Use it from your own rules, e.g.\n"
			"#   ip saddr @%s drop\n#   ip6 saddr @%s drop\n"
			"table inet %s {\n"
			"\tset %s { type ipv4_addr; flags timeout; }\n"
			"\tset %s { type ipv6_addr; flags timeout; }\n"
			"}\n"
			"flush set inet %s %s\n"
			"flush set inet %s %s\n",
			set4, set6, opt.nft_table, set4, set6, opt.nft_table, set4, opt.nft_table, set6);
		for (int f = 0; f < 2 && rc == 0; f++) {
			c.family = f ? AF_INET6 : AF_INET;
			c.set = f ? set6 : set4;
			c.in_chunk = 0;
			rc = pass(st, &c, SP_KIND_IP);
			if (c.in_chunk)
				fputs("\n}\n", out);
		}
		break;
	case SP_FMT_IPSET:
		snprintf(set4, sizeof(set4), "%s-v4", opt.set_prefix);
		snprintf(set6, sizeof(set6), "%s-v6", opt.set_prefix);
		fprintf(out, "# SentryPeer blocklist. Load with: ipset restore -f FILE\n"
			     "# Each set is filled under a new name, then swapped in atomically.\n"
			     "# Use it from your rules, e.g.\n"
			     "#   iptables -I INPUT -m set --match-set %s src -j DROP\n", set4);
		for (int f = 0; f < 2 && rc == 0; f++) {
			const char *set = f ? set6 : set4, *fam = f ? "inet6" : "inet";
			c.family = f ? AF_INET6 : AF_INET;
			c.set = set;
			fprintf(out,
				"create %s hash:ip family %s timeout 604800 maxelem %d -exist\n"
				"create %s-new hash:ip family %s timeout 604800 maxelem %d -exist\n"
				"flush %s-new\n",
				set, fam, IPSET_MAXELEM, set, fam, IPSET_MAXELEM, set);
			rc = pass(st, &c, SP_KIND_IP);
			fprintf(out, "swap %s-new %s\ndestroy %s-new\n", set, set, set);
		}
		break;
	case SP_FMT_CROWDSEC:
		fputs("duration,scope,value\n", out);
		rc = pass(st, &c, SP_KIND_IP);
		break;
	}
	sp_addr_filter_free(c.filter);
	if (rc == 0 && (fflush(out) != 0 || ferror(out)))
		rc = -EIO;
	return rc;
}
